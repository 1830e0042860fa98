"""Where each row's id, content and metadata sit in a snapshot's JSON lines, and a hash of each id.

It lets a call decode just the rows it reads (``get`` of a few ids, ``read_columns(node_ids=...)``
of a selection) instead of every row of the snapshot. Kept beside the snapshot as
``snap-<g>.rix``, a cache like the ``.ids`` one: written when first needed (by any process that
can write the folder), never fsynced and not in ``meta.json``, with a checksum of its own and
the size and line checksums of the snapshot it describes; a missing, damaged or foreign one is
built again from the snapshot. It holds:

- ``spans``: per row, (start, end) of its id, content and metadata JSON values, counted from the
  start of the row's line (``width``-byte unsigned integers: 4, or 8 for lines of 4 GiB or more);
- ``hashes``: crc32 of each id (UTF-8) sorted, and ``order``: the row of each, so that a lookup
  is a binary search; candidates are confirmed by decoding their id.

The spans are found with numpy over the raw bytes (a line is ``[[ids],[contents],[metadatas]]``
as ``json.dumps`` writes it, without spaces): quotes that are not escaped delimit strings, and
outside strings each value of the three lists ends at a comma or bracket of depth 2.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from operator import methodcaller
from pathlib import Path
from typing import Any

import numpy as np

from .files import damaged, temp_prefix

__all__ = ["RowIndex", "build_row_index", "index_written", "read_row_index"]

_HEADER = struct.Struct("<4sQQIIQI")  # magic, rows, json size, crc of the line sums, width, lines, crc of the body
_MAGIC = b"VBR1"
_SCAN_BYTES = 8 << 20  # lines scanned per numpy pass (its temporaries are a few times this)
_STRUCTURAL = np.zeros(256, dtype=bool)
_STRUCTURAL[[ord(c) for c in "[]{},"]] = True
_STEP = np.zeros(256, dtype=np.int8)
_STEP[[ord("["), ord("{")]], _STEP[[ord("]"), ord("}")]] = 1, -1


@dataclass
class RowIndex:
    """``spans[r]`` = id, content, metadata (start, end) of row ``r`` within its line; ``hashes``/``order`` find ids."""

    spans: np.ndarray  # (rows, 6) unsigned
    hashes: np.ndarray  # (rows,) uint32, sorted
    order: np.ndarray  # (rows,) row of each hash

    def candidates(self, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(which asked id, row) pairs whose id hashes match: a superset of the rows holding those ids."""
        wanted = id_hashes(ids)
        lo = np.searchsorted(self.hashes, wanted)
        counts = (self.hashes[np.minimum(lo, len(self.hashes) - 1)] == wanted).astype(np.int64) if len(self.hashes) else np.zeros(len(ids), np.int64)
        more = np.flatnonzero(counts)
        more = more[lo[more] + 1 < len(self.hashes)]
        more = more[self.hashes[lo[more] + 1] == wanted[more]]  # ids sharing a hash (rare): count them all
        if len(more):
            counts[more] = np.searchsorted(self.hashes, wanted[more], "right") - lo[more]
        asked = np.repeat(np.arange(len(ids)), counts)
        firsts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
        return asked, self.order[firsts + np.arange(len(asked))].astype(np.int64)


def id_hashes(ids: list[str]) -> np.ndarray:
    return np.fromiter(map(zlib.crc32, map(methodcaller("encode", "utf-8", "surrogatepass"), ids)), np.uint32, len(ids))


def _binding(info: dict[str, Any]) -> tuple[int, int]:
    """What ties an index to one snapshot: its JSON size and a checksum of its line checksums."""
    return info["json"]["size"], zlib.crc32(struct.pack(f"<{len(info['json']['crcs'])}I", *info["json"]["crcs"]))


