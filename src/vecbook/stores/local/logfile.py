"""The local backend's write-ahead log: checksummed frames.

A log frame is ``MAGIC | u32 payload length | u32 crc32(payload) | payload``;
the payload is one operation: ``b"U"`` + u32 JSON length + JSON rows + float32
vectors (an upsert of a whole batch), or ``b"D"`` + JSON ids (a delete). One
call's batch is one frame, fsynced before the call returns, so a crash leaves
at most the **last** frame torn. Hence the rule when reading: a bad frame (cut
short, or failing its checksum) with no intact frame after it is a torn tail and
is ignored; a bad frame followed by an intact one is damage (:class:`LogDamage`),
never skipped silently. Snapshots are written and read by ``snapshot_files.py``.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..engine.batch import NodeBatch

__all__ = ["FRAME_HEADER", "Frame", "LogDamage", "encode_delete", "encode_upsert", "salvage_frames", "scan_frames"]

MAGIC = b"VBL1"
_HEADER = struct.Struct("<4sII")
FRAME_HEADER = _HEADER.size  # bytes of a frame's marker, length and checksum
_U32 = struct.Struct("<I")


@dataclass
class Frame:
    end: int  # offset just past this frame
    batch: NodeBatch | None = None  # an upsert
    deleted: list[str] | None = None  # a delete
    start: int = 0


class LogDamage(Exception):
    """A bad frame at ``offset`` with an intact frame after it: not a torn tail."""

    def __init__(self, offset: int, reason: str):
        super().__init__(f"{reason} at offset {offset}")
        self.offset, self.reason = offset, reason


def _frame(payload: bytes) -> bytes:
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def encode_upsert(batch: NodeBatch) -> list[bytes | memoryview]:
    """The frame of an upsert of ``batch``, as pieces to write one after the other (header first).

    The vectors (most of the bytes) are not copied: the last piece is a view of the
    batch's matrix, checksummed where it is.
    """
    rows = json.dumps([batch.ids, batch.contents, batch.metadatas], ensure_ascii=False, separators=(",", ":")).encode()
    vectors = memoryview(np.ascontiguousarray(batch.vectors, dtype="<f4")).cast("B")
    head = b"U" + _U32.pack(len(rows)) + _U32.pack(batch.vectors.shape[1] if batch.vectors.ndim == 2 else 0)
    crc = zlib.crc32(vectors, zlib.crc32(rows, zlib.crc32(head)))
    return [_HEADER.pack(MAGIC, len(head) + len(rows) + len(vectors), crc), head, rows, vectors]


def encode_delete(ids: list[str]) -> list[bytes]:
    """The frame of a delete of ``ids``, as pieces like :func:`encode_upsert`'s."""
    return [_frame(b"D" + json.dumps(ids, ensure_ascii=False).encode())]


def _decode(payload: bytes, start: int, end: int) -> Frame:
    kind = payload[:1]
    if kind == b"D":
        return Frame(end, deleted=json.loads(payload[1:]), start=start)
    if kind != b"U":
        raise ValueError(f"unknown frame type {kind!r}")
    (rows_len,) = _U32.unpack_from(payload, 1)
    (dims,) = _U32.unpack_from(payload, 5)
    ids, contents, metadatas = json.loads(payload[9 : 9 + rows_len])
    vectors = np.frombuffer(payload, dtype="<f4", offset=9 + rows_len)  # read-only view; tables copy it
    return Frame(end, batch=NodeBatch(ids, contents, metadatas, vectors.reshape(len(ids), dims)), start=start)


def _problem(data: bytes | memoryview, offset: int) -> str | None:
    """Why the frame at ``offset`` is not intact, or None if it is."""
    size = len(data)
    if offset + _HEADER.size > size:
        return "a frame header cut short"
    magic, length, crc = _HEADER.unpack_from(data, offset)
    if magic != MAGIC:
        return "a frame without its marker"
    if offset + _HEADER.size + length > size:
        return "a frame cut short"
    if zlib.crc32(data[offset + _HEADER.size : offset + _HEADER.size + length]) != crc:
        return "a frame failing its checksum"
    return None


def _next_intact(data: bytes | memoryview, start: int) -> int | None:
    """The offset of the first intact frame at or after ``start``, if any."""
    haystack = data.obj if isinstance(data, memoryview) and isinstance(data.obj, bytes) and len(data) == len(data.obj) else bytes(data)
    offset = haystack.find(MAGIC, start)
    while offset != -1:
        if _problem(haystack, offset) is None:
            return offset
        offset = haystack.find(MAGIC, offset + 1)
    return None


def _decoded(data: bytes | memoryview, offset: int, base: int) -> Frame:
    (length,) = _U32.unpack_from(data, offset + 4)
    body = offset + _HEADER.size
    try:
        return _decode(bytes(data[body : body + length]), base + offset, base + body + length)
    except (ValueError, TypeError, struct.error) as exc:  # json errors are ValueErrors
        raise LogDamage(base + offset, f"a frame that passed its checksum but cannot be decoded ({exc})") from exc


def scan_frames(data: bytes | memoryview, base: int = 0) -> Iterator[Frame]:
    """The intact frames of ``data`` (the log from offset ``base``), in order.

    Stops silently at a torn tail; raises :class:`LogDamage` (absolute offset) at a
    bad frame that has an intact frame after it, or at a frame that cannot be decoded.
    """
    offset, size = 0, len(data)
    while offset < size:
        problem = _problem(data, offset)
        if problem is not None:
            if _next_intact(data, offset + 1) is not None:
                raise LogDamage(base + offset, problem)
            return  # a torn tail: the write that left it never returned
        frame = _decoded(data, offset, base)
        yield frame
        offset = frame.end - base


def salvage_frames(data: bytes | memoryview, skipped: list[tuple[int, int, str]], base: int = 0) -> Iterator[Frame]:
    """Every intact, decodable frame of ``data`` (the log from offset ``base``), skipping damage;
    appends (start, end, why) to ``skipped``, as absolute offsets."""
    offset, size = 0, len(data)
    while offset < size:
        problem = _problem(data, offset)
        if problem is None:
            try:
                frame = _decoded(data, offset, base)
            except LogDamage as damage:
                problem = damage.reason
            else:
                yield frame
                offset = frame.end - base
                continue
        resume = _next_intact(data, offset + 1)
        skipped.append((base + offset, base + (size if resume is None else resume), problem))
        if resume is None:
            return
        offset = resume
