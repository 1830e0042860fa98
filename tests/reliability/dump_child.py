"""Child for the dump crash test: ``python -m tests.reliability.dump_child STORE DUMP_DIR`` dumps workspace "ws"."""

import sys

import vecbook

store = vecbook.LocalVectorStore(store_dir=sys.argv[1])
print("START", flush=True)
store.dump_workspace("ws", path=sys.argv[2])
print("DONE", flush=True)
