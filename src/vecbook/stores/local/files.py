"""The files of a local workspace folder: names, meta.json, temporary and stale files, errors naming them.

See ``store.py`` for the layout and the protocol that publishes a generation.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import re
import shutil
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

from ...dumps import fsync_dir
from ...errors import CorruptedFileError, StorageError

__all__ = [
    "FORMAT",
    "META",
    "abandoned",
    "copy_log",
    "copy_range",
    "damaged",
    "generation_of",
    "holds_workspace",
    "free_prefix",
    "log_name",
    "log_start",
    "parse_meta",
    "remove_temp",
    "repair_hint",
    "snap_name",
    "storage_error",
    "sweep",
    "temp_prefix",
    "write_durably",
    "write_meta",
]

META = "meta.json"
# 4: the snapshot may hold holes (deleted rows, listed in its "dead"): a vecbook that reads only up to 3
# would take them for nodes, so it refuses the store; 3 (still read): meta.json says where the log's
# frames start; 2: they start at 0; 1: no checksums
FORMAT = 4
_KEYS = {1: {"format", "id", "generation", "dimensions"}, 2: {"format", "id", "generation", "dimensions", "snapshot", "crc"}}
_KEYS[3] = _KEYS[2] | {"log_start"}
_KEYS[4] = _KEYS[3]
_GENERATION = re.compile(r"(?:log|snap)-(\d{6,})\.")


def log_name(generation: int) -> str:
    return f"log-{generation:06d}.bin"


def log_start(meta: dict[str, Any]) -> int:
    """Where the frames of the published generation start in its log (the bytes before are dead)."""
    return meta.get("log_start", 0)


def snap_name(generation: int) -> str:
    return f"snap-{generation:06d}"


def generation_of(name: str) -> int | None:
    """The generation a ``log-<g>.bin`` or ``snap-<g>.*`` file belongs to (None for other files)."""
    match = _GENERATION.match(name)
    return int(match.group(1)) if match else None


def temp_prefix(folder: Path) -> Path:
    return folder / f".snap-{os.getpid()}-{uuid.uuid4().hex}"  # no dot after the first: suffixes stay ours


def remove_temp(temp: Path) -> None:
    for suffix in (".json", ".f32", ".nrm", ".ids", ".rix"):
        temp.with_suffix(suffix).unlink(missing_ok=True)


def copy_range(src: int, dst: int, offset: int, length: int) -> None:
    """Copy ``length`` bytes of ``src`` from ``offset`` to the end of ``dst`` (in the kernel where it can)."""
    os.lseek(dst, 0, os.SEEK_END)
    end = offset + length
    while offset < end:
        try:
            done = os.copy_file_range(src, dst, end - offset, offset)
        except (AttributeError, OSError):  # no copy_file_range here (or not between these files)
            # 1 MB at a time: bigger writes can stall the page cache (see vecbook/_file_writes.py)
            done = os.write(dst, os.pread(src, min(end - offset, 1 << 20), offset))
        if not done:
            raise ValueError("a file ended early while being copied")
        offset += done


def write_durably(path: Path, data: bytes) -> None:
    """Write a new file and fsync it (the caller publishes it with an atomic rename)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def copy_log(source: Path, start: int, stop: int, target: Path, durable: bool = False) -> int:
    """Append bytes ``[start, stop)`` of ``source`` to ``target`` (in the kernel where it can); fsync if
    ``durable``. Returns target's size."""
    with open(source, "rb") as src:
        dst = os.open(target, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)  # no O_APPEND: copy_file_range refuses it
        try:
            if os.fstat(src.fileno()).st_size < stop:
                raise damaged(source, f"{source} ended before offset {stop}", start)
            try:
                copy_range(src.fileno(), dst, start, stop - start)
            except ValueError:  # cut short while being copied
                raise damaged(source, f"{source} ended before offset {stop}", start) from None
            if durable:
                os.fsync(dst)
            return os.fstat(dst).st_size
        finally:
            os.close(dst)


_PUNCH_HOLE = 0x01 | 0x02  # FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE (linux/falloc.h)


@functools.cache
def _fallocate():
    """libc's ``fallocate`` where there is one (Linux), else None: Python has no call that punches holes."""
    try:
        fallocate = ctypes.CDLL(None, use_errno=True).fallocate
    except (AttributeError, OSError):
        return None
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    return fallocate


