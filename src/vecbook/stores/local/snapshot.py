"""Opening a snapshot without reading it: vectors memory-mapped, rows decoded when first needed.

A snapshot (``snap-<g>.json`` lines + ``snap-<g>.f32``, see ``snapshot_files.py``) is opened by
checking the sizes ``meta.json`` records and mapping both files; nothing else is read.

- The vectors are a copy-on-write map of the ``.f32`` file (``FileMatrix.map_file``): writes
  to rows change this process's pages, never the file, and rows appended go right after
  them in the writer's scratch, with no copy. The page cache holds the file once for every
  process.
- The rows (id, content, metadata) are decoded when a call needs them: just the rows it
  reads, or every row for a call that needs them all (:class:`SnapshotRows`, in
  ``snapshot_rows.py``); a line's checksum is checked before any value of it is used.
  Writes need only the ids (the ``.ids`` cache): what they write waits beside the rows.
- Every checksum of both files is verified by a :class:`Verifier` in a thread of its
  own. The open waits for it when the vectors are at most ``VERIFY_AT_OPEN_BYTES``
  (a tunable of the package); a bigger snapshot answers first calls meanwhile, and
  once damage is found every call raises :class:`CorruptedFileError` (see
  docs/reliability.md). A compaction waits for it: damage is never copied forward.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..._file_writes import write_all
from ...errors import CorruptedFileError
from ..engine.background import lower_this_threads_priority
from ..engine.matrix import FileMatrix
from ..engine.row_lists import squared_norms
from .files import damaged, snap_name
from .snapshot_rows import SnapshotRows, extend_ids, read_ids, write_ids

__all__ = ["SnapshotRows", "Verifier", "extend_ids", "open_snapshot", "publish_snapshot", "read_ids", "write_ids", "write_norms"]

_CRC_THREADS = 2  # threads verifying a big snapshot (zlib.crc32 releases the GIL)
_CRC_RUN_BYTES = 16 << 20  # what one of them checks at a time


def _map(path: Path, size: int, copy: bool, extended: bool = False) -> mmap.mmap | bytes:
    """Map the first ``size`` bytes of ``path``, checking it holds exactly that many (FileNotFoundError if it
    is gone); ``extended``: or more (a vector file later generations extend, see ``snapshot_files.py``)."""
    with open(path, "rb") as f:
        got = f.seek(0, 2)
        if got < size or (got > size and not extended):
            raise damaged(path, f"{path} holds {got} bytes where meta.json recorded {size}")
        if size == 0:
            return b""
        return mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY if copy else mmap.ACCESS_READ)


_NORMS = struct.Struct("<4sQI")  # marker, rows, crc32 of the float64 squared norms that follow
_NORMS_MAGIC = b"VBN1"


def write_norms(path: Path, vectors: np.ndarray, sq_norms: np.ndarray | None = None) -> None:
    """Save the squared norms of ``vectors`` (or ``sq_norms``, if given) beside a snapshot: a cache that
    spares the next open a pass over every vector. Not fsynced and not in ``meta.json``: a bad or
    missing one is recomputed."""
    if sq_norms is None:
        sq_norms = squared_norms(vectors) if len(vectors) else np.zeros(0)
    sq = np.ascontiguousarray(sq_norms, dtype="<f8")
    with open(path, "wb") as f:
        f.write(_NORMS.pack(_NORMS_MAGIC, len(sq), zlib.crc32(sq)))
        f.flush()
        write_all(f.fileno(), sq)


def _read_norms(path: Path, rows: int) -> np.ndarray | None:
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if len(raw) != _NORMS.size + 8 * rows:
        return None
    magic, count, crc = _NORMS.unpack_from(raw)
    body = memoryview(raw)[_NORMS.size :]
    if magic != _NORMS_MAGIC or count != rows or zlib.crc32(body) != crc:
        return None
    return np.frombuffer(body, dtype="<f8").astype(np.float64)


def publish_snapshot(temp: Path, folder: Path, generation: int) -> None:
    """Rename a snapshot written at ``temp`` (by ``write_snapshot``) into place as generation ``generation``'s."""
    target = folder / snap_name(generation)
    os.replace(temp.with_suffix(".json"), target.with_suffix(".json"))
    os.replace(temp.with_suffix(".f32"), target.with_suffix(".f32"))
    for cache in (".nrm", ".ids", ".rix"):
        try:
            os.replace(temp.with_suffix(cache), target.with_suffix(cache))
        except FileNotFoundError:
            pass


