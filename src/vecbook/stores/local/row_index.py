"""Where each row's id, content and metadata sit in a snapshot's JSON lines, and a hash of each id.

It lets a call decode just the rows it reads (``get`` of a few ids, ``read_columns(node_ids=...)``
of a selection) instead of every row of the snapshot. Kept beside the snapshot as
``snap-<g>.rix``, a cache like the ``.ids`` one: written with the snapshot (:class:`IndexBuilder`
fed each line as it is written), never fsynced and not in ``meta.json``. It records the size and
line checksums of the snapshot it describes and a crc32 per MiB of its body, verified when a
call first uses that MiB; a missing, foreign or damaged one is built again from the snapshot by
the first call that needs it (and saved, where the folder can be written). It holds:

- ``spans``: per row, (start, end) of its id, content and metadata JSON values, counted from the
  start of the row's line (``width``-byte unsigned integers: 4, or 8 for lines of 4 GiB or more);
- ``hashes``: crc32 of each id (UTF-8) sorted, and ``order``: the row of each, so that a lookup
  is a binary search; candidates are confirmed by decoding their id.

The spans are found with numpy over the raw bytes (a line is ``[[ids],[contents],[metadatas]]``
as ``json.dumps`` writes it, without spaces): quotes that are not escaped delimit strings, and
outside strings each value of the three lists ends at a comma or bracket of depth 2.
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from operator import methodcaller
from pathlib import Path
from typing import Any

import numpy as np

from ..._file_writes import write_all
from .files import damaged, temp_prefix

__all__ = ["BadRowIndex", "IndexBuilder", "RowIndex", "build_row_index", "index_builder", "read_row_index", "save_row_index"]

_HEADER = struct.Struct("<4sQQIIQQI")  # magic, rows, json size, crc of the line sums, width, lines, blocks, crc of the block sums
_MAGIC = b"VBR1"
_BLOCK = 1 << 20  # bytes of the body per checksum: a call verifies the blocks it uses, when first used
_SCAN_BYTES = 8 << 20  # lines scanned per numpy pass (its temporaries are a few times this)
_STRUCTURAL = np.zeros(256, dtype=bool)
_STRUCTURAL[[ord(c) for c in "[]{},"]] = True
_STEP = np.zeros(256, dtype=np.int8)
_STEP[[ord("["), ord("{")]], _STEP[[ord("]"), ord("}")]] = 1, -1


class BadRowIndex(Exception):
    """A block of a saved row index fails its checksum: the index is built again."""


@dataclass
class RowIndex:
    """``spans[r]`` = id, content, metadata (start, end) of row ``r`` within its line; ``hashes``/``order`` find ids.

    Read from a file, its body's blocks are verified when first used (``sums``: their crc32s, ``body``:
    the mapped bytes); built here, ``sums`` is None and nothing needs verifying.
    """

    spans: np.ndarray  # (rows, 6) unsigned
    hashes: np.ndarray  # (rows,) uint32, sorted
    order: np.ndarray  # (rows,) row of each hash
    body: Any = None
    sums: np.ndarray | None = None
    _ok: np.ndarray | None = None  # blocks verified
    _hashes_ok: bool = False

    def row_spans(self, rows: np.ndarray) -> np.ndarray:
        """``spans[rows]``, their blocks verified."""
        if self.sums is not None:
            size = 6 * self.spans.dtype.itemsize
            self._verify(np.concatenate([rows * size // _BLOCK, (rows * size + size - 1) // _BLOCK]))
        return self.spans[rows]

    def verify_all(self) -> None:
        if self.sums is not None:
            self._verify(np.arange(len(self.sums)))

    def _verify(self, blocks: np.ndarray) -> None:
        if self._ok is None:
            self._ok = np.zeros(len(self.sums), dtype=bool)
        todo = np.zeros(len(self._ok), dtype=bool)
        todo[blocks] = True
        todo &= ~self._ok
        for block in np.flatnonzero(todo).tolist():
            if zlib.crc32(self.body[block * _BLOCK : (block + 1) * _BLOCK]) != self.sums[block]:
                raise BadRowIndex(block)
            self._ok[block] = True

    def candidates(self, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(which asked id, row) pairs whose id hashes match: a superset of the rows holding those ids."""
        if self.sums is not None and not self._hashes_ok:
            start = self.spans.nbytes  # the hashes follow the spans
            self._verify(np.arange(start // _BLOCK, (start + self.hashes.nbytes + _BLOCK - 1) // _BLOCK))
            self._hashes_ok = True
        wanted = id_hashes(ids)
        lo = np.searchsorted(self.hashes, wanted)
        counts = (self.hashes[np.minimum(lo, len(self.hashes) - 1)] == wanted).astype(np.int64) if len(self.hashes) else np.zeros(len(ids), np.int64)
        more = np.flatnonzero(counts)
        more = more[lo[more] + 1 < len(self.hashes)]
        more = more[self.hashes[lo[more] + 1] == wanted[more]]  # ids sharing a hash (rare): count them all
        if len(more):
            counts[more] = np.searchsorted(self.hashes, wanted[more], "right") - lo[more]
        asked = np.repeat(np.arange(len(ids)), counts)
        where = np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(len(asked))
        if self.sums is not None:
            at = self.spans.nbytes + self.hashes.nbytes + 8 * where
            self._verify(np.concatenate([at // _BLOCK, (at + 7) // _BLOCK]))
        return asked, self.order[where].astype(np.int64)


def id_hashes(ids: list[str]) -> np.ndarray:
    return np.fromiter(map(zlib.crc32, map(methodcaller("encode", "utf-8", "surrogatepass"), ids)), np.uint32, len(ids))


def _binding(info: dict[str, Any]) -> tuple[int, int]:
    """What ties an index to one snapshot: its JSON size and a checksum of its line checksums."""
    return info["json"]["size"], zlib.crc32(struct.pack(f"<{len(info['json']['crcs'])}I", *info["json"]["crcs"]))


def read_row_index(path: Path, info: dict[str, Any]) -> RowIndex | None:
    """The index at ``path`` if its header is valid and describes the snapshot ``info`` (from ``meta.json``), else None.

    Mapped, not read: its pages are the page cache's, shared by every process that opens the
    snapshot; its blocks are verified when first used (:class:`BadRowIndex` if one fails).
    """
    try:
        with open(path, "rb") as f:
            raw = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # missing, or empty (ValueError: an empty file cannot be mapped)
        return None
    if len(raw) < _HEADER.size:
        return None
    magic, rows, size, sums, width, lines, blocks, crc = _HEADER.unpack_from(raw)
    if magic != _MAGIC or rows != info["rows"] or (size, sums) != _binding(info) or width not in (4, 8) or lines != len(info["json"]["crcs"]):
        return None
    body_size = rows * (6 * width + 12)
    start = _HEADER.size + 4 * blocks
    if blocks != -(-body_size // _BLOCK) or len(raw) != start + body_size or zlib.crc32(raw[_HEADER.size : start]) != crc:
        return None
    body = memoryview(raw)[start:]
    spans = np.frombuffer(body, dtype=f"<u{width}", count=rows * 6).reshape(rows, 6)
    hashes = np.frombuffer(body, dtype="<u4", count=rows, offset=rows * 6 * width)
    order = np.frombuffer(body, dtype="<u8", count=rows, offset=rows * (6 * width + 4))
    return RowIndex(spans, hashes, order, body, np.frombuffer(raw, dtype="<u4", count=blocks, offset=_HEADER.size))


class IndexBuilder:
    """Builds the index of a snapshot of ``rows`` rows from its JSON lines as they are written (:meth:`add`),
    a few MiB at a time, then from its ids (:meth:`finish`).

    Its first ``taken`` rows (whole lines) may be those of the snapshot indexed by ``base``: then
    the lines and ids given are only those after them.
    """

    def __init__(self, path: Path, rows: int, chunk_rows: int, base: RowIndex | None = None, taken: int = 0):
        self.path, self.rows, self.chunk_rows, self.taken = path, rows, chunk_rows, taken
        self.spans = np.empty((rows, 6), dtype=base.spans.dtype if base is not None else "<u4")
        self._sorted = (np.zeros(0, dtype="<u4"), np.zeros(0, dtype="<u8"))  # the base's rows: (hash, row) by hash, then row
        if base is not None and taken:
            base.verify_all()
            self.spans[:taken] = base.spans[:taken]
            kept = base.order < taken
            self._sorted = (base.hashes[kept], base.order[kept])
        self._first, self._group, self._size = taken // chunk_rows + 1, [], 0

    def add(self, line: bytes) -> None:
        """The next JSON line (newline excluded)."""
        if len(line) >= 1 << 32 and self.spans.dtype.itemsize == 4:
            self.spans = self.spans.astype("<u8")  # offsets within a line of 4 GiB or more
        self._group.append(line)
        self._size += len(line) + 1
        if self._size >= _SCAN_BYTES:
            self._scan()

    def _scan(self) -> None:
        if self._group:
            _scan_lines(self.path, self._group, self._first, self.chunk_rows, self.rows, self.spans)
            self._first, self._group, self._size = self._first + len(self._group), [], 0

    def finish(self, new_ids: list[str]) -> RowIndex:
        """The index, given the ids of the rows after the base's."""
        self._scan()
        if self._first != -(-self.rows // self.chunk_rows) + 1 or len(new_ids) != self.rows - self.taken:
            raise ValueError(f"the row index was given {self._first - 1} lines and {len(new_ids)} new ids for {self.rows} rows")
        hashes = id_hashes(new_ids)
        by_hash = np.argsort(hashes, kind="stable")
        # The base's rows come first, so merging keeps the order one stable sort of every row would give:
        # by hash, equal hashes by row. A bulk load's compaction sorts only the rows written since.
        base_hashes, base_rows = self._sorted
        at = np.searchsorted(base_hashes, hashes[by_hash], side="right")
        order = np.insert(base_rows, at, (self.taken + by_hash).astype("<u8"))
        return RowIndex(self.spans, np.insert(base_hashes, at, hashes[by_hash]), order)


def build_row_index(path: Path, info: dict[str, Any], chunk_rows: int, lines: Iterable[bytes], ids: list[str]) -> RowIndex:
    """Index the snapshot ``info`` from all its JSON lines but the header, and its ids; save it at ``path``."""
    builder = IndexBuilder(path, info["rows"], chunk_rows)
    for line in lines:
        builder.add(line)
    index = builder.finish(ids)
    save_row_index(path, index, info)
    return index


def index_builder(prefix: Path, rows: int, chunk_rows: int, base_prefix: Path | None = None,
                  base_info: dict[str, Any] | None = None, taken: int = 0) -> IndexBuilder | None:
    """A builder for the index of the snapshot being written at ``prefix``, its first ``taken`` rows'
    from the index of the base snapshot ``base_prefix``; None if that base has no valid index (then
    the new snapshot's first reader of some rows builds it)."""
    base = None
    if taken:
        base = read_row_index(base_prefix.with_suffix(".rix"), base_info)
        if base is None:
            return None
    try:
        return IndexBuilder(prefix.with_suffix(".rix"), rows, chunk_rows, base, taken)
    except BadRowIndex:
        return None


def _scan_lines(path: Path, group: list, first: int, chunk_rows: int, rows: int, out: np.ndarray) -> None:
    """Fill ``out`` for the rows of the lines ``group`` (bytes), whose first is line ``first`` (0 being the header)."""
    last = first + len(group)
    raw = b"\n".join(group)
    lengths = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
    line_start = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
    # An escaped backslash, then an escaped quote, become two plain bytes: every quote left delimits a string.
    clean = np.frombuffer(raw.replace(b"\\\\", b"__").replace(b'\\"', b"__"), dtype=np.uint8)
    inside = np.cumsum(clean == ord('"'), dtype=np.uint8) & 1  # 1 from an opening quote to before its closing one (parity survives the wrap)
    at = np.flatnonzero(_STRUCTURAL[clean] & (inside == 0))  # brackets, braces and commas outside strings
    char = clean[at]
    depth = np.cumsum(_STEP[char], dtype=np.int32)  # the depth after each of them
    begins = (char == ord("[")) & (depth == 2)  # a list of the line opens
    ends = (char == ord("]")) & (depth == 1)  # ... and closes
    bounds = begins | ends | ((char == ord(",")) & (depth == 2))  # commas between two values of a list
    where, begins, ends = at[bounds], begins[bounds], ends[bounds]
    starts, stops, begins = where[~ends] + 1, where[~begins], where[begins]
    counts = np.minimum(chunk_rows, rows - (np.arange(first, last) - 1) * chunk_rows)  # rows of each line
    if (counts < 1).any() or len(begins) != 3 * len(group) or len(stops) != len(starts) or len(starts) != 3 * int(counts.sum()):
        raise damaged(path, f"{path}: lines {first + 1}-{last} do not hold the lists of their rows")
    per_list = np.diff(np.searchsorted(starts, np.concatenate([begins, [len(raw)]])))
    if not np.array_equal(per_list, np.repeat(counts, 3)):
        raise damaged(path, f"{path}: a line among {first + 1}-{last} does not hold the rows it should")
    line_of = np.repeat(np.arange(len(group)), 3 * counts)
    at = np.arange(len(starts)) - np.repeat(np.concatenate([[0], np.cumsum(3 * counts)[:-1]]), 3 * counts)
    k = counts[line_of]
    column, row = at // k, (first - 1) * chunk_rows + line_of * chunk_rows + at % k
    out[row, 2 * column] = starts - line_start[line_of]
    out[row, 2 * column + 1] = stops - line_start[line_of]


def save_row_index(path: Path, index: RowIndex, info: dict[str, Any]) -> None:
    """Write the index beside the snapshot ``info`` (atomically; silently not where the folder cannot be written)."""
    width = index.spans.dtype.itemsize
    body = b"".join(np.ascontiguousarray(a).tobytes() for a in (index.spans, index.hashes, index.order))
    sums = struct.pack(f"<{-(-len(body) // _BLOCK)}I", *(zlib.crc32(body[b : b + _BLOCK]) for b in range(0, len(body), _BLOCK)))
    size, line_sums = _binding(info)
    blocks = len(sums) // 4
    header = _HEADER.pack(_MAGIC, info["rows"], size, line_sums, width, len(info["json"]["crcs"]), blocks, zlib.crc32(sums))
    temp = temp_prefix(path.parent).with_suffix(".rix")
    try:
        with open(temp, "wb") as f:
            f.write(header)
            f.write(sums)
            f.flush()
            write_all(f.fileno(), body)
        os.replace(temp, path)
    except OSError:
        temp.unlink(missing_ok=True)
