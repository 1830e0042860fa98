"""Reading a whole snapshot (``snapshot_files.py`` describes its files) into a NodeBatch, every byte verified.

Used where every row is needed at once: ``repair`` and the tests. An open maps a snapshot
instead (``snapshot.py``). Snapshots of format 1 (one JSON object, no checksums) are
still read.
"""

from __future__ import annotations

import json
import os
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import compress
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..engine.batch import NodeBatch
from .files import damaged

__all__ = ["read_legacy_snapshot", "read_snapshot"]

_PARALLEL_BYTES = 8 << 20  # vectors at least this big are read and verified in a second thread
_CRC_THREADS = 4  # at most this many threads compute the checksums of a big vector file


def read_snapshot(prefix: Path, info: dict[str, Any], dimensions: int | None) -> NodeBatch:
    """Read and verify a snapshot described by ``info`` (from ``meta.json``).

    Both files are opened first (a compaction may delete them once they are open: they
    stay readable), then the vectors are read and checked in a second thread while
    the JSON is parsed here; file reads and ``crc32`` release the GIL. Raises
    FileNotFoundError if a file is gone (a concurrent compaction: the caller starts
    again), :class:`CorruptedFileError` naming the file and offset on any mismatch,
    and OSError for what the disk refuses.
    """
    json_path, f32_path = prefix.with_suffix(".json"), prefix.with_suffix(".f32")
    n, dims = info["rows"], dimensions or 0
    with open(json_path, "rb") as jf, open(f32_path, "rb", buffering=0) as vf:
        buffer = np.empty((n, dims), dtype="<f4")
        target = memoryview(buffer).cast("B") if n * dims else memoryview(bytearray())
        read_vectors = _vector_reader(vf, target, info["f32"], f32_path)
        if len(target) >= _PARALLEL_BYTES:
            worker = _Worker(read_vectors)
            try:
                columns = _read_columns(jf.read(), info, json_path)
            finally:
                worker.join()
        else:
            read_vectors()
            columns = _read_columns(jf.read(), info, json_path)
    ids, contents, metadatas = columns
    holes = info.get("dead")
    if holes:  # rows deleted before the snapshot was written: not nodes
        keep = np.ones(n, dtype=bool)
        keep[holes] = False
        ids, contents, metadatas = (list(compress(column, keep)) for column in columns)
        buffer = buffer[keep]
    return NodeBatch(ids, contents, metadatas, buffer)


def _read_columns(raw: bytes, info: dict[str, Any], path: Path) -> tuple[list, list, list]:
    """Verify and parse the JSON lines of a snapshot into (ids, contents, metadatas)."""
    expected = info["json"]
    if len(raw) != expected["size"]:
        raise damaged(path, f"{path} holds {len(raw)} bytes where meta.json recorded {expected['size']}")
    lines = raw.split(b"\n")
    if lines[-1] != b"" or len(lines) - 1 != len(expected["crcs"]):
        raise damaged(path, f"{path} holds {len(lines) - 1} lines where meta.json recorded {len(expected['crcs'])}")
    ids: list = []
    contents: list = []
    metadatas: list = []
    offset = 0
    for number, (line, crc) in enumerate(zip(lines, expected["crcs"])):
        if zlib.crc32(line) != crc:
            raise damaged(path, f"{path}: line {number + 1} (bytes {offset}-{offset + len(line)}) fails its checksum", offset)
        if number:
            try:
                part_ids, part_contents, part_metadatas = json.loads(line)
            except ValueError as exc:  # a checksum that matches bad JSON: written wrongly, not flipped
                raise damaged(path, f"{path}: line {number + 1} cannot be parsed: {exc}", offset) from exc
            ids += part_ids
            contents += part_contents
            metadatas += part_metadatas
        offset += len(line) + 1
    if not len(ids) == len(contents) == len(metadatas) == info["rows"]:
        raise damaged(path, f"{path} holds {len(ids)} rows where meta.json recorded {info['rows']}")
    return ids, contents, metadatas


def _vector_reader(f: BinaryIO, target: memoryview, expected: dict[str, Any], path: Path) -> Callable[[], None]:
    """A function that reads ``target`` from ``f`` a checksummed chunk at a time and verifies each.

    The checksums of chunks already read are computed by a few threads while the next
    chunk is read (``crc32`` releases the GIL), so verifying costs little more than
    reading wherever there are idle cores.
    """

    def read() -> None:
        size = os.fstat(f.fileno()).st_size
        if size < expected["size"] or len(target) != expected["size"]:
            raise damaged(path, f"{path} holds {size} bytes where meta.json recorded {expected['size']} ({len(target)} expected)")
        size = expected["size"]  # a later generation may have extended the file: its rows are not ours
        chunk, sums = expected["chunk"], expected["crcs"]
        if len(sums) != -(-size // chunk):
            raise damaged(path, f"meta.json records {len(sums)} checksums for {path}, which needs {-(-size // chunk)}")
        threads = min(_CRC_THREADS, len(sums) - 1, os.cpu_count() or 1)
        with ThreadPoolExecutor(threads) if threads > 1 else _Inline() as pool:
            pending = []
            for number in range(len(sums)):
                piece = target[number * chunk : (number + 1) * chunk]
                _read_exactly(f, piece, path, number * chunk)
                pending.append(pool.submit(zlib.crc32, piece))
            for number, (crc, got) in enumerate(zip(sums, pending)):
                if got.result() != crc:
                    raise damaged(path, f"{path}: bytes {number * chunk}-{min(size, (number + 1) * chunk)} fail their checksum", number * chunk)

    return read


def _read_exactly(f: BinaryIO, piece: memoryview, path: Path, start: int) -> None:
    got = 0
    while got < len(piece):  # readinto may return short on large reads
        more = f.readinto(piece[got:])
        if not more:
            raise damaged(path, f"{path} ended at byte {start + got}", start + got)
        got += more


class _Inline:
    """A stand-in for a thread pool that runs each call at once (small files, one core)."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(self, fn: Callable, *args: Any) -> Future:
        done: Future = Future()
        done.set_result(fn(*args))
        return done


class _Worker:
    """Run ``fn`` in a thread; ``join()`` re-raises what it raised."""

    def __init__(self, fn: Callable[[], None]):
        self._error: BaseException | None = None

        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - handed to join()
                self._error = exc

        self._thread = threading.Thread(target=run, name="vecbook-read-vectors", daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


def read_legacy_snapshot(prefix: Path) -> NodeBatch:
    """Read a snapshot of format 1 (one JSON object, no checksums): only its shape can be checked."""
    json_path, f32_path = prefix.with_suffix(".json"), prefix.with_suffix(".f32")
    with open(json_path, "rb") as jf, open(f32_path, "rb") as vf:
        raw = jf.read()
        try:
            columns = json.loads(raw)
            ids, dims = columns["ids"], columns["dimensions"] or 0
            contents, metadatas = columns["contents"], columns["metadatas"]
        except (ValueError, KeyError, TypeError) as exc:
            raise damaged(json_path, f"cannot read snapshot {json_path}: {exc}") from exc
        n = len(ids)
        buffer = np.empty((n, dims), dtype="<f4")
        got = vf.readinto(memoryview(buffer).cast("B")) if n * dims else 0
        extra = vf.read(1)
    if got != n * dims * 4 or extra or not len(contents) == len(metadatas) == n:
        raise damaged(f32_path, f"snapshot {prefix}: vector file does not hold {n} vectors of {dims} dimensions")
    return NodeBatch(ids, contents, metadatas, buffer)
