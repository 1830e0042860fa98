"""A snapshot's rows (ids, contents, metadata in its JSON lines), decoded when a call needs them.

A call that reads some rows (``get``, a search's results, ``read_columns(node_ids=...)``) decodes
just those rows' values, found through the row index (``row_index.py``); a call that needs
every row (a filter, a write, a dump) decodes the whole snapshot once. Either way each line's
checksum is verified before any value of it is used. The ``.ids`` cache (every id in row order)
lets readers of ids alone skip decoding.
"""

from __future__ import annotations

import json
import mmap
import struct
import threading
import zlib
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..._file_writes import write_all
from .files import copy_range, damaged
from .row_index import BadRowIndex, RowIndex, build_row_index, read_row_index

__all__ = ["SnapshotRows", "extend_ids", "read_ids", "write_ids"]

_COLUMNS = ("ids", "contents", "metadatas")  # the order of a line's lists, and of a row's spans


def _named(columns: list[int]) -> str:
    return ", ".join(_COLUMNS[c] for c in columns)


class SnapshotRows:
    """The rows of a snapshot's JSON lines: some rows decoded through the row index, or every row."""

    def __init__(self, path: Path, text: mmap.mmap | bytes, info: dict[str, Any]):
        self.path, self._text, self.n, self._info = path, text, info["rows"], info
        self._crcs = info["json"]["crcs"]
        self._checked = np.zeros(len(self._crcs), dtype=bool)  # lines whose checksum was verified here
        self._spans: list[tuple[int, int]] | None = None
        self._spans_lock = threading.Lock()  # the verifier's thread may ask for them too
        end = text.find(b"\n")
        header = self._parse_span(0, 0, len(text) if end < 0 else end)
        self.chunk_rows = header.get("chunk_rows") if isinstance(header, dict) else None
        if type(self.chunk_rows) is not int or self.chunk_rows < 1:
            raise damaged(path, f"{path}: the header line does not give the rows per line")
        self._ids_path = path.with_suffix(".ids")
        self._index: tuple[RowIndex, np.ndarray] | None = None  # the row index, and where each line starts
        self._index_lock = threading.Lock()

    @property
    def spans(self) -> list[tuple[int, int]]:
        """(start, end) of each line, newline excluded; found on first use (a pass over the file)."""
        with self._spans_lock:
            if self._spans is None:
                spans, start, text = [], 0, self._text
                for _ in self._crcs:
                    end = text.find(b"\n", start)
                    if end < 0:
                        break
                    spans.append((start, end))
                    start = end + 1
                if len(spans) != len(self._crcs) or start != len(text):
                    raise damaged(self.path, f"{self.path} does not hold the {len(self._crcs)} lines meta.json recorded")
                self._spans = spans
            return self._spans

    def __len__(self) -> int:
        return self.n

    def _parse_span(self, number: int, start: int, end: int) -> Any:
        self._check(number, start, end)
        line = self._text[start:end]
        try:
            return json.loads(line)
        except ValueError as exc:  # a checksum that matches bad JSON: written wrongly, not flipped
            raise damaged(self.path, f"{self.path}: line {number + 1} cannot be parsed: {exc}", start) from exc

    def _line(self, number: int) -> tuple[list, list, list]:
        part = self._parse_span(number, *self.spans[number])
        expected = min(self.chunk_rows, self.n - (number - 1) * self.chunk_rows)
        if not (isinstance(part, list) and len(part) == 3 and all(isinstance(c, list) and len(c) == expected for c in part)):
            raise damaged(self.path, f"{self.path}: line {number + 1} does not hold {expected} rows", self.spans[number][0])
        return part

    # ---- some rows ------------------------------------------------------------------------

    def pick(self, rows: np.ndarray, names: Sequence[str] = _COLUMNS) -> list[list]:
        """Columns ``names`` (of ``"ids"``, ``"contents"``, ``"metadatas"``) of ``rows``, decoding only those rows."""
        rows = np.asarray(rows, dtype=np.int64)
        spans, line_starts = self._indexed(lambda index: index.row_spans(rows))
        return self._values(rows, [_COLUMNS.index(name) for name in names], spans, line_starts)

    def find(self, ids: Sequence[str], skip: Collection[int] = ()) -> np.ndarray:
        """The row of each id (-1 where it is not a row here), rows in ``skip`` left out: a row deleted
        since the snapshot (its hole in the next one) keeps its id in the lines taken over."""
        ids = list(ids)
        (asked, rows), _ = self._indexed(lambda index: index.candidates(ids))
        if skip and len(rows):
            keep = np.fromiter((row not in skip for row in rows.tolist()), dtype=bool, count=len(rows))
            asked, rows = asked[keep], rows[keep]
        found = np.full(len(ids), -1, dtype=np.int64)
        if len(rows):
            (held,) = self.pick(rows, ("ids",))
            same = np.fromiter(map(str.__eq__, held, map(ids.__getitem__, asked.tolist())), dtype=bool, count=len(held))
            found[asked[same]] = rows[same]
        return found

    def _indexed(self, use: Callable[[RowIndex], Any]) -> tuple[Any, np.ndarray]:
        """``use(row index)`` and where each line starts; a saved index with a damaged block is built again."""
        with self._index_lock:
            if self._index is None:
                self._index = (self._load_index(), np.array([start for start, _ in self.spans], dtype=np.int64))
            index, line_starts = self._index
            try:
                return use(index), line_starts
            except BadRowIndex:
                self._index = (self._build_index(), line_starts)
                return use(self._index[0]), line_starts

    def _load_index(self) -> RowIndex:
        """The row index from the ``.rix`` cache beside the snapshot, or built from the lines (and saved there)."""
        index = read_row_index(self.path.with_suffix(".rix"), self._info)
        return index if index is not None else self._build_index()

    def _build_index(self) -> RowIndex:
        ids = self.ids()
        ids = ids if ids is not None else self.columns()[0]
        lines = (self._text[start:end] for start, end in self.spans[1:])
        return build_row_index(self.path.with_suffix(".rix"), self._info, self.chunk_rows, lines, ids)

    def _values(self, rows: np.ndarray, columns: list[int], row_spans: np.ndarray, line_starts: np.ndarray) -> list[list]:
        """The ``columns`` of ``rows`` (``row_spans``: theirs), decoded in one pass (their lines' checksums verified first)."""
        lines = rows // self.chunk_rows + 1
        self._verify(lines)
        at = line_starts[lines]
        text, pieces = self._text, []
        for column in columns:
            starts = (at + row_spans[:, 2 * column].astype(np.int64)).tolist()
            ends = (at + row_spans[:, 2 * column + 1].astype(np.int64)).tolist()
            pieces += [text[s:e] for s, e in zip(starts, ends)]
        try:
            values = json.loads(b"[" + b",".join(pieces) + b"]")
        except ValueError as exc:  # lines that pass their checksums: the index or the writer is wrong
            raise damaged(self.path, f"{self.path}: the {_named(columns)} of {len(rows)} rows cannot be parsed: {exc}") from exc
        if len(values) != len(pieces):
            raise damaged(self.path, f"{self.path}: the {_named(columns)} of {len(rows)} rows read as {len(values)} values")
        n = len(rows)
        return [values[i * n : (i + 1) * n] for i in range(len(columns))]

    def _verify(self, lines: np.ndarray) -> None:
        """Check the checksum of each of these lines not checked yet."""
        checked = self._checked
        todo = np.zeros(len(checked), dtype=bool)
        todo[lines] = True
        todo &= ~checked
        spans = self.spans
        for number in np.flatnonzero(todo).tolist():
            self._check(number, *spans[number])

    def _check(self, number: int, start: int, end: int) -> None:
        """Verify line ``number``'s checksum, once per line."""
        if number < len(self._crcs) and self._checked[number]:
            return
        if number >= len(self._crcs) or zlib.crc32(self._text[start:end]) != self._crcs[number]:
            raise damaged(self.path, f"{self.path}: line {number + 1} (bytes {start}-{end}) fails its checksum", start)
        self._checked[number] = True

    # ---- every row ------------------------------------------------------------------------

    def ids(self) -> list[str] | None:
        """Every id in row order from the ``.ids`` cache beside the snapshot; None if it is missing or bad."""
        return read_ids(self._ids_path, self.n)

    def columns(self) -> tuple[list, list, list]:
        """Every row as (ids, contents, metadatas) lists."""
        ids: list = []
        contents: list = []
        metadatas: list = []
        for number in range(1, len(self.spans)):
            part = self._line(number)
            ids += part[0]
            contents += part[1]
            metadatas += part[2]
        if len(ids) != self.n:
            raise damaged(self.path, f"{self.path} holds {len(ids)} rows where meta.json recorded {self.n}")
        return ids, contents, metadatas


