"""The local backend's snapshot files: written (whole, or starting with a base's rows), read, salvaged.

A snapshot is two files written before they are published:

``snap-<g>.json``  a header line ``{"rows", "dimensions", "chunk_rows"}``, then one line
                   ``[ids, contents, metadatas]`` per ``chunk_rows`` rows
``snap-<g>.f32``   the raw float32 vectors

:func:`write_snapshot` returns their sizes and the crc32 of every JSON line and of
every ``SNAPSHOT_CHUNK_BYTES`` bytes of vectors (tunables of the package); ``meta.json`` records them and
:func:`read_snapshot` verifies every byte it reads against them. Per-chunk sums
let ``repair`` keep the rows of the chunks that are intact. Snapshots of format 1
(one JSON object, no checksums) are still read. Opening one without reading it is
``snapshot.py``'s job.
"""

from __future__ import annotations

import json
import mmap
import os
import threading
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .. import local as tunables
from ..engine.batch import NodeBatch
from ..engine.row_lists import squared_norms
from .files import damaged
from .snapshot import read_ids, write_ids, write_norms

__all__ = [
    "read_legacy_snapshot",
    "read_snapshot",
    "Salvaged",
    "SnapshotBase",
    "salvage_snapshot",
    "snapshot_base",
    "write_snapshot",
    "write_snapshot_from",
]

_PARALLEL_BYTES = 8 << 20  # vectors at least this big are read and verified in a second thread
_CRC_THREADS = 4  # at most this many threads compute the checksums of a big vector file


@dataclass
class SnapshotBase:
    """A published snapshot whose first ``rows`` rows (whole JSON lines) a new snapshot starts with, unchanged.

    ``prefix`` names its files (``snap-<g>``), ``info`` is what ``meta.json`` records of them.
    Build it with :func:`snapshot_base`, which says how many rows can be taken over.
    """

    prefix: Path
    info: dict[str, Any]
    rows: int
    dimensions: int


