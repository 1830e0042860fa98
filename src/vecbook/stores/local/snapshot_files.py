"""The local backend's snapshot files: written whole, or starting with a base's rows.

A snapshot is two files written before they are published:

``snap-<g>.json``  a header line ``{"rows", "dimensions", "chunk_rows"}`` (and ``"dead"``, the rows
                   deleted before it was written: holes, also listed in ``meta.json``), then one
                   line ``[ids, contents, metadatas]`` per ``chunk_rows`` rows
``snap-<g>.f32``   the raw float32 vectors

A snapshot that starts with the published one's rows (a compaction after appends) is
written on top of it: its JSON starts with a copy of the base's whole lines, and its
``.f32`` *is* the base's file, extended. The new name is a hard link to the base's file,
rows are appended past the size ``meta.json`` records for the base, and readers of the
base read only that many bytes, so the base's generation stays intact while (and after)
its file grows. Only one writer at a time may extend a file (the caller holds the
workspace's ``EXTEND`` lock), and it first cuts off what an interrupted extension left.
A 1M-row bulk load wrote 7.5 GB for 1.5 GB of vectors when every compaction copied the
whole file; a 10M close rewrote 15 GB to fold in a small log.

:func:`write_snapshot` returns their sizes and the crc32 of every JSON line and of
every ``SNAPSHOT_CHUNK_BYTES`` bytes of vectors (tunables of the package); ``meta.json`` records them and
every reader verifies the bytes it uses against them. Per-chunk sums let ``repair`` keep
the rows of the chunks that are intact. Beside them go caches, each with a checksum of its
own (not in ``meta.json``, rebuilt when missing or bad): the squared norms (``.nrm``), the ids
(``.ids``) and the row index (``.rix``, ``row_index.py``). Reading a whole snapshot is
``snapshot_read.py``'s job, opening one without reading it ``snapshot.py``'s, salvaging
one ``snapshot_salvage.py``'s.
"""

from __future__ import annotations

import json
import mmap
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..._file_writes import write_all
from .. import local as tunables
from ..engine.batch import NodeBatch
from ..engine.row_lists import squared_norms
from .files import copy_range
from .row_index import index_builder, save_row_index
from .snapshot import extend_ids, write_ids, write_norms

__all__ = ["SnapshotBase", "snapshot_base", "write_snapshot", "write_snapshot_from"]


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
    hold: Any = None  # what makes the base's vector file ours to extend (the EXTEND lock): released by the caller


def snapshot_base(prefix: Path, info: dict[str, Any] | None, rows: int, dimensions: int | None) -> SnapshotBase | None:
    """The base for a new snapshot whose first ``rows`` rows are those of the snapshot ``prefix``/``info``.

    The new snapshot must hold every row of the base (its vector file is extended, never
    cut). Only whole JSON lines are taken over, so the rows taken are the base's rounded
    down to a line; None if that is none, if ``rows`` is fewer than the base's, or if the
    snapshot was written with other line or chunk sizes (the tunables) or in the old format.
    """
    if not info or "json" not in info or "f32" not in info or not dimensions:
        return None
    line_rows, chunk_bytes = tunables.SNAPSHOT_LINE_ROWS, tunables.SNAPSHOT_CHUNK_BYTES
    if info["f32"].get("chunk") != chunk_bytes or info["f32"]["size"] != info["rows"] * dimensions * 4 or rows < info["rows"]:
        return None
    taken = info["rows"] // line_rows * line_rows
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


def write_snapshot(prefix: Path, batch: NodeBatch) -> dict[str, Any]:
    """Write ``prefix.json``, ``prefix.f32`` and ``prefix.nrm`` of ``batch`` whole, the first two fsynced;
    return what ``meta.json`` records of them. See :func:`write_snapshot_from`."""
    return write_snapshot_from(prefix, (batch.ids, batch.contents, batch.metadatas), [batch.vectors], batch.dimensions)