_IDS = struct.Struct("<4sQI")  # marker, rows, crc32 of the JSON list of ids that follows
_IDS_MAGIC = b"VBI1"


def write_ids(path: Path, ids: list[str]) -> None:
    """Save a snapshot's ids beside it, in row order: a cache that lets a reader of ids alone (the
    map, paging) skip decoding every row. Not fsynced, not in ``meta.json``: a bad or missing one
    means the rows are decoded instead."""
    body = json.dumps(ids, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    with open(path, "wb") as f:
        f.write(_IDS.pack(_IDS_MAGIC, len(ids), zlib.crc32(body)))
        f.flush()
        write_all(f.fileno(), body)


def extend_ids(path: Path, base_path: Path, base_rows: int, taken: int, new_ids: list[str]) -> bool:
    """Write at ``path`` the ids cache of a snapshot whose rows are the first ``taken`` of the snapshot
    whose cache (``base_rows`` ids) is at ``base_path``, then ``new_ids``: the base's bytes are copied,
    not decoded, so a compaction after appends encodes only the ids written since. The file is the
    one :func:`write_ids` writes for those ids. False, and nothing written, if the base's cache is
    missing or fails its checksum."""
    try:
        with open(base_path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            if len(m) < _IDS.size:
                return False
            magic, count, crc = _IDS.unpack_from(m)
            with memoryview(m) as whole, whole[_IDS.size :] as body:  # released before the map is closed
                cut = _after_string(body, taken) if magic == _IDS_MAGIC and count == base_rows else None
                if cut is None:
                    return False
                with body[:cut] as kept, body[cut:] as rest:  # each byte checksummed once: the kept part's sum goes on
                    kept_crc = zlib.crc32(kept)
                    if zlib.crc32(rest, kept_crc) != crc:
                        return False
            tail = json.dumps(new_ids, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")[1:]
            tail = (b"," if taken and new_ids else b"") + tail
            with open(path, "wb") as out:
                out.write(_IDS.pack(_IDS_MAGIC, taken + len(new_ids), zlib.crc32(tail, kept_crc)))
                out.flush()
                copy_range(f.fileno(), out.fileno(), _IDS.size, cut)
                write_all(out.fileno(), tail)
    except (OSError, ValueError):  # missing, or empty (ValueError: an empty file cannot be mapped)
        path.unlink(missing_ok=True)
        return False
    return True


def _after_string(body: memoryview, k: int) -> int | None:
    """Where the ``k``-th string of the JSON list ``body`` ends (after its closing quote; 1 for k = 0),
    found without copying or decoding ``body``: quotes delimit the strings, but for those escaped
    (after an odd run of backslashes). None if there are fewer strings."""
    if not k:
        return 1
    data = np.frombuffer(body, dtype=np.uint8)
    escaped = _escaped_quotes(data)
    seen = 0
    for start in range(0, len(data), _SCAN):
        part = data[start : start + _SCAN]
        inside = escaped[(escaped >= start) & (escaped < start + len(part))] - start
        is_quote = part == ord('"')
        count = int(np.count_nonzero(is_quote)) - len(inside)
        if seen + count >= 2 * k:
            quotes = np.setdiff1d(np.flatnonzero(is_quote), inside, assume_unique=True)
            return start + int(quotes[2 * k - 1 - seen]) + 1
        seen += count
    return None


_SCAN = 16 << 20


def _escaped_quotes(data: np.ndarray) -> np.ndarray:
    """Positions of the quotes in ``data`` that an odd run of backslashes escapes (ids rarely have any)."""
    slashes = np.concatenate([start + np.flatnonzero(data[start : start + _SCAN] == ord("\\")) for start in range(0, len(data), _SCAN)] or [np.zeros(0, np.int64)])
    if not len(slashes):
        return slashes
    breaks = np.flatnonzero(np.diff(slashes) != 1)
    starts, ends = slashes[np.r_[0, breaks + 1]], slashes[np.r_[breaks, len(slashes) - 1]]
    after = ends[(ends - starts) % 2 == 0] + 1  # a run of odd length escapes the byte after it
    after = after[after < len(data)]
    return after[data[after] == ord('"')]


def read_ids(path: Path, rows: int) -> list[str] | None:
    """The ids cache at ``path`` if it holds ``rows`` ids and its checksum matches, else None."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if len(raw) < _IDS.size:
        return None
    magic, count, crc = _IDS.unpack_from(raw)
    body = memoryview(raw)[_IDS.size :]
    if magic != _IDS_MAGIC or count != rows or zlib.crc32(body) != crc:
        return None
    try:
        ids = json.loads(bytes(body).decode("utf-8", "surrogatepass"))
    except ValueError:
        return None
    return ids if isinstance(ids, list) and len(ids) == rows else None
