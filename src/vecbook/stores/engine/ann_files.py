"""The approximate index saved beside a snapshot: a checksummed, derived cache.

Three files: ``<prefix>.usearch`` (usearch's own format), ``<prefix>.labels.npy``
(the label of each table row) and ``<prefix>.ann.json`` (the format, the
generation and log offset it reflects, the row count, the settings, CRC-32s of
the other files, and the changes still waiting beside the graph); a fourth,
``<prefix>.side.usearch``, is the graph of the rows waiting beside a mapped one, when
some wait. :func:`load_index` returns ``None`` unless everything matches, and the
caller rebuilds the index; a graph of the waiting rows that does not match is
rebuilt from those rows alone.

A graph saved while it is still mapped from the file it was opened from (by a compaction
or a close of a store opened with its index, no fold since) is that file: the new generation's ``.usearch`` is a second name for it, and the sidecar lists
the labels whose vectors wait beside it and the deleted ones it still holds
(``table_index.py``), and the small graph of those vectors is written beside it. A 10M
store's close no longer writes its 5 GB graph for a few thousand new rows.

Opening maps the graph instead of reading it. Its checksum and the labels' are
verified in a background thread (at lower CPU priority) when the graph is larger
than ``VERIFY_INLINE_BYTES``, as the snapshot's vectors are (docs/reliability.md),
reading the files opened at load (another process's save may give their names to new
files meanwhile): a graph found damaged is never searched again (searches go exact),
is never saved again, and its sidecar is removed so the next open rebuilds it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import zlib
from dataclasses import asdict
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .ann import HnswIndex, IndexSpec, Waiting
from .background import lower_this_threads_priority

__all__ = ["FORMAT", "VERIFY_INLINE_BYTES", "index_files", "load_index", "read_checkpoint", "save_index"]

log = logging.getLogger("vecbook.ann")

# -2 lists the changes waiting beside the graph; a -1 sidecar has none; -3 adds the graph of the
# waiting rows (a -2 index opens with that graph built from its rows; older versions rebuild a -3 one)
FORMAT = "usearch-3"
_READS = {"usearch-1", "usearch-2", FORMAT}
VERIFY_INLINE_BYTES = 16 << 20  # graphs up to this size are verified before the open returns


def index_files(prefix: Path) -> list[Path]:
    """The graph, the labels, the sidecar and the graph of the waiting rows saved under ``prefix``."""
    return [Path(f"{prefix}{suffix}") for suffix in (".usearch", ".labels.npy", ".ann.json", ".side.usearch")]


def _crc(path: Path) -> int:
    with open(path, "rb") as f:
        return _crc_of(f)


def _crc_of(f: BinaryIO) -> int:
    """CRC-32 of an open file's bytes from where it stands."""
    crc = 0
    while chunk := f.read(16 << 20):
        crc = zlib.crc32(chunk, crc)
    return crc


def save_index(
    prefix: Path,
    index: HnswIndex,
    labels: np.ndarray,
    next_label: int,
    waiting: Waiting,
    side: HnswIndex | None,
    *,
    generation: int,
    log_offset: int,
) -> bool:
    """Save the index as it is after applying snapshot ``generation`` and its log up to ``log_offset``.

    ``labels[r]`` is the label of table row ``r`` at that point; ``waiting`` what the
    graph does not hold yet, and ``side`` the graph of the waiting rows. Files are written
    under temporary names and renamed, the sidecar last; best effort (the index is a
    cache), so failures are logged, not raised.
    """
    if index.damaged:
        return False
    paths = index_files(prefix)
    tmps = [p.with_name(p.name + ".tmp") for p in paths]
    try:
        paths[2].unlink(missing_ok=True)  # no sidecar may vouch for half-replaced files
        tmps[0].unlink(missing_ok=True)  # left by an interrupted save: a link cannot replace it
        in_place = index.is_file(paths[0])  # a checkpoint of the mapped graph: only what waits beside it changed
        crc_graph = index.source[1] if in_place else index.save(tmps[0])
        with open(tmps[1], "wb") as f:
            np.save(f, np.ascontiguousarray(labels, dtype=np.int64), allow_pickle=False)
        if waiting.unindexed:
            side.save(tmps[3])
        meta = {
            "format": FORMAT,
            "generation": generation,
            "log_offset": int(log_offset),
            "rows": len(labels),
            "next_label": int(next_label),
            "dimensions": index.dimensions,
            "distance": index.distance,
            "spec": asdict(index.spec),
            "crc_graph": _crc(tmps[0]) if crc_graph is None else crc_graph,
            "crc_labels": _crc(tmps[1]),
            "crc_side": _crc(tmps[3]) if waiting.unindexed else None,
            **waiting.as_json(),
        }
        tmps[2].write_text(json.dumps({**meta, "crc": _sidecar_crc(meta)}))
        if waiting.unindexed:
            os.replace(tmps[3], paths[3])
        else:
            paths[3].unlink(missing_ok=True)
        for tmp, path in zip(tmps[:3], paths[:3]):  # the sidecar last
            if not (in_place and path == paths[0]):
                os.replace(tmp, path)
        if index.viewed:
            index.mapped_from(paths[0], meta["crc_graph"])  # the name it is saved under now: the old one goes with its generation
        return True
    except (OSError, RuntimeError) as exc:
        log.warning("could not save the ANN index beside %s (it will be rebuilt on open): %s", prefix, exc)
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        return False


def _sidecar_crc(meta: dict) -> int:
    """CRC-32 of a sidecar's entries but its own: the waiting labels it lists decide what searches see."""
    return zlib.crc32(json.dumps({k: v for k, v in meta.items() if k != "crc"}, sort_keys=True, separators=(",", ":")).encode())


