"""`python -m facteur ...`: the same as the `facteur` command."""

from facteur.cli import main

raise SystemExit(main())
