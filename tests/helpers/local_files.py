"""Small local-store workspaces and byte-level damage, shared by the local backend's reliability tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vecbook import LocalVectorStore, VectorNode
from vecbook.stores import local
from vecbook.stores.local.logfile import scan_frames

DIMS = 16


def vec(i: int, dims: int = DIMS) -> np.ndarray:
    return np.random.default_rng(i).standard_normal(dims).astype(np.float32)


def node(i: int, prefix: str = "n", dims: int = DIMS) -> VectorNode:
    return VectorNode(unique_id=f"{prefix}{i}", content=f"text {prefix}{i}", metadata={"i": i, "p": prefix}, vector=vec(i, dims))


def frames_of_ten(path: Path, frames: int = 100) -> LocalVectorStore:
    """A workspace 'ws' written by ``frames`` inserts of 10 nodes (one log frame each), then closed."""
    s = LocalVectorStore(store_dir=path)
    s.create_workspace("ws")
    for f in range(frames):
        s.insert([node(10 * f + i) for i in range(10)], "ws")
    s.close()
    return s


def compacted(path: Path, n: int = 3000, in_log: int = 0) -> Path:
    """A workspace 'ws' with ``n`` nodes in a snapshot (generation 1) and ``in_log`` more in its log."""
    old = local.MIN_COMPACT_BYTES
    local.MIN_COMPACT_BYTES = 0
    try:
        s = LocalVectorStore(store_dir=path)
        s.create_workspace("ws")
        s.insert([node(i) for i in range(n)], "ws")
        s.wait_for_compaction()
    finally:
        local.MIN_COMPACT_BYTES = old
    for i in range(in_log):
        s.insert(node(n + i), "ws")
    s.close()
    assert json.loads((path / "ws" / "meta.json").read_text())["generation"] == 1
    return path / "ws"


def frame_bounds(log: Path) -> list[tuple[int, int]]:
    """(start, end) of every frame of a log."""
    return [(f.start, f.end) for f in scan_frames(log.read_bytes())]


def flip(path: Path, offset: int, bit: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def ids(store: LocalVectorStore, ws: str = "ws") -> set[str]:
    return set(store.read_columns(ws).ids)