def write_snapshot_from(
    prefix: Path,
    rows: tuple[list, list, list],
    vector_chunks: Iterable[np.ndarray],
    dimensions: int | None,
    base: SnapshotBase | None = None,
    sq_norms: np.ndarray | None = None,
    dead: np.ndarray | None = None,
) -> dict[str, Any]:
    """Write a snapshot of ``rows`` (ids, contents, metadatas) whose vectors come in ``vector_chunks``
    (float32 matrices, in row order, each written before the next is asked for).

    The JSON is encoded ``SNAPSHOT_LINE_ROWS`` rows at a time and the vectors are
    written from the arrays themselves: no single call holds the GIL for long, so a
    compaction in a background thread does not stall the threads that keep reading
    and writing. With a ``base``, the snapshot's first ``base.rows`` rows are the base's
    and ``rows`` are only the rows after them: the base's JSON lines and whole
    checksummed chunks of vectors are copied byte for byte by the kernel, with their
    sums (damage in them stays detectable), and its id cache and row index are extended
    (:func:`extend_ids`, :class:`IndexBuilder`), so a compaction after a bulk load encodes,
    checksums and sorts only the rows written since the last one. ``sq_norms``: the squared
    norms of every row, if known (required with a base; else computed from the chunks).
    ``dead``: the snapshot's holes, rows deleted before it was written (sorted row numbers):
    ``meta.json`` and the header line list them; those written here (their id is None) get an
    empty id, which no node has, and those taken over from the base keep theirs.
    """
    ids, contents, metadatas = rows
    first = base.rows if base is not None else 0
    dead = np.zeros(0, dtype=np.int64) if dead is None else np.asarray(dead, dtype=np.int64)
    if len(dead) and dead[-1] >= first:
        ids = ["" if node_id is None else node_id for node_id in ids]  # a deleted row's id is None
    n, chunk_rows, chunk_bytes = first + len(ids), tunables.SNAPSHOT_LINE_ROWS, tunables.SNAPSHOT_CHUNK_BYTES
    with open(prefix.with_suffix(".json"), "wb") as f:
        fields = {"rows": n, "dimensions": dimensions, "chunk_rows": chunk_rows}
        header = json.dumps(fields | ({"dead": dead.tolist()} if len(dead) else {})).encode()
        f.write(header + b"\n")
        line_sums = [zlib.crc32(header)]
        if base is not None:
            line_sums += _copy_lines(base, f)
        if base is None:
            rows_index = index_builder(prefix, n, chunk_rows)
        else:
            rows_index = index_builder(prefix, n, chunk_rows, base.prefix, base.info, base.rows)
        for start in range(0, len(ids), chunk_rows):
            stop = start + chunk_rows
            line = json.dumps([ids[start:stop], contents[start:stop], metadatas[start:stop]], ensure_ascii=False, separators=(",", ":")).encode()
            line_sums.append(zlib.crc32(line))
            f.write(line + b"\n")
            if rows_index is not None:
                rows_index.add(line)
        f.flush()
        json_size = os.fstat(f.fileno()).st_size  # not tell(): the copies wrote through the descriptor
        os.fsync(f.fileno())
    norms: list[np.ndarray] = []
    with _vector_file(prefix, base) as f:
        chunk_sums, lead, skip = _kept_vectors(base, f) if base is not None else ([], b"", 0)
        sums = _Chunks(chunk_bytes)
        sums.feed(lead)
        f.flush()  # the vectors go straight to the descriptor
        for chunk in vector_chunks:
            vectors = np.ascontiguousarray(chunk, dtype="<f4")
            if sq_norms is None:
                norms.append(squared_norms(vectors) if len(vectors) else np.zeros(0))
            raw = memoryview(vectors).cast("B") if vectors.size else memoryview(b"")
            kept = min(skip, len(raw))  # rows after the base's last whole line: its file holds them already
            raw, skip = raw[kept:], skip - kept
            sums.feed(raw)
            write_all(f.fileno(), raw)
        if skip:
            raise ValueError(f"a snapshot on top of {base.prefix} got fewer rows than that snapshot holds")
        chunk_sums += sums.close()
        f.flush()
        f32_size = os.fstat(f.fileno()).st_size
        os.fsync(f.fileno())
    write_norms(prefix.with_suffix(".nrm"), None, sq_norms if sq_norms is not None else np.concatenate(norms or [np.zeros(0)]))
    if base is None:
        write_ids(prefix.with_suffix(".ids"), ids)
    else:  # a base without a valid cache leaves none: the first reader of every id decodes the rows
        extend_ids(prefix.with_suffix(".ids"), base.prefix.with_suffix(".ids"), base.info["rows"], base.rows, list(ids))
    info = {
        "rows": n,
        "json": {"size": json_size, "crcs": line_sums},
        "f32": {"size": f32_size, "chunk": chunk_bytes, "crcs": chunk_sums},
    }
    if len(dead):
        info["dead"] = dead.tolist()
    if rows_index is not None:
        save_row_index(prefix.with_suffix(".rix"), rows_index.finish(list(ids)), info)
    return info


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
        copy_range(f.fileno(), out.fileno(), start, end - start)
    return base.info["json"]["crcs"][1 : 1 + lines]


def _vector_file(prefix: Path, base: SnapshotBase | None) -> BinaryIO:
    """``prefix.f32`` open for writing at its end: a new file, or the base's file (a second name for it)
    cut back to the size ``meta.json`` records for it (an interrupted extension may have left more)."""
    path = prefix.with_suffix(".f32")
    if base is None:
        return open(path, "wb")  # noqa: SIM115 - the caller's with
    source, size = base.prefix.with_suffix(".f32"), base.info["f32"]["size"]
    try:
        os.link(source, path)
    except OSError:  # a file system without hard links: a copy of the published bytes
        with open(source, "rb", buffering=0) as src, open(path, "wb") as dst:
            copy_range(src.fileno(), dst.fileno(), 0, size)
    f = open(path, "r+b")  # noqa: SIM115 - the caller's with
    try:
        held = os.fstat(f.fileno()).st_size
        if held < size:
            raise ValueError(f"{source} is shorter than meta.json records")
        if held > size:
            f.truncate(size)
        f.seek(size)
    except BaseException:
        f.close()
        raise
    return f


def _kept_vectors(base: SnapshotBase, f: BinaryIO) -> tuple[list[int], bytes, int]:
    """What stays of the base's vectors: the checksums of its whole chunks, its bytes after the last of
    them (summed with the rows appended), and how many bytes of rows after ``base.rows`` it holds."""
    chunk, size = base.info["f32"]["chunk"], base.info["f32"]["size"]
    whole = size // chunk * chunk
    lead = os.pread(f.fileno(), size - whole, whole)
    if len(lead) != size - whole:
        raise ValueError(f"{base.prefix.with_suffix('.f32')} is shorter than meta.json records")
    return base.info["f32"]["crcs"][: whole // chunk], lead, size - base.rows * base.dimensions * 4


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
