# Sourced by scripts/dev and scripts/test: creates .venv (once) and installs the requirements
# whenever they change. Needs only Python 3.11+ and pip.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  # Some distributions ship Python without venv; fall back to virtualenv from pip.
  "$PYTHON" -m venv .venv 2>/dev/null || {
    "$PYTHON" -m pip install --quiet --user virtualenv
    "$PYTHON" -m virtualenv --quiet .venv
  }
fi
PY="$ROOT/.venv/bin/python"
stamp=.venv/.facteur-installed
if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ] || [ requirements-dev.txt -nt "$stamp" ] \
  || [ pyproject.toml -nt "$stamp" ]; then
  echo "facteur: installing requirements into .venv" >&2
  "$PY" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt \
    >.venv/pip.log 2>&1 || { cat .venv/pip.log >&2; exit 1; }
  touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
