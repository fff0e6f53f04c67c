# Shared set-up for scripts/book and scripts/test: a virtual environment in .venv with the
# exact pins of requirements.txt.  Re-installs only when requirements.txt or pyproject.toml
# change.  Sourced, not run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "error: $PYTHON not found. Install Python 3.11 (or set PYTHON=/path/to/python3.11)." >&2
    exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
    echo "error: $("$PYTHON" --version) is too old; the pins are tested on Python 3.11." >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo ">>> creating .venv with $("$PYTHON" --version)"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements-installed
wanted=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
    echo ">>> installing requirements.txt into .venv (first time: about 1.5 minutes, 1.5 GB)"
    .venv/bin/python -m pip install --disable-pip-version-check -q -r requirements.txt
    echo "$wanted" > "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