def read_checkpoint(prefix: Path, generation: int, distance: str, spec: IndexSpec) -> dict | None:
    """The sidecar of a saved index, if it was made for this generation and these settings."""
    try:
        meta = json.loads(index_files(prefix)[2].read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    if meta.get("format") == FORMAT and meta.get("crc") != _sidecar_crc(meta):
        log.warning("ANN index sidecar %s fails its checksum; rebuilding the index", index_files(prefix)[2])
        return None
    if meta.get("format") not in _READS or meta.get("generation") != generation or not isinstance(meta.get("spec"), dict):
        return None
    saved = {"distance": meta.get("distance"), "M": meta["spec"].get("M"), "quantization": meta["spec"].get("quantization")}
    asked = {"distance": distance, "M": spec.M, "quantization": spec.quantization}
    if saved != asked:
        # not damage, but it costs the first call a whole build (minutes on a large workspace): say why
        log.warning("the ANN index beside %s was built with %s, and this store asks for %s: rebuilding it from the "
                    "vectors (saved again at the next compaction or close())", prefix, _settings(saved), _settings(asked))
        return None
    return meta


def _settings(spec: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in spec.items())


def load_index(
    prefix: Path, meta: dict, rows: int, dimensions: int | None, spec: IndexSpec
) -> tuple[HnswIndex, np.ndarray, int, Waiting, HnswIndex | None] | None:
    """(index, label of each row, next free label, changes waiting beside it, the graph of the waiting
    rows) from files vouched for by ``meta``, or None if they do not fit a table of ``rows`` rows of
    ``dimensions`` or are damaged.

    The graph is memory-mapped; a large one is checksummed in the background. The graph of the
    waiting rows is read into RAM (it changes with each write); None if there is none, or it is
    damaged (the table builds it again from the waiting rows).
    """
    graph, label_file, sidecar, side_file = index_files(prefix)
    try:
        if meta["rows"] != rows or meta["dimensions"] != dimensions:
            return None
        size = graph.stat().st_size
        inline = size <= VERIFY_INLINE_BYTES
        if inline and (_crc(label_file) != meta["crc_labels"] or _crc(graph) != meta["crc_graph"]):
            log.warning("ANN index beside %s fails its checksum; rebuilding it", prefix)
            return None
        labels = np.load(label_file, mmap_mode="c", allow_pickle=False)  # copy-on-write: read as used
        next_label = int(meta["next_label"])
        if labels.shape != (rows,) or labels.dtype != np.int64:
            return None
        waiting = Waiting.from_json(meta) if meta["format"] != "usearch-1" else Waiting((), (), next_label)
        index = HnswIndex.open(graph, meta["dimensions"], meta["distance"], spec)
        if not _fits(waiting, labels, next_label, index):
            return None
        index.mapped_from(graph, meta["crc_graph"])
        if not inline:  # the files as loaded: another process's save may give their names to new files meanwhile
            checks = [(open(label_file, "rb"), meta["crc_labels"]), (open(graph, "rb"), meta["crc_graph"])]  # noqa: SIM115 - closed by the check
            sidecar_id = _file_id(sidecar)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        log.warning("cannot load the ANN index beside %s (%s); rebuilding it", prefix, exc)
        return None
    if not inline:
        index.verifier = _verify_later(index, checks, sidecar, sidecar_id)
    return index, labels, next_label, waiting, _load_side(side_file, meta, spec)


def _load_side(path: Path, meta: dict, spec: IndexSpec) -> HnswIndex | None:
    """The graph of the waiting rows saved beside a -3 index, read whole, if its checksum holds."""
    if meta.get("crc_side") is None:
        return None
    try:
        if _crc(path) == meta["crc_side"]:
            return HnswIndex.open(path, meta["dimensions"], meta["distance"], spec, view=False)
        log.warning("the graph of the waiting rows %s fails its checksum; building it from those rows", path)
    except (OSError, ValueError, RuntimeError) as exc:
        log.warning("cannot load the graph of the waiting rows %s (%s); building it from those rows", path, exc)
    return None


def _fits(waiting: Waiting, labels: np.ndarray, next_label: int, index: HnswIndex) -> bool:
    """Whether the waiting changes agree with the rows' labels (sorted) and the graph: each waiting
    label is a row's, and each deleted one is still in the graph (a few binary searches, no scan)."""
    unindexed = np.array(waiting.unindexed, dtype=np.int64)
    at = np.minimum(np.searchsorted(labels, unindexed), max(len(labels) - 1, 0))
    if len(unindexed) and (not len(labels) or (labels[at] != unindexed).any()):
        return False
    if not waiting.graph_below <= next_label or any(label >= waiting.graph_below for label in waiting.gone):
        return False
    return index.holds(np.array(waiting.gone, dtype=np.int64))


def _file_id(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _verify_later(index: HnswIndex, files: list[tuple[BinaryIO, int]], sidecar: Path, sidecar_id: tuple[int, int]) -> threading.Thread:
    """Check the CRC32 of each of the open ``files`` in a thread, then close them; a mismatch marks the
    index damaged and removes ``sidecar``, unless another save has replaced it since (``sidecar_id``)."""

    def run() -> None:
        lower_this_threads_priority()
        try:
            bad = [f.name for f, crc in files if _crc_of(f) != crc]
        except OSError as exc:
            bad = [str(exc)]
        finally:
            for f, _ in files:
                f.close()
        if bad:
            index.damaged = True
            log.warning("ANN index file %s fails its checksum: searches go exact; it is rebuilt at the next open", bad[0])
            try:
                if _file_id(sidecar) == sidecar_id:
                    sidecar.unlink()
            except OSError:
                pass

    thread = threading.Thread(target=run, name="vecbook-verify-ann", daemon=True)
    thread.start()
    return thread
