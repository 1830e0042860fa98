"""Repairing a damaged workspace folder: keep what is readable, and a copy of what is not.

Called by :meth:`LocalVectorStore.repair` with the workspace's lock held. The
published generation (from ``meta.json``, or from the newest files if that is lost)
is read with every check; if anything fails, the folder's files are kept in a
backup folder (hard links: no copy of the data, and they survive the clean-up),
the intact snapshot rows and every intact log frame are put together in RAM, and
published as a new generation exactly as a compaction would.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ...dumps import fsync_dir
from ...errors import CorruptedFileError, ValidationError
from ..engine.batch import NodeBatch
from ..engine.matrix import FileMatrix
from ..engine.table import NodeTable
from .files import (
    META,
    backup,
    generation_of,
    log_name,
    log_start,
    parse_meta,
    remove_temp,
    snap_name,
    sweep,
    temp_prefix,
    write_durably,
    write_meta,
)
from .logfile import salvage_frames
from .snapshot import publish_snapshot
from .snapshot_files import write_snapshot
from .snapshot_read import read_legacy_snapshot, read_snapshot
from .snapshot_salvage import salvage_snapshot

__all__ = ["repair_folder"]

_MAX_LISTED_IDS = 10_000


def repair_folder(folder: Path, damaged_root: Path, distance: str) -> dict[str, Any]:
    """Check ``folder``; rebuild it from what is readable if anything is damaged. Returns the report."""
    problems: list[str] = []
    meta = _meta_or_none(folder, problems)
    generation = meta["generation"] if meta else _newest_generation(folder, problems)
    table = NodeTable(meta["dimensions"] if meta else None, distance=distance, storage=FileMatrix(folder))
    lost_ids: list[str] = []
    lost_nodes = 0
    if generation > 0:
        batch, lost_nodes, lost_ids = _snapshot_rows(folder / snap_name(generation), meta, problems)
        table.upsert(batch)
    skipped = _replay_log(folder / log_name(generation), log_start(meta) if meta else None, table, problems)
    report: dict[str, Any] = {
        "repaired": False,
        "nodes": len(table),
        "lost_nodes": lost_nodes,
        "lost_ids": lost_ids[:_MAX_LISTED_IDS],
        "skipped_log_bytes": sum(end - start for start, end, _ in skipped),
        "problems": problems,
        "backup": None,
    }
    if not problems:
        sweep(folder)
        return report
    stamp = time.strftime("%Y%m%d-%H%M%S")
    report["backup"] = str(backup(folder, damaged_root / f"{folder.name}-{stamp}-{uuid.uuid4().hex[:6]}"))
    _publish(folder, table, meta["id"] if meta else uuid.uuid4().hex)
    report["repaired"] = True
    return report


def _meta_or_none(folder: Path, problems: list[str]) -> dict[str, Any] | None:
    path = folder / META
    try:
        return parse_meta(path, path.read_bytes())
    except FileNotFoundError:
        problems.append(f"{path} is missing")
    except CorruptedFileError as exc:
        problems.append(str(exc).split("; to recover")[0])
    return None


def _newest_generation(folder: Path, problems: list[str]) -> int:
    """The newest generation that has a log (meta.json lost: a publish writes the log before meta.json)."""
    generations = sorted({g for name in os.listdir(folder) if (g := generation_of(name)) is not None})
    with_log = [g for g in generations if (folder / log_name(g)).exists()]
    chosen = with_log[-1] if with_log else (generations[-1] if generations else 0)
    problems.append(f"rebuilding from generation {chosen}, the newest one found in {folder}")
    return chosen


def _snapshot_rows(prefix: Path, meta: dict[str, Any] | None, problems: list[str]) -> tuple[NodeBatch, int, list[str]]:
    """The snapshot's rows: all of them if it verifies, else those in intact chunks (lost count, lost ids)."""
    dims = meta["dimensions"] if meta else None
    info = meta["snapshot"] if meta and meta["format"] >= 2 else None
    try:
        if meta is None:
            raise CorruptedFileError(prefix, "no checksums to verify it against")
        batch = read_snapshot(prefix, info, dims) if info else read_legacy_snapshot(prefix)
        return batch, 0, []
    except FileNotFoundError as exc:
        problems.append(f"{exc.filename} is missing: the rows of the snapshot are lost")
        return NodeBatch([], [], [], np.zeros((0, dims or 0), dtype=np.float32)), 0, []
    except CorruptedFileError as exc:
        if meta is not None:
            problems.append(str(exc).split("; to recover")[0])
    salvaged = salvage_snapshot(prefix, info, dims)
    problems.extend(salvaged.problems)
    return salvaged.batch, salvaged.lost_rows, salvaged.lost_ids


def _replay_log(path: Path, start: int | None, table: NodeTable, problems: list[str]) -> list[tuple[int, int, str]]:
    """Apply every intact frame of the log from ``start`` (None: meta.json is lost, so from its first
    byte that is not zero: a freed prefix reads as zeros); returns the byte ranges skipped (a torn
    tail is not a problem), as offsets in the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        problems.append(f"{path} is missing: the writes since the snapshot are lost")
        return []
    if start is None:
        start = _first_nonzero(data)
    if start > len(data):
        problems.append(f"{path} is {len(data)} bytes long, but its frames start at offset {start}: the writes since the snapshot are lost")
        return []
    data = memoryview(data)[start:]
    skipped: list[tuple[int, int, str]] = []
    for frame in salvage_frames(data, skipped, start):
        try:
            if frame.batch is not None:
                table.upsert(frame.batch)
            else:
                table.delete(frame.deleted)
        except ValidationError as exc:
            problems.append(f"{path}: the frame at offset {frame.start} does not fit the workspace ({exc}); skipped")
    for begin, end, why in skipped:
        if end == start + len(data) and (begin, end, why) == skipped[-1]:
            continue  # a torn tail: the write that left it never returned
        problems.append(f"{path}: bytes {begin}-{end} skipped ({why}); the write(s) stored there are lost")
    return skipped


def _first_nonzero(data: bytes, step: int = 1 << 20) -> int:
    """Where the first byte that is not zero is (``len(data)`` if none), a megabyte at a time: no copy of ``data``."""
    view = np.frombuffer(data, dtype=np.uint8)
    for lo in range(0, len(view), step):
        chunk = view[lo : lo + step]
        first = int(np.argmax(chunk != 0))  # the first True, if the chunk has one
        if chunk[first]:
            return lo + first
    return len(view)


def _publish(folder: Path, table: NodeTable, incarnation: str) -> None:
    """Publish ``table`` as a new generation (snapshot, empty log, meta.json), then clear the rest away."""
    existing = [g for name in os.listdir(folder) if (g := generation_of(name)) is not None]
    new = max(existing, default=0) + 1
    batch = table.batch(table.live_rows())
    temp = temp_prefix(folder)
    try:
        info = write_snapshot(temp, batch)
        publish_snapshot(temp, folder, new)
    finally:
        remove_temp(temp)
    write_durably(folder / log_name(new), b"")
    fsync_dir(folder)
    write_meta(folder, {"id": incarnation, "generation": new, "dimensions": table.dimensions, "snapshot": info})
    sweep(folder)
