"""The local backend's on-disk pieces: checksummed log frames and snapshots.

A log frame is ``MAGIC | u32 payload length | u32 crc32(payload) | payload``;
the payload is one operation: ``b"U"`` + u32 JSON length + JSON rows + float32
vectors (an upsert of a whole batch), or ``b"D"`` + JSON ids (a delete). One
call's batch is one frame, so a crash leaves it wholly there or wholly absent:
a torn or corrupt tail fails its length or checksum and is ignored.

A snapshot is two files written before they are published: ``.json`` with the
ids, contents and metadata columns, and ``.f32`` with the raw vectors.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import StoreCorruptedError
from ..engine.batch import NodeBatch

__all__ = ["encode_upsert", "encode_delete", "scan_frames", "Frame", "write_snapshot", "read_snapshot", "write_durably"]

MAGIC = b"VBL1"
_HEADER = struct.Struct("<4sII")
_U32 = struct.Struct("<I")


@dataclass
class Frame:
    end: int  # offset just past this frame
    batch: NodeBatch | None = None  # an upsert
    deleted: list[str] | None = None  # a delete


def _frame(payload: bytes) -> bytes:
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def encode_upsert(batch: NodeBatch) -> bytes:
    rows = json.dumps([batch.ids, batch.contents, batch.metadatas], ensure_ascii=False, separators=(",", ":")).encode()
    vectors = np.ascontiguousarray(batch.vectors, dtype="<f4")
    head = _U32.pack(len(rows)) + _U32.pack(vectors.shape[1] if vectors.ndim == 2 else 0)
    return _frame(b"U" + head + rows + vectors.tobytes())


def encode_delete(ids: list[str]) -> bytes:
    return _frame(b"D" + json.dumps(ids, ensure_ascii=False).encode())


def _decode(payload: bytes, end: int) -> Frame:
    kind = payload[:1]
    if kind == b"D":
        return Frame(end, deleted=json.loads(payload[1:]))
    if kind != b"U":
        raise ValueError(f"unknown frame type {kind!r}")
    (rows_len,) = _U32.unpack_from(payload, 1)
    (dims,) = _U32.unpack_from(payload, 5)
    ids, contents, metadatas = json.loads(payload[9 : 9 + rows_len])
    vectors = np.frombuffer(payload, dtype="<f4", offset=9 + rows_len)  # read-only view; tables copy it
    return Frame(end, batch=NodeBatch(ids, contents, metadatas, vectors.reshape(len(ids), dims)))


def scan_frames(data: bytes | memoryview, start: int = 0) -> Iterator[Frame]:
    """Complete, intact frames from ``start``; stops silently at a torn or corrupt tail."""
    offset = start
    size = len(data)
    while offset + _HEADER.size <= size:
        magic, length, crc = _HEADER.unpack_from(data, offset)
        body_start = offset + _HEADER.size
        if magic != MAGIC or body_start + length > size:
            return
        payload = bytes(data[body_start : body_start + length])
        if zlib.crc32(payload) != crc:
            return
        try:
            frame = _decode(payload, body_start + length)
        except (ValueError, json.JSONDecodeError, struct.error) as exc:
            raise StoreCorruptedError(f"log frame at offset {offset} passed its checksum but cannot be decoded: {exc}") from exc
        yield frame
        offset = frame.end


def write_durably(path: Path, data: bytes) -> None:
    """Write a new file and fsync it (the caller publishes it with an atomic rename)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_snapshot(prefix: Path, batch: NodeBatch, chunk: int = 2048) -> None:
    """Write ``prefix.json`` and ``prefix.f32``, both fsynced.

    The JSON is encoded ``chunk`` rows at a time and the vectors are written from
    the array itself: no single call holds the GIL for long, so a compaction in a
    background thread does not stall the threads that keep reading and writing.
    """
    with open(prefix.with_suffix(".json"), "wb") as f:
        f.write(b'{"dimensions":' + json.dumps(batch.dimensions).encode())
        for key in ("ids", "contents", "metadatas"):
            column = getattr(batch, key)
            f.write(b',"' + key.encode() + b'":[')
            for start in range(0, len(column), chunk):
                if start:
                    f.write(b",")
                f.write(json.dumps(column[start : start + chunk], ensure_ascii=False, separators=(",", ":")).encode()[1:-1])
            f.write(b"]")
        f.write(b"}")
        f.flush()
        os.fsync(f.fileno())
    vectors = np.ascontiguousarray(batch.vectors, dtype="<f4")
    with open(prefix.with_suffix(".f32"), "wb") as f:
        step = max(1, (8 << 20) // max(1, vectors.itemsize * (vectors.shape[1] if vectors.ndim == 2 else 1)))
        for start in range(0, len(vectors), step):
            f.write(memoryview(vectors[start : start + step]).cast("B"))
        f.flush()
        os.fsync(f.fileno())


def read_snapshot(prefix: Path, spare: float = 0.25) -> NodeBatch:
    """Read a snapshot; its vectors are the first rows of a buffer with ``spare`` extra capacity."""
    try:
        columns = json.loads(prefix.with_suffix(".json").read_bytes())
        ids = columns["ids"]
        dims = columns["dimensions"] or 0
        n = len(ids)
        buffer = np.empty((n + max(1024, int(n * spare)), dims), dtype="<f4")
        with open(prefix.with_suffix(".f32"), "rb") as f:
            got = f.readinto(memoryview(buffer[:n]).cast("B")) if n * dims else 0
            extra = f.read(1)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreCorruptedError(f"cannot read snapshot {prefix}: {exc}") from exc
    if got != n * dims * 4 or extra:
        raise StoreCorruptedError(f"snapshot {prefix}: vector file does not hold {n} vectors of {dims} dimensions")
    return NodeBatch(ids, columns["contents"], columns["metadatas"], buffer[:n])