def snapshot_base(prefix: Path, info: dict[str, Any] | None, rows: int, dimensions: int | None) -> SnapshotBase | None:
    """The base for a new snapshot whose first ``rows`` rows are those of the snapshot ``prefix``/``info``.

    Only whole JSON lines are taken over, so the rows taken are ``rows`` rounded down to a
    line; None if that is none, or if the snapshot was written with other line or chunk
    sizes (the tunables) or in the old format.
    """
    if not info or "json" not in info or "f32" not in info or not dimensions:
        return None
    line_rows, chunk_bytes = tunables.SNAPSHOT_LINE_ROWS, tunables.SNAPSHOT_CHUNK_BYTES
    if info["f32"].get("chunk") != chunk_bytes or info["f32"]["size"] != info["rows"] * dimensions * 4:
        return None
    taken = min(rows, info["rows"]) // line_rows * line_rows
    if not taken or len(info["json"]["crcs"]) != 1 + -(-info["rows"] // line_rows):
        return None
    try:
        with open(prefix.with_suffix(".json"), "rb") as f:
            header = json.loads(f.readline())
    except (OSError, ValueError):
        return None  # gone (another process published) or damaged: encode every row
    if not isinstance(header, dict) or header.get("chunk_rows") != line_rows or header.get("rows") != info["rows"]:
        return None
    return SnapshotBase(prefix, info, taken, dimensions)


def write_snapshot(prefix: Path, batch: NodeBatch, base: SnapshotBase | None = None, sq_norms: np.ndarray | None = None) -> dict[str, Any]:
    """Write ``prefix.json``, ``prefix.f32`` and ``prefix.nrm``, the first two fsynced; return what
    ``meta.json`` records of them. See :func:`write_snapshot_from`."""
    rows = (batch.ids, batch.contents, batch.metadatas)
    dims = base.dimensions if base is not None else batch.dimensions
    return write_snapshot_from(prefix, rows, [batch.vectors], dims, base, sq_norms)


def write_snapshot_from(
    prefix: Path,
    rows: tuple[list, list, list],
    vector_chunks: Iterable[np.ndarray],
    dimensions: int | None,
    base: SnapshotBase | None = None,
    sq_norms: np.ndarray | None = None,
) -> dict[str, Any]:
    """Write a snapshot of ``rows`` (ids, contents, metadatas) whose vectors come in ``vector_chunks``
    (float32 matrices, in row order, each written before the next is asked for).

    The JSON is encoded ``SNAPSHOT_LINE_ROWS`` rows at a time and the vectors are
    written from the arrays themselves: no single call holds the GIL for long, so a
    compaction in a background thread does not stall the threads that keep reading
    and writing. With a ``base``, the snapshot's first ``base.rows`` rows are the base's
    and ``rows`` are only the rows after them: the base's JSON lines and whole
    checksummed chunks of vectors are copied byte for byte by the kernel, with their
    sums (damage in them stays detectable), so a compaction after a bulk load encodes
    and checksums only the rows written since the last one. ``sq_norms``: the squared
    norms of every row, if known (required with a base; else computed from the chunks).
    """
    ids, contents, metadatas = rows
    first = base.rows if base is not None else 0
    n, chunk_rows, chunk_bytes = first + len(ids), tunables.SNAPSHOT_LINE_ROWS, tunables.SNAPSHOT_CHUNK_BYTES
    with open(prefix.with_suffix(".json"), "wb") as f:
        header = json.dumps({"rows": n, "dimensions": dimensions, "chunk_rows": chunk_rows}).encode()
        f.write(header + b"\n")
        line_sums = [zlib.crc32(header)]
        if base is not None:
            line_sums += _copy_lines(base, f)
        for start in range(0, len(ids), chunk_rows):
            stop = start + chunk_rows
            line = json.dumps([ids[start:stop], contents[start:stop], metadatas[start:stop]], ensure_ascii=False, separators=(",", ":")).encode()
            line_sums.append(zlib.crc32(line))
            f.write(line + b"\n")
        f.flush()
        json_size = os.fstat(f.fileno()).st_size  # not tell(): the copies wrote through the descriptor
        os.fsync(f.fileno())
    norms: list[np.ndarray] = []
    with open(prefix.with_suffix(".f32"), "wb") as f:
        chunk_sums, lead = _copy_chunks(base, f) if base is not None else ([], b"")
        sums = _Chunks(chunk_bytes)
        sums.feed(lead)
        f.write(lead)
        for chunk in vector_chunks:
            vectors = np.ascontiguousarray(chunk, dtype="<f4")
            if sq_norms is None:
                norms.append(squared_norms(vectors) if len(vectors) else np.zeros(0))
            raw = memoryview(vectors).cast("B") if vectors.size else memoryview(b"")
            for start in range(0, len(raw), chunk_bytes):
                part = raw[start : start + chunk_bytes]
                sums.feed(part)
                f.write(part)
        chunk_sums += sums.close()
        f.flush()
        f32_size = os.fstat(f.fileno()).st_size
        os.fsync(f.fileno())
    write_norms(prefix.with_suffix(".nrm"), None, sq_norms if sq_norms is not None else np.concatenate(norms or [np.zeros(0)]))
    all_ids = ids if base is None else _base_ids(base, ids)
    if all_ids is not None:
        write_ids(prefix.with_suffix(".ids"), all_ids)
    return {
        "rows": n,
        "json": {"size": json_size, "crcs": line_sums},
        "f32": {"size": f32_size, "chunk": chunk_bytes, "crcs": chunk_sums},
    }


def _base_ids(base: SnapshotBase, ids: list[str]) -> list[str] | None:
    """Every id of a snapshot that starts with ``base``'s rows: the base's id cache + ``ids``; None without that cache."""
    base_ids = read_ids(base.prefix.with_suffix(".ids"), base.info["rows"])
    return None if base_ids is None else base_ids[: base.rows] + list(ids)


def _copy_lines(base: SnapshotBase, out: BinaryIO) -> list[int]:
    """Append the base's JSON lines of its first ``base.rows`` rows to ``out``; their checksums."""
    lines = base.rows // tunables.SNAPSHOT_LINE_ROWS
    with open(base.prefix.with_suffix(".json"), "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        start = end = m.find(b"\n") + 1  # after the header
        for _ in range(lines):  # JSON escapes newlines inside strings: every one ends a line
            end = m.find(b"\n", end) + 1
            if end <= 0:
                raise ValueError(f"{base.prefix.with_suffix('.json')} holds fewer lines than meta.json records")
        out.flush()
        _copy_range(f.fileno(), out.fileno(), start, end - start)
    return base.info["json"]["crcs"][1 : 1 + lines]


def _copy_chunks(base: SnapshotBase, out: BinaryIO) -> tuple[list[int], bytes]:
    """Append the base's whole checksummed chunks of vectors before row ``base.rows`` to ``out``.

    Returns their checksums and the bytes of those rows after the last whole chunk (to be
    written, and summed, with the rows that follow).
    """
    chunk, size = base.info["f32"]["chunk"], base.rows * base.dimensions * 4
    whole = size // chunk * chunk
    with open(base.prefix.with_suffix(".f32"), "rb", buffering=0) as f:
        out.flush()
        _copy_range(f.fileno(), out.fileno(), 0, whole)
        lead = os.pread(f.fileno(), size - whole, whole) if size > whole else b""
    if len(lead) != size - whole:
        raise ValueError(f"{base.prefix.with_suffix('.f32')} is shorter than meta.json records")
    return base.info["f32"]["crcs"][: whole // chunk], lead


def _copy_range(src: int, dst: int, offset: int, length: int) -> None:
    """Copy ``length`` bytes of ``src`` from ``offset`` to the end of ``dst`` (in the kernel where it can)."""
    os.lseek(dst, 0, os.SEEK_END)
    end = offset + length
    while offset < end:
        try:
            done = os.copy_file_range(src, dst, end - offset, offset)
        except (AttributeError, OSError):  # no copy_file_range here (or not between these files)
            done = os.write(dst, os.pread(src, min(end - offset, 16 << 20), offset))
        if not done:
            raise ValueError("a snapshot file ended early while being copied")
        offset += done


class _Chunks:
    """Running crc32 of every ``size`` bytes of a stream fed in pieces."""

    def __init__(self, size: int):
        self.size, self.crc, self.filled, self.sums = size, 0, 0, []

    def feed(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while len(view):
            take = min(len(view), self.size - self.filled)
            self.crc = zlib.crc32(view[:take], self.crc)
            self.filled += take
            view = view[take:]
            if self.filled == self.size:
                self.sums.append(self.crc)
                self.crc, self.filled = 0, 0

    def close(self) -> list[int]:
        if self.filled:
            self.sums.append(self.crc)
        return self.sums


def read_snapshot(prefix: Path, info: dict[str, Any], dimensions: int | None, spare: float = 0.25) -> NodeBatch:
    """Read and verify a snapshot described by ``info`` (from ``meta.json``).

    Its vectors are the first rows of a buffer with ``spare`` extra capacity. Both
    files are opened first (a compaction may delete them once they are open: they
    stay readable), then the vectors are read and checked in a second thread while
    the JSON is parsed here; file reads and ``crc32`` release the GIL. Raises
    FileNotFoundError if a file is gone (a concurrent compaction: the caller starts
    again), :class:`CorruptedFileError` naming the file and offset on any mismatch,
    and OSError for what the disk refuses.
    """
    json_path, f32_path = prefix.with_suffix(".json"), prefix.with_suffix(".f32")
    n, dims = info["rows"], dimensions or 0
    with open(json_path, "rb") as jf, open(f32_path, "rb", buffering=0) as vf:
        buffer = np.empty((n + max(1024, int(n * spare)), dims), dtype="<f4")
        target = memoryview(buffer[:n]).cast("B") if n * dims else memoryview(bytearray())
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
    return NodeBatch(ids, contents, metadatas, buffer[:n])


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
        if size != expected["size"] or len(target) != size:
            raise damaged(path, f"{path} holds {size} bytes where meta.json recorded {expected['size']} ({len(target)} expected)")
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


def read_legacy_snapshot(prefix: Path, spare: float = 0.25) -> NodeBatch:
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
        buffer = np.empty((n + max(1024, int(n * spare)), dims), dtype="<f4")
        got = vf.readinto(memoryview(buffer[:n]).cast("B")) if n * dims else 0
        extra = vf.read(1)
    if got != n * dims * 4 or extra or not len(contents) == len(metadatas) == n:
        raise damaged(f32_path, f"snapshot {prefix}: vector file does not hold {n} vectors of {dims} dimensions")
    return NodeBatch(ids, contents, metadatas, buffer[:n])


@dataclass
class Salvaged:
    """What :func:`salvage_snapshot` could read: the intact rows, and what was lost."""

    batch: NodeBatch
    problems: list[str] = field(default_factory=list)
    lost_rows: int = 0
    lost_ids: list[str] = field(default_factory=list)


def salvage_snapshot(prefix: Path, info: dict[str, Any] | None, dimensions: int | None) -> Salvaged:
    """The rows of a snapshot whose JSON line and vector chunks are intact (``repair``'s reader).

    ``info`` None: no checksums are known (``meta.json`` lost, or format 1); rows are
    kept where the files parse and hold their vectors.
    """
    json_path, f32_path = prefix.with_suffix(".json"), prefix.with_suffix(".f32")
    lines = json_path.read_bytes().split(b"\n")
    raw = f32_path.read_bytes()
    if lines[-1] == b"":
        lines.pop()
    problems: list[str] = []
    try:
        header = json.loads(lines[0]) if lines else None
    except ValueError:
        header = None
    if isinstance(header, dict) and "ids" in header:
        return _salvage_legacy(header, raw, dimensions, problems, prefix)
    if not isinstance(header, dict):
        problems.append(f"{json_path}: the header line is damaged")
        header = {}
    dims = dimensions or header.get("dimensions") or 0
    chunk_rows = header.get("chunk_rows") or tunables.SNAPSHOT_LINE_ROWS
    rows_total = header.get("rows") if isinstance(header.get("rows"), int) else None
    good_chunk = _intact_chunks(raw, info["f32"] if info else None)
    if not all(good_chunk):
        problems.append(f"{f32_path}: {good_chunk.count(False)} chunk(s) of vectors fail their checksum")
    row_bytes = dims * 4
    kept: list[tuple[str, Any, Any, int]] = []
    lost_ids: list[str] = []
    lost_rows = 0
    for number, line in enumerate(lines[1:], start=1):
        first_row = (number - 1) * chunk_rows
        part = _salvage_line(line, number, info["json"]["crcs"] if info else None, json_path, problems)
        if part is None:
            lost_rows += chunk_rows if rows_total is None else max(0, min(chunk_rows, rows_total - first_row))
            continue
        for i, row_values in enumerate(zip(*part)):
            row = first_row + i
            if _row_intact(row, row_bytes, len(raw), info["f32"]["chunk"] if info else 1 << 62, good_chunk):
                kept.append((*row_values, row))
            else:
                lost_ids.append(row_values[0])
    if lost_ids:
        problems.append(f"{f32_path}: the vectors of {len(lost_ids)} node(s) are damaged or missing; those nodes are dropped")
    rows = np.array([k[3] for k in kept], dtype=np.int64)
    matrix = np.frombuffer(raw, dtype="<f4", count=(len(raw) // row_bytes) * dims if row_bytes else 0).reshape(-1, dims) if row_bytes else None
    vectors = matrix[rows].copy() if matrix is not None else np.zeros((len(kept), dims), dtype=np.float32)
    batch = NodeBatch([k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept], vectors)
    return Salvaged(batch, problems, lost_rows + len(lost_ids), lost_ids)


def _intact_chunks(raw: bytes, expected: dict[str, Any] | None) -> list[bool]:
    """For each checksummed chunk of vectors: whether it is intact (all True without checksums)."""
    if expected is None:
        return [True]  # one chunk as big as any file
    chunk, view = expected["chunk"], memoryview(raw)
    return [zlib.crc32(view[n * chunk : (n + 1) * chunk]) == crc for n, crc in enumerate(expected["crcs"])]


def _row_intact(row: int, row_bytes: int, size: int, chunk: int, good_chunk: list[bool]) -> bool:
    start, stop = row * row_bytes, (row + 1) * row_bytes
    if stop > size:
        return False
    if row_bytes == 0:
        return True
    last = (stop - 1) // chunk
    return last < len(good_chunk) and all(good_chunk[start // chunk : last + 1])


def _salvage_line(line: bytes, number: int, sums: list[int] | None, path: Path, problems: list[str]) -> tuple | None:
    """(ids, contents, metadatas) of one JSON line, or None (noted in ``problems``) if it is damaged."""
    if sums is not None and (number >= len(sums) or zlib.crc32(line) != sums[number]):
        problems.append(f"{path}: line {number + 1} fails its checksum; its rows are dropped")
        return None
    try:
        ids, contents, metadatas = json.loads(line)
        if not (isinstance(ids, list) and len(ids) == len(contents) == len(metadatas)):
            raise ValueError("columns of different lengths")
        return ids, contents, metadatas
    except (ValueError, TypeError) as exc:
        problems.append(f"{path}: line {number + 1} cannot be parsed ({exc}); its rows are dropped")
        return None


def _salvage_legacy(columns: dict, raw: bytes, dimensions: int | None, problems: list[str], prefix: Path) -> Salvaged:
    """A format-1 snapshot: all of it if its parts agree, else nothing (it has no checksums to tell more)."""
    try:
        ids, contents, metadatas = columns["ids"], columns["contents"], columns["metadatas"]
        dims = dimensions or columns.get("dimensions") or 0
        n = len(ids)
        if not (len(contents) == len(metadatas) == n and len(raw) == n * dims * 4):
            raise ValueError(f"{n} ids, {len(contents)} contents, {len(metadatas)} metadata, {len(raw)} bytes of vectors")
    except (KeyError, TypeError, ValueError) as exc:
        problems.append(f"snapshot {prefix} is inconsistent ({exc}); it is dropped")
        return Salvaged(NodeBatch([], [], [], np.zeros((0, dimensions or 0), dtype=np.float32)), problems)
    vectors = np.frombuffer(raw, dtype="<f4").reshape(n, dims).copy()
    return Salvaged(NodeBatch(ids, contents, metadatas, vectors), problems)
