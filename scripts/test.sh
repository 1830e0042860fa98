#!/usr/bin/env bash
# The test suite: installs every extra into .venv and Debian's chromium (for the browser
# tests), then runs pytest (extra args are passed on).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
install_extras "all,dev,docs"
if ! bash "$ROOT/scripts/e2e_setup.sh"; then
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  echo "note: chromium could not be installed here; the browser tests will be skipped" >&2
fi
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
