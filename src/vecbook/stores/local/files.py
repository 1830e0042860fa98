"""The files of a local workspace folder: their names, temporary files, copying a log, meta.json.

See ``local.py`` for the layout and the protocol that publishes a generation.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

from ...dumps import fsync_dir
from ...errors import StoreCorruptedError
from .logfile import write_durably

__all__ = ["log_name", "snap_name", "write_meta", "temp_prefix", "remove_temp", "copy_log", "abandoned"]


def temp_prefix(folder: Path) -> Path:
    return folder / f".snap-{os.getpid()}-{uuid.uuid4().hex}"  # no dot after the first: suffixes stay ours


def remove_temp(temp: Path) -> None:
    for suffix in (".json", ".f32", ".log"):
        temp.with_suffix(suffix).unlink(missing_ok=True)


def copy_log(source: Path, start: int, stop: int, target: Path, durable: bool = False) -> int:
    """Append bytes ``[start, stop)`` of ``source`` to ``target``; fsync if ``durable``. Returns target's size."""
    with open(source, "rb") as src, open(target, "ab") as dst:
        src.seek(start)
        remaining = stop - start
        while remaining > 0:
            chunk = src.read(min(remaining, 8 << 20))
            if not chunk:
                raise StoreCorruptedError(f"{source} ended before offset {stop}")
            dst.write(chunk)
            remaining -= len(chunk)
        dst.flush()
        if durable:
            os.fsync(dst.fileno())
        return dst.tell()


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


def log_name(generation: int) -> str:
    return f"log-{generation:06d}.bin"


def snap_name(generation: int) -> str:
    return f"snap-{generation:06d}"


def write_meta(folder: Path, meta: dict) -> None:
    tmp = folder / f".meta-{uuid.uuid4().hex[:8]}.tmp"
    write_durably(tmp, json.dumps(meta).encode())
    os.replace(tmp, folder / "meta.json")
    fsync_dir(folder)
