"""`python -m facteur ...`: the same as the `facteur` command."""

from facteur.cli.main import main

raise SystemExit(main())
