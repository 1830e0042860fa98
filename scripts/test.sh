#!/usr/bin/env bash
# The test suite: installs every extra into .venv, then runs pytest (extra args are passed on).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
install_extras "all,dev"
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