def read_row_index(path: Path, info: dict[str, Any]) -> RowIndex | None:
    """The index at ``path`` if it is valid and describes the snapshot ``info`` (from ``meta.json``), else None."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if len(raw) < _HEADER.size:
        return None
    magic, rows, size, sums, width, lines, crc = _HEADER.unpack_from(raw)
    body = memoryview(raw)[_HEADER.size :]
    if magic != _MAGIC or rows != info["rows"] or (size, sums) != _binding(info) or width not in (4, 8):
        return None
    if len(body) != rows * (6 * width + 12) or lines != len(info["json"]["crcs"]) or zlib.crc32(body) != crc:
        return None
    spans_end = rows * 6 * width
    spans = np.frombuffer(body[:spans_end], dtype=f"<u{width}").reshape(rows, 6)
    hashes = np.frombuffer(body[spans_end : spans_end + 4 * rows], dtype="<u4")
    order = np.frombuffer(body[spans_end + 4 * rows :], dtype="<u8")
    return RowIndex(spans, hashes, order)


def build_row_index(path: Path, info: dict[str, Any], chunk_rows: int, lines: list, new_ids: list[str],
                    base: RowIndex | None = None, taken: int = 0) -> RowIndex:
    """Index the snapshot ``info`` and save it at ``path``.

    Its first ``taken`` rows (whole lines) are those of the snapshot indexed by ``base``; ``lines``
    are its JSON lines after them (bytes, newline excluded) and ``new_ids`` the ids of their rows.
    """
    rows = info["rows"]
    longest = max(map(len, lines), default=0)
    width = 8 if longest >= 1 << 32 or (base is not None and base.spans.dtype.itemsize == 8) else 4
    spans = np.empty((rows, 6), dtype=f"<u{width}")
    hashes = np.empty(rows, dtype=np.uint32)
    if base is not None and taken:
        spans[:taken] = base.spans[:taken]
        held = np.empty(len(base.hashes), dtype=np.uint32)
        held[base.order] = base.hashes
        hashes[:taken] = held[:taken]
    first, group, size = taken // chunk_rows + 1, [], 0
    for line in lines:
        group.append(line)
        size += len(line) + 1
        if size >= _SCAN_BYTES:
            _scan_lines(path, group, first, chunk_rows, rows, spans)
            first, group, size = first + len(group), [], 0
    if group:
        _scan_lines(path, group, first, chunk_rows, rows, spans)
    if len(new_ids) != rows - taken:
        raise ValueError(f"{len(new_ids)} ids for {rows - taken} rows")
    hashes[taken:] = id_hashes(new_ids)
    order = np.argsort(hashes, kind="stable").astype("<u8")
    index = RowIndex(spans, hashes[order], order)
    _save(path, index, info, width)
    return index


def index_written(prefix: Path, info: dict[str, Any], chunk_rows: int, lines: list, new_ids: list[str],
                  base_prefix: Path | None = None, base_info: dict[str, Any] | None = None, taken: int = 0) -> None:
    """Save the index of a snapshot just written at ``prefix`` (see :func:`build_row_index`), the
    first ``taken`` rows' from the index of the base snapshot ``base_prefix``. Nothing is saved if
    that base has no valid index (the snapshot's first reader of some rows builds it)."""
    base = None
    if taken:
        base = read_row_index(base_prefix.with_suffix(".rix"), base_info)
        if base is None:
            return
    build_row_index(prefix.with_suffix(".rix"), info, chunk_rows, lines, new_ids, base, taken)


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


def _save(path: Path, index: RowIndex, info: dict[str, Any], width: int) -> None:
    """Write the index beside the snapshot (atomically; silently not where the folder cannot be written)."""
    body = b"".join(np.ascontiguousarray(a).tobytes() for a in (index.spans, index.hashes, index.order))
    size, sums = _binding(info)
    header = _HEADER.pack(_MAGIC, info["rows"], size, sums, width, len(info["json"]["crcs"]), zlib.crc32(body))
    temp = temp_prefix(path.parent).with_suffix(".rix")
    try:
        with open(temp, "wb") as f:
            f.write(header)
            f.write(body)
        os.replace(temp, path)
    except OSError:
        temp.unlink(missing_ok=True)