def open_snapshot(
    prefix: Path, info: dict[str, Any], dimensions: int | None, storage: FileMatrix
) -> tuple[np.ndarray, SnapshotRows, Verifier, np.ndarray | None]:
    """The vectors (a copy-on-write map, by ``storage.map_file``), the lazily decoded rows, the
    running verifier of a snapshot, and its rows' squared norms if a valid ``.nrm`` cache holds them.

    The verifier reads a map of its own: rows the table rewrites in place (private pages of
    its map) never reach the checksums, which are of the file.
    Raises FileNotFoundError if a file is gone (a concurrent compaction: the caller starts
    again) and :class:`CorruptedFileError` if a size or the line count disagrees with ``info``.
    """
    json_path, f32_path = prefix.with_suffix(".json"), prefix.with_suffix(".f32")
    n, dims = info["rows"], dimensions or 0
    if info["f32"]["size"] != 4 * n * dims:
        raise damaged(f32_path, f"meta.json records {info['f32']['size']} bytes for {f32_path}, where {n} rows of {dims} need {4 * n * dims}")
    text = _map(json_path, info["json"]["size"], copy=False)
    raw = _map(f32_path, info["f32"]["size"], copy=False, extended=True)
    rows = SnapshotRows(json_path, text, info)
    vectors = storage.map_file(f32_path, n, dims)
    checks = [(json_path, text, lambda: rows.spans, info["json"]["crcs"])]
    chunk = info["f32"]["chunk"]
    size = info["f32"]["size"]
    spans = [(start, min(size, start + chunk)) for start in range(0, size, chunk)]
    if len(spans) != len(info["f32"]["crcs"]):
        raise damaged(f32_path, f"meta.json records {len(info['f32']['crcs'])} checksums for {f32_path}, which needs {len(spans)}")
    checks.append((f32_path, raw, lambda: spans, info["f32"]["crcs"]))
    return vectors, rows, Verifier(checks), _read_norms(prefix.with_suffix(".nrm"), n)


def _crc_runs(spans: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """``spans`` in runs of consecutive spans of about ``_CRC_RUN_BYTES`` each: one task per run, not per
    line (a task per JSON line made the verifier's threads trade the GIL with the caller's at every line:
    +20 ms on a 100k open, measured)."""
    run_bytes = _CRC_RUN_BYTES
    runs, run, size = [], [], 0
    for start, end in spans:
        run.append((start, end))
        size += end - start
        if size >= run_bytes:
            runs.append(run)
            run, size = [], 0
    return runs + [run] if run else runs


def _crc_of_run(data: Any, run: list[tuple[int, int]]) -> list[int]:
    sums = []
    with memoryview(data) as view:
        for start, end in run:
            with view[start:end] as piece:
                sums.append(zlib.crc32(piece))
    return sums


class Verifier:
    """Verify checksummed spans of mapped files in a background thread; remember the first damage found."""

    def __init__(self, checks: list[tuple[Path, Any, Callable[[], list[tuple[int, int]]], list[int]]]):
        self.damage: CorruptedFileError | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(checks,), name="vecbook-verify", daemon=True)
        self._thread.start()

    def _run(self, checks: list) -> None:
        lower_this_threads_priority()
        try:
            with ThreadPoolExecutor(_CRC_THREADS) as pool:
                for path, data, spans_of, crcs in checks:
                    runs = _crc_runs(spans_of())
                    sums = (got for run_sums in pool.map(partial(_crc_of_run, data), runs) for got in run_sums)
                    for (start, end), got, crc in zip((span for run in runs for span in run), sums, crcs):
                        if got != crc:
                            raise damaged(path, f"{path}: bytes {start}-{end} fail their checksum", start)
        except CorruptedFileError as exc:
            self.damage = exc
        except BaseException as exc:  # noqa: BLE001 - an I/O error while reading the map is damage to report too
            self.damage = damaged(checks[0][0], f"cannot verify the snapshot: {type(exc).__name__}: {exc}")
        finally:
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def check(self) -> None:
        """Raise the damage found so far, if any (does not wait)."""
        if self.damage is not None:
            raise self.damage

    def wait(self) -> None:
        """Wait until every byte is verified; raise the damage found, if any."""
        self._done.wait()
        self.check()