def free_prefix(path: Path, stop: int) -> bool:
    """Give the disk space of bytes ``[0, stop)`` of ``path`` back, leaving a hole that reads as zeros.

    The file keeps its size and every later byte its offset, so writers appending to it
    and readers holding it open see no change. Linux only; elsewhere, or on a file system
    that cannot punch holes, the bytes stay until the log starts afresh. Returns whether
    they were freed.
    """
    fallocate = _fallocate()
    if fallocate is None or stop <= 0:
        return False
    try:
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        return fallocate(fd, _PUNCH_HOLE, 0, stop) == 0
    finally:
        os.close(fd)


def abandoned(temp: Path) -> bool:
    """Whether a compaction's temporary file was left by a process that no longer runs (or is old)."""
    try:
        pid = int(temp.name.split("-")[1])
        if pid != os.getpid():
            os.kill(pid, 0)
        return temp.stat().st_mtime < time.time() - 3600  # alive (or a reused pid): only if long forgotten
    except (ValueError, IndexError, ProcessLookupError):
        return True
    except (PermissionError, FileNotFoundError):
        return False


# ---- meta.json ------------------------------------------------------------------------------------


def _crc(meta: dict[str, Any]) -> int:
    body = {key: value for key, value in meta.items() if key != "crc"}
    return zlib.crc32(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    """Publish ``meta`` (with its checksum) as ``folder/meta.json``: a temporary file, fsync, rename, fsync the folder."""
    meta = {"log_start": 0, **meta, "format": FORMAT}
    meta["crc"] = _crc(meta)
    tmp = folder / f".meta-{uuid.uuid4().hex[:8]}.tmp"
    try:
        write_durably(tmp, json.dumps(meta).encode())
        os.replace(tmp, folder / META)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(folder)


def parse_meta(path: Path, raw: bytes) -> dict[str, Any]:
    """The content of ``meta.json``, checked; :class:`CorruptedFileError` naming what is wrong otherwise."""

    def bad(what: str) -> CorruptedFileError:
        return damaged(path, f"{path} {what}")

    try:
        meta = json.loads(raw)
    except ValueError as exc:
        raise bad(f"is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        kind = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(type(meta), "null")
        raise bad(f"holds {kind}, not a JSON object")
    fmt = meta.get("format")
    if type(fmt) is not int or fmt not in _KEYS:
        raise bad(f"has an unknown format {fmt!r} (this vecbook reads formats 1 to {FORMAT})")
    problem = _shape_problem(meta, fmt)
    if fmt >= 2 and meta.get("crc") != _crc(meta):
        raise bad("fails its checksum: it was changed or damaged" + (f" ({problem})" if problem else ""))
    if problem:
        raise bad(problem)
    return meta


def _shape_problem(meta: dict[str, Any], fmt: int) -> str | None:
    """What is wrong with the keys and values of a meta.json of format ``fmt``, if anything."""
    if set(meta) != _KEYS[fmt]:
        missing, extra = sorted(_KEYS[fmt] - set(meta)), sorted(set(meta) - _KEYS[fmt])
        return f"lacks the keys {missing}, has unexpected keys {extra}"
    return _meta_problem(meta)


def _is_count(value: Any, least: int = 0) -> bool:
    return type(value) is int and value >= least


def _meta_problem(meta: dict[str, Any]) -> str | None:
    if not isinstance(meta["id"], str) or not meta["id"]:
        return f"has a bad id {json.dumps(meta['id'])}"
    if not _is_count(meta["generation"]):
        return f"has a bad generation {json.dumps(meta['generation'])}, not a whole number >= 0"
    if meta["dimensions"] is not None and not _is_count(meta["dimensions"], 1):
        return f"has bad dimensions {json.dumps(meta['dimensions'])}"
    if meta["format"] == 1:
        return None
    if not _is_count(meta.get("log_start", 0)):
        return f"has a bad log_start {json.dumps(meta['log_start'])}, not a whole number >= 0"
    snapshot = meta["snapshot"]
    if (snapshot is None) != (meta["generation"] == 0):
        return "describes no snapshot for a generation above 0 (or one for generation 0)"
    if snapshot is not None:
        try:
            ok = _is_count(snapshot["rows"]) and _is_count(snapshot["json"]["size"]) and _is_count(snapshot["f32"]["size"])
            ok = ok and _is_count(snapshot["f32"]["chunk"], 1) and all(_is_count(c) for c in snapshot["json"]["crcs"] + snapshot["f32"]["crcs"])
            ok = ok and snapshot["f32"]["size"] == snapshot["rows"] * (meta["dimensions"] or 0) * 4
            ok = ok and _are_holes(snapshot.get("dead", []), snapshot["rows"]) and ("dead" not in snapshot or meta["format"] >= 4)
        except (KeyError, TypeError):
            ok = False
        if not ok:
            return "describes its snapshot inconsistently"
    return None


def _are_holes(dead: Any, rows: int) -> bool:
    """Whether ``dead`` is a snapshot's list of holes: rows below ``rows``, each once, in order."""
    return isinstance(dead, list) and all(_is_count(r) and r < rows for r in dead) and all(a < b for a, b in zip(dead, dead[1:]))


# ---- what a folder holds ----------------------------------------------------------------------------


def holds_workspace(path: str | Path) -> bool:
    """Whether a folder is (or was) a workspace: it has ``meta.json``, or, if that is lost, the
    lock or files of a generation. A folder that cannot be read counts: hiding it would hide data."""
    try:
        os.stat(os.path.join(path, META))
        return True
    except FileNotFoundError:
        pass
    except OSError:
        return True
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return any(name == "LOCK" or generation_of(name) is not None for name in names)


def sweep(folder: Path) -> list[str]:
    """Remove what older generations and interrupted writers left; call with the workspace's lock held.

    Reads the published generation from ``meta.json`` itself (it may have moved on
    since the caller looked); does nothing if that cannot be read (``repair`` decides then).
    Returns the names removed.
    """
    try:
        current = parse_meta(folder / META, (folder / META).read_bytes())["generation"]
    except (OSError, CorruptedFileError):
        return []
    removed = []
    for name in os.listdir(folder):
        generation = generation_of(name)
        stale = (generation is not None and generation != current) or (name.startswith(".meta-") and name.endswith(".tmp"))
        stale = stale or (name.startswith(".snap-") and abandoned(folder / name))
        if stale:
            try:
                (folder / name).unlink()
                removed.append(name)
            except FileNotFoundError:
                pass
    return removed


def backup(folder: Path, target: Path) -> Path:
    """Keep every file of ``folder`` (but the locks) in ``target``: hard links where possible, else copies."""
    target.mkdir(parents=True)
    for entry in os.scandir(folder):
        if entry.name in ("LOCK", "EXTEND") or not entry.is_file(follow_symlinks=False):
            continue
        try:
            os.link(entry.path, target / entry.name)
        except OSError:
            shutil.copy2(entry.path, target / entry.name)
    fsync_dir(target)
    return target


# ---- errors naming files ----------------------------------------------------------------------------


def repair_hint(folder: Path) -> str:
    store_dir, ws = folder.parent, folder.name
    return (
        f"to recover what is readable, run LocalVectorStore(store_dir={str(store_dir)!r}).repair({ws!r}) "
        f"or `python -m vecbook repair {store_dir} {ws}` (it keeps a copy of the damaged files)"
    )


def damaged(path: Path | str, message: str, offset: int | None = None) -> CorruptedFileError:
    """A :class:`CorruptedFileError` for a file of a workspace folder, with the way to repair it."""
    path = Path(path)
    return CorruptedFileError(path, f"{message}; {repair_hint(path.parent)}", offset)


_HINTS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied: check the owner and mode of the store's files",
    errno.EPERM: "operation not permitted: check the owner and mode of the store's files",
    errno.EIO: "an I/O error: the disk may be failing",
    errno.EFBIG: "the file size limit was reached",
}


def storage_error(path: Path | str, exc: OSError, action: str) -> StorageError:
    """A :class:`StorageError` naming ``path`` for an OSError raised while doing ``action`` to it."""
    why = _HINTS.get(exc.errno or 0) or exc.strerror or str(exc)
    return StorageError(path, f"cannot {action} {path}: {why} ({exc.strerror or exc})", exc.errno)
