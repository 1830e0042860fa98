"""Embedded engines (Chroma's PersistentClient, Qdrant's local mode) take one process per folder:
a second process is refused with StoreInUseError pointing to server mode, and gets in once the
first has closed its store."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import vecbook
from vecbook import VectorNode

OPEN = """
import sys, vecbook
try:
    store = vecbook.{cls}({arg}={path!r})
    store.create_workspace("w", dimensions=4)
    print("opened", store.count("w"))
    store.close()
except vecbook.StoreInUseError as exc:
    print("refused:", exc)
"""


def other_process(cls: str, arg: str, path) -> str:
    code = OPEN.format(cls=cls, arg=arg, path=str(path))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout.strip()


@pytest.mark.parametrize("cls, arg, module, hint", [("ChromaVectorStore", "store_dir", "chromadb", "chroma run"), ("QdrantVectorStore", "path", "qdrant_client", "Qdrant server")])
def test_a_second_process_is_refused_until_the_first_closes(tmp_path, cls, arg, module, hint):
    pytest.importorskip(module)
    first = getattr(vecbook, cls)(**{arg: str(tmp_path / "db")})
    first.create_workspace("w", dimensions=4)
    first.insert(VectorNode(unique_id="a", vector=np.ones(4)), "w")
    second = getattr(vecbook, cls)(**{arg: str(tmp_path / "db")})  # the same process may open it again
    assert second.count("w") == 1
    answer = other_process(cls, arg, tmp_path / "db")
    assert answer.startswith("refused:") and hint in answer, answer
    second.close()
    first.close()
    assert other_process(cls, arg, tmp_path / "db") == "opened 1"
