"""LocalVectorStore: persistent workspaces in plain files, no server.

Layout of ``{store_dir}/{workspace_id}/``::

    meta.json        the published state: {"format", "id", "generation", "dimensions",
                     "snapshot": sizes and crc32 sums of the snapshot's files, "crc": its own}
    snap-<g>.json    ids, contents, metadata of generation g (absent for g = 0), a line per chunk
    snap-<g>.f32     their vectors, raw float32
    log-<g>.bin      writes since that snapshot: checksummed frames (see logfile.py)
    LOCK             flock()ed by a writer for the length of one write; holds the writer's pid

Once open, a workspace lives in RAM (a NodeTable) and searches never touch the
disk beyond two ``stat`` calls that pick up other processes' writes. A write
waits its turn among this process's writers, takes the file lock (waiting at most
``lock_timeout``), catches up with the log, appends one frame, fsyncs it and only
then changes the table and returns: an acknowledged write survives ``kill -9``. A
write whose append or fsync fails (disk full, EIO) is truncated off the log before
:class:`StorageError` is raised: a call that raised has not happened.

When the log outgrows the snapshot, a background thread of the writer's process
publishes a new generation without holding up writes: it copies the table (a
chunk per hold of the lock; see ``_fuzzy_copy``) from log offset ``o`` on and
writes that snapshot to temporary files with no lock held; then, under the lock,
it renames them into place, starts log ``g+1`` with the frames written after ``o``
(by any process), fsyncs, and replaces ``meta.json`` atomically. Until that
replace, generation ``g`` is complete on disk; after it, ``g+1`` is. A compaction
that finds another process published first discards its files; one that fails
(disk full) logs a warning once and is retried less and less often. With an
index, compaction stays in the writing call (the saved index must match the
snapshot's rows exactly). Files of older generations and temporary files left by
a killed process are removed by the next writer, or by an open that finds the
lock free.

Reading: every byte read is verified (frames by their crc32, snapshots and
``meta.json`` by the sums ``meta.json`` records). Only a torn **last** frame (a
write that never returned) is ignored, and truncated by the next writer; any other
damage raises :class:`CorruptedFileError` naming the file and offset, and nothing
is truncated past it. :meth:`LocalVectorStore.repair` (``python -m vecbook repair``)
recovers what is readable and keeps the damaged files. Readers never take the file
lock: they open the published generation's files (once open, a compaction deleting
them does no harm) and start again if ``meta.json`` moved on meanwhile, so a
concurrent compaction never makes a read fail.

With ``index="hnsw"`` each process keeps an approximate index in RAM, updated on
every write and log replay. The index is saved beside the snapshot
(``snap-<g>.hnsw`` etc., see ``ann.py``) with the log offset it reflects: by the
writer that publishes a snapshot, and on close by a store whose index ran ahead
of the saved one. It is a cache: on open it is used only if it matches
(generation, offset, rows, checksums), the log after that offset is replayed
into it, and otherwise it is rebuilt from the vectors.

Symbolic links inside ``store_dir`` (a workspace folder that is a link) are
refused with :class:`SymlinkError`; ``list_workspaces`` skips them with a warning.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..._aio import sync_twin, to_thread
from ...dumps import fsync_dir
from ...errors import (
    InvalidWorkspaceIdError,
    LockTimeoutError,
    StorageError,
    StoreCorruptedError,
    SymlinkError,
    ValidationError,
    VecbookError,
    WorkspaceNotFoundError,
)
from .. import local as tunables
from ..arguments import public
from ..engine.ann import load_index, make_spec, read_checkpoint, save_index
from ..engine.batch import NodeBatch, validate_workspace_id
from ..engine.table import NodeTable
from ..engine.table_store import TableState, TableStore
from . import locking
from .files import (
    META,
    copy_log,
    damaged,
    holds_workspace,
    log_name,
    parse_meta,
    remove_temp,
    snap_name,
    storage_error,
    sweep,
    temp_prefix,
    write_durably,
    write_meta,
)
from .logfile import (
    LogDamage,
    encode_delete,
    encode_upsert,
    read_legacy_snapshot,
    read_snapshot,
    scan_frames,
    write_snapshot,
)

__all__ = ["LocalVectorStore"]

logger = logging.getLogger("vecbook.local")

_FRAME_HEADER = 12  # bytes of a frame's marker, length and checksum
_LOAD_ATTEMPTS = 1000  # opens that find meta.json moved on meanwhile before giving up (a compaction each)
DEFAULT_LOCK_TIMEOUT = 60.0


@dataclass
class _LocalState(TableState):
    incarnation: str = ""
    generation: int = 0
    offset: int = 0  # bytes of the log already applied
    tail: tuple[int, bytes] | None = None  # (start, header) of the last frame applied: a rollback shows here
    meta_stat: tuple = ()
    snapshot_bytes: int = 0
    lock_file: Any = None  # the LOCK file, open while this state lives
    log_file: Any = None  # the log of this generation, open while this state lives
    write_lock: threading.Lock = None  # type: ignore[assignment]  # this process's writers, one at a time
    needs_reload: bool = False  # the table may differ from the files: rebuild before the next use
    swept: int = -1  # the generation whose stale files this process last removed
    index_offset: int | None = None  # log offset of the saved index of this generation, if any
    compactor: threading.Thread | None = None  # a background compaction of this workspace, while it runs
    compact_failures: int = 0
    compact_retry_at: float = 0.0  # time.monotonic() before which a failed compaction is not retried

    def __post_init__(self) -> None:
        if self.write_lock is None:
            self.write_lock = threading.Lock()


class LocalVectorStore(TableStore):
    """Workspaces persisted under ``store_dir``: crash-safe, multi-process safe, searched in RAM.

    ``index="hnsw"`` / ``index_params``: an approximate index for unfiltered
    searches, as for :class:`MemoryVectorStore`, persisted beside the snapshots.

    ``lock_timeout``: seconds a write waits for another process's write lock on the
    workspace before raising :class:`LockTimeoutError` naming the holder's pid
    (``None``: wait for ever). Reads never wait for it.
    """

    backend = "local"

    def __init__(
        self,
        embedding_model=None,
        store_dir: str | os.PathLike = "./local_vector_store",
        batch_size: int = 1024,
        index: str | None = None,
        index_params: dict | None = None,
        lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
        **kwargs: Any,
    ):
        super().__init__(embedding_model=embedding_model, batch_size=batch_size, **kwargs)
        if lock_timeout is not None and (isinstance(lock_timeout, bool) or not isinstance(lock_timeout, (int, float)) or lock_timeout < 0):
            raise ValidationError(f"lock_timeout must be a number of seconds >= 0 or None, got {lock_timeout!r}")
        self.lock_timeout = None if lock_timeout is None else float(lock_timeout)
        self._index_spec = make_spec(index, index_params)
        self.store_dir = str(store_dir)
        self._root = Path(store_dir).resolve()
        self._root_str = str(self._root)
        try:
            self._root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(self._root, exc, "create the store folder") from exc
        self._states: dict[str, _LocalState] = {}
        self._states_lock = threading.RLock()  # _forget() may run while _state() holds it
        self._warned: set[str] = set()

    def _describe(self) -> str:
        index = f", index={self._index_spec.kind!r}" if self._index_spec else ""
        return f"store_dir={self.store_dir!r}{index}"

    def _default_dump_dir(self) -> Path:
        """``{store_dir}/.dumps``: beside the workspace folders, a dump could take a workspace's name
        (workspace ``notes.jsonl`` and the dump of ``notes``); no workspace id starts with a dot."""
        return self._root / ".dumps"

    def _after_fork(self) -> None:
        # Start afresh from the files: the parent's lock files share its flock()s, and its
        # threads (a compaction, a writer holding a lock) do not exist here.
        self._states = {}
        self._states_lock = threading.RLock()

    def _dir(self, ws: str) -> Path:
        path = self._root / validate_workspace_id(ws)
        if path.parent != self._root:  # validate_workspace_id already rules this out
            raise StoreCorruptedError(f"workspace path {path} escapes {self._root}")
        return path

    def _real_dir(self, ws: str) -> Path:
        """The workspace folder, refusing a symbolic link (SymlinkError)."""
        path = self._dir(ws)
        if os.path.islink(path):
            raise SymlinkError(
                path,
                f"{path} is a symbolic link; vecbook does not follow links inside store_dir (renames, locks "
                f"and deletes would reach the link, not the data): move the workspace folder into {self._root} instead",
            )
        return path

    def _deadline(self) -> float | None:
        return None if self.lock_timeout is None else time.monotonic() + self.lock_timeout

    # ---- workspaces ---------------------------------------------------------------------

    async def _exists(self, ws: str) -> bool:
        path = self._dir(ws)
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise storage_error(path, exc, "look at") from exc
        if stat.S_ISLNK(mode):
            self._real_dir(ws)  # raises SymlinkError
        return stat.S_ISDIR(mode) and holds_workspace(path)

    async def _known(self, ws: str) -> bool:
        # A workspace open in RAM needs no stat here: the hooks that follow stat meta.json
        # anyway and raise WorkspaceNotFoundError if another process deleted it.
        return self._loaded_state(ws) is not None or await self._exists(ws)

    async def _list(self) -> list[str]:
        return await to_thread(self._scan)

    def _scan(self) -> list[str]:
        """Every workspace folder (damaged ones too: they must not vanish); links are skipped with a warning."""
        try:
            entries = list(os.scandir(self._root))
        except OSError as exc:
            raise storage_error(self._root, exc, "list") from exc
        names = []
        for entry in entries:
            if entry.name.startswith(".") or not _valid_id(entry.name):
                continue
            if entry.is_symlink():
                self._warn_once(entry.path, "%s is a symbolic link, which vecbook does not follow inside store_dir: not listed", entry.path)
            elif entry.is_dir(follow_symlinks=False) and holds_workspace(entry.path):
                names.append(entry.name)
        return names

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message, *args)

    async def _create(self, ws: str, dimensions: int | None) -> None:
        await to_thread(self._create_files, ws, dimensions)

    def _create_files(self, ws: str, dimensions: int | None) -> None:
        target = self._real_dir(ws)
        tmp = self._root / f".tmp-{ws}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir()
            (tmp / "LOCK").touch()
            write_durably(tmp / log_name(0), b"")
            write_meta(tmp, {"id": uuid.uuid4().hex, "generation": 0, "dimensions": dimensions, "snapshot": None})
            fsync_dir(tmp)
            try:
                os.rename(tmp, target)  # atomic; fails if another process created it first
            except OSError:
                if not holds_workspace(target):
                    raise StoreCorruptedError(f"{target} exists but is not a vecbook workspace") from None
                return
            fsync_dir(self._root)
        except VecbookError:
            raise
        except OSError as exc:
            raise storage_error(self._root, exc, f"create workspace {ws!r} in") from exc
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    async def _drop(self, ws: str) -> None:
        await to_thread(self._drop_files, ws)

    def _drop_files(self, ws: str) -> None:
        """Rename the folder away under its lock (no write is half-way through it), then remove it."""
        target = self._real_dir(ws)
        trash = self._root / f".trash-{ws}-{uuid.uuid4().hex[:8]}"
        try:
            with self._folder_locked(ws, self._deadline()):
                os.rename(target, trash)
        except WorkspaceNotFoundError:
            return  # deleted meanwhile
        except VecbookError:
            raise
        except OSError as exc:
            raise storage_error(target, exc, "delete") from exc
        with self._states_lock:
            self._states.pop(ws, None)
        fsync_dir(self._root)
        shutil.rmtree(trash, ignore_errors=True)

    @contextmanager
    def _folder_locked(self, ws: str, deadline: float | None):
        """Hold the workspace's LOCK with a file of our own (not a state's): deleting, repairing."""
        path = self._dir(ws) / "LOCK"
        while True:
            try:
                lock = locking.open_lock(path)
            except FileNotFoundError:
                raise WorkspaceNotFoundError(ws) from None
            except OSError as exc:
                raise storage_error(path, exc, "open the lock file") from exc
            try:
                locking.acquire(lock, path, deadline, self.lock_timeout)
                if locking.is_current(lock, path):
                    try:
                        yield
                    finally:
                        locking.release(lock)
                    return
                locking.release(lock)  # deleted or re-created while we waited: lock the one there now
            finally:
                lock.close()

    # ---- opening and catching up ---------------------------------------------------------

    def _state(self, ws: str) -> _LocalState:
        with self._states_lock:
            state = self._states.get(ws)
            if state is None:
                state = _LocalState(self._new_table())
                with state.lock, self._disk(ws):
                    self._load(ws, state)
                self._sweep_at_open(ws, state)
                self._states[ws] = state
            return state

    def _loaded_state(self, ws: str) -> _LocalState | None:
        with self._states_lock:
            return self._states.get(ws)

    def _held_states(self) -> list[_LocalState]:
        with self._states_lock:
            return list(self._states.values())

    def _forget(self, ws: str) -> WorkspaceNotFoundError:
        """Drop a workspace that no longer exists from RAM (its lock file closes with its state)."""
        with self._states_lock:
            self._states.pop(ws, None)
        return WorkspaceNotFoundError(ws)

    @contextmanager
    def _disk(self, ws: str):
        """Turn what the file system refuses (permissions, I/O errors) into StorageError naming the file."""
        try:
            yield
        except VecbookError:
            raise
        except OSError as exc:
            raise storage_error(exc.filename or self._dir(ws), exc, "read") from exc

    def _read_meta(self, ws: str, folder: Path) -> tuple[dict, tuple]:
        """The parsed meta.json and its (inode, mtime, size); WorkspaceNotFoundError if the folder is gone."""
        path = folder / META
        while True:
            try:
                with open(path, "rb") as f:
                    st = os.fstat(f.fileno())
                    raw = f.read()
                return parse_meta(path, raw), (st.st_ino, st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                self._meta_missing(ws, folder)  # returns only if it is there again

    def _meta_missing(self, ws: str, folder: Path) -> None:
        """meta.json was not found: the workspace was deleted, or meta.json alone was lost (damage)."""
        if (folder / META).exists():
            return  # re-created meanwhile
        try:
            names = sorted(os.listdir(folder))
        except FileNotFoundError:
            raise self._forget(ws) from None
        if not holds_workspace(folder):
            raise self._forget(ws)
        raise damaged(folder / META, f"{folder / META} is missing, but {folder} still holds a workspace's files ({', '.join(names[:6])})")

    @staticmethod
    def _meta_stat(folder: Path) -> tuple | None:
        try:
            st = os.stat(folder / META)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _load(self, ws: str, state: _LocalState) -> None:
        """(Re)build the state from the published generation and its log."""
        folder = self._real_dir(ws)
        for _ in range(_LOAD_ATTEMPTS):
            meta, meta_stat = self._read_meta(ws, folder)
            generation = meta["generation"]
            try:
                table, snapshot_bytes, log_file = self._read_generation(folder, meta)
            except FileNotFoundError as exc:
                if self._meta_stat(folder) != meta_stat:
                    continue  # a compaction published a new generation and removed this one: read that
                raise damaged(exc.filename, f"{exc.filename} is missing, but {folder / META} names generation {generation}") from None
            log = log_file.read()
            if state.log_file is not None:
                state.log_file.close()
            state.log_file = log_file
            state.table, state.incarnation, state.generation = table, meta["id"], generation
            state.meta_stat, state.snapshot_bytes, state.offset, state.tail = meta_stat, snapshot_bytes, 0, None
            state.needs_reload = True  # until the log is applied
            log_path = folder / log_name(generation)
            try:
                if self._index_spec is None:
                    self._apply_log(state, log, 0, log_path)
                else:
                    self._load_indexed(folder, state, memoryview(log), log_path)
            except FileNotFoundError:
                continue  # compacted while we re-read the log
            state.needs_reload = False
            return
        raise StoreCorruptedError(f"workspace {ws!r} kept changing while it was being opened ({_LOAD_ATTEMPTS} generations)")

    def _read_generation(self, folder: Path, meta: dict) -> tuple[NodeTable, int, Any]:
        """The table of a generation's snapshot, its size in bytes, and its log, open.

        The log is opened first and the snapshot files next: a compaction removes them
        only after publishing the next generation, and an open file stays readable.
        FileNotFoundError if one was already gone.
        """
        generation = meta["generation"]
        log = open(folder / log_name(generation), "rb", buffering=0)  # noqa: SIM115 - kept open by the state: see _caught_up
        try:
            table = NodeTable(meta["dimensions"], distance=self.distance)  # indexed once filled, by _load_indexed
            snapshot_bytes = 0
            if generation > 0:
                prefix = folder / snap_name(generation)
                if meta["format"] == 1:
                    batch = read_legacy_snapshot(prefix)
                else:
                    batch = read_snapshot(prefix, meta["snapshot"], meta["dimensions"])
                table.upsert(batch)
                snapshot_bytes = batch.vectors.nbytes
        except BaseException:
            log.close()
            raise
        return table, snapshot_bytes, log

    def _sweep_at_open(self, ws: str, state: _LocalState) -> None:
        """Remove stale files if the lock is free right now (never waits; a read-only store is left alone)."""
        path = self._dir(ws) / "LOCK"
        try:
            lock = locking.open_lock(path)
        except OSError:
            return
        state.lock_file = lock
        if not locking.try_acquire(lock):
            return
        try:
            if locking.is_current(lock, path):
                self._sweep(self._dir(ws))
        finally:
            locking.release(lock)

    @staticmethod
    def _sweep(folder: Path) -> None:
        try:
            removed = sweep(folder)
        except OSError as exc:
            logger.debug("could not remove stale files in %s: %s", folder, exc)
            return
        if removed:
            logger.info("%s: removed %d file(s) left by older generations or interrupted writers: %s", folder, len(removed), ", ".join(removed[:8]))

    def _load_indexed(self, folder: Path, state: _LocalState, log: memoryview, log_path: Path) -> None:
        """Replay the log into a table that has the snapshot, attaching the saved index where it fits.

        The log up to the saved index's offset is applied to the table alone; the
        index is then attached (or built from the table) and the rest of the log
        goes into both.
        """
        prefix = folder / snap_name(state.generation)
        table = state.table
        checkpoint = read_checkpoint(prefix, state.generation, self.distance, self._index_spec)
        stop = checkpoint["log_offset"] if checkpoint and checkpoint["log_offset"] <= len(log) else len(log)
        self._apply_log(state, log[:stop], 0, log_path, reread=False)
        saved = None
        if checkpoint is not None and state.offset == checkpoint["log_offset"]:
            saved = load_index(prefix, checkpoint, table.n_rows, table.dimensions, self._index_spec)
        table.attach_index(self._index_spec, saved)
        state.index_offset = state.offset if saved is not None else None
        self._apply_log(state, log[state.offset :], state.offset, log_path)

    def _apply_log(self, state: _LocalState, data: bytes | memoryview, base: int, path: Path, reread: bool = True) -> None:
        """Apply the intact frames of ``data`` (the log ``path`` from offset ``base``).

        Damage (a bad frame with intact frames after it) is read a second time from
        the file before it is believed: a writer truncating a torn tail may have raced
        our read. Then it raises CorruptedFileError naming file and offset.
        """
        try:
            self._apply_frames(state, data, base)
            return
        except LogDamage as damage:
            if not reread:
                return  # a prefix of the log (up to a saved index): the full pass that follows decides
            first = damage
        with open(path, "rb") as f:
            f.seek(state.offset)
            data = f.read()
        try:
            self._apply_frames(state, data, state.offset)
        except LogDamage as damage:
            raise damaged(
                path,
                f"{path}: {damage.reason} at offset {damage.offset}, with intact frames after it: the log is damaged "
                f"(only a write that never returned can leave a bad frame, and only as the last one); nothing was changed",
                damage.offset,
            ) from first

    @staticmethod
    def _apply_frames(state: _LocalState, data: bytes | memoryview, base: int) -> None:
        for frame in scan_frames(data, base):
            if frame.batch is not None:
                state.table.upsert(frame.batch)
            else:
                state.table.delete(frame.deleted)
            state.offset = frame.end
            state.tail = (frame.start, bytes(data[frame.start - base : frame.start - base + _FRAME_HEADER]))

    def _refresh(self, ws: str, state: TableState) -> None:
        """Apply what other processes wrote since we last looked (called under state.lock)."""
        assert isinstance(state, _LocalState)
        with self._disk(ws):
            if state.needs_reload:
                self._load(ws, state)
                return
            folder = self._dir(ws)
            try:
                st = os.stat(folder / META)
            except FileNotFoundError:
                self._meta_missing(ws, folder)
                self._load(ws, state)
                return
            if (st.st_ino, st.st_mtime_ns, st.st_size) != state.meta_stat or not self._caught_up(state, folder):
                self._load(ws, state)

    def _caught_up(self, state: _LocalState, folder: Path) -> bool:
        """Apply the log's new frames; False if the state must be rebuilt (its last frame was taken back).

        The log stays open (unbuffered) from the load on (a compaction changes meta.json,
        checked before): one ``fstat`` and a 12-byte read of the last frame's header per read.
        That header tells a reader that a frame it applied was taken back by its writer
        (whose fsync failed), even if another frame of the same size took its place.
        """
        f = state.log_file
        size = os.fstat(f.fileno()).st_size
        if size < state.offset or not self._tail_intact(f, state):
            return False
        if size > state.offset:
            f.seek(state.offset)
            data = f.read()
            self._apply_log(state, data, state.offset, folder / log_name(state.generation))
        return True

    @staticmethod
    def _tail_intact(f, state: _LocalState) -> bool:
        if state.tail is None:
            return True
        start, header = state.tail
        f.seek(start)
        return f.read(len(header)) == header

    # ---- writes --------------------------------------------------------------------------

    async def _upsert(self, ws: str, batch: NodeBatch) -> None:
        frame = await to_thread(encode_upsert, batch)

        def write(table: NodeTable) -> bytes:
            table.check(batch)
            return frame

        await to_thread(self._write, ws, write, lambda t: t.upsert(batch))

    async def _delete(self, ws: str, ids: list[str]) -> None:
        def write(table: NodeTable) -> bytes | None:
            present = [i for i in ids if i in table.row_of]
            return encode_delete(present) if present else None

        await to_thread(self._write, ws, write, lambda t: t.delete(ids))

    def _write(self, ws: str, make_frame, apply) -> None:
        """Holding the workspace and caught up: ``make_frame(table)`` → append + fsync → ``apply(table)``.

        A call that raises has not happened: a failed append is truncated off, and so is
        the frame of an apply that failed (the table is then rebuilt from the files).
        """
        state = self._state(ws)
        with self._writing(ws, state):
            frame = make_frame(state.table)
            if frame is None:
                return
            path = self._dir(ws) / log_name(state.generation)
            start = state.offset
            self._append(path, start, frame)
            try:
                apply(state.table)
            except BaseException as exc:
                state.needs_reload = True  # the table may be part-changed: rebuild it from the files
                self._take_back(path, start, exc)
                raise
            state.offset, state.tail = start + len(frame), (start, frame[:_FRAME_HEADER])
            self._maybe_compact(ws, state)

    @contextmanager
    def _writing(self, ws: str, state: _LocalState):
        """Hold the workspace for one write, caught up with every write published before.

        This process's writers take turns first, then the file lock is taken (waiting
        at most ``lock_timeout`` for another process), and only then the state's lock:
        readers of this process never wait for another process's writer.
        """
        deadline = self._deadline()
        if not state.write_lock.acquire(timeout=-1 if self.lock_timeout is None else self.lock_timeout):
            raise LockTimeoutError(self._dir(ws) / "LOCK", self.lock_timeout or 0.0, os.getpid())
        try:
            lock = self._file_lock(ws, state, deadline)
            try:
                with state.lock:
                    self._refresh(ws, state)
                    if state.swept != state.generation:
                        self._sweep(self._dir(ws))
                        state.swept = state.generation
                    yield
            finally:
                locking.release(lock)
        finally:
            state.write_lock.release()

    def _file_lock(self, ws: str, state: _LocalState, deadline: float | None):
        """Take the LOCK of the workspace folder there now (re-opened if it was deleted or re-created)."""
        path = self._dir(ws) / "LOCK"
        while True:
            if state.lock_file is None:
                try:
                    state.lock_file = locking.open_lock(path)
                except FileNotFoundError:
                    raise self._forget(ws) from None
                except OSError as exc:
                    raise storage_error(path, exc, "open the lock file") from exc
            lock = state.lock_file
            locking.acquire(lock, path, deadline, self.lock_timeout)
            if locking.is_current(lock, path):
                return lock
            locking.release(lock)
            state.lock_file = None

    def _append(self, path: Path, start: int, frame: bytes) -> None:
        """Write ``frame`` at ``start`` (dropping a torn tail there) and fsync; on failure take it back and raise."""
        try:
            fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise damaged(path, f"{path} is missing, but meta.json names it as the log of the published generation") from None
        except OSError as exc:
            raise storage_error(path, exc, "open") from exc
        try:
            size = os.fstat(fd).st_size
            if size < start:
                raise damaged(path, f"{path} is {size} bytes long, shorter than the {start} bytes of frames already read from it", size)
            if size > start:
                logger.warning(
                    "%s: dropping the %d bytes after offset %d, the torn last frame of a write that never returned "
                    "(a crash or a kill); every acknowledged write is before it",
                    path, size - start, start,
                )
            try:
                if size > start:
                    os.ftruncate(fd, start)
                _write_all(fd, frame, start)
                os.fsync(fd)
            except OSError as exc:
                self._undo_append(fd, path, start, exc)
        finally:
            os.close(fd)

    @staticmethod
    def _undo_append(fd: int, path: Path, start: int, exc: OSError) -> None:
        """Truncate a failed append off the log, then raise StorageError (saying so if that failed too)."""
        try:
            os.ftruncate(fd, start)
            os.fsync(fd)
        except OSError as undo:
            raise StorageError(
                path,
                f"cannot append to {path} ({exc.strerror or exc}), and taking the partial write back failed too "
                f"({undo.strerror or undo}): this write may or may not be stored; open the store again to see",
                exc.errno,
            ) from exc
        raise storage_error(path, exc, "append to") from exc

    def _take_back(self, path: Path, start: int, cause: BaseException) -> None:
        """Truncate the log to ``start`` (a frame whose call is about to raise)."""
        try:
            fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
            try:
                os.ftruncate(fd, start)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as undo:
            raise storage_error(path, undo, f"take back a write that failed ({type(cause).__name__}) from") from cause

    # ---- compaction ----------------------------------------------------------------------

    def _maybe_compact(self, ws: str, state: _LocalState) -> None:
        """Start a compaction if the log outgrew the snapshot (and no failed one is backing off)."""
        if state.offset <= max(tunables.MIN_COMPACT_BYTES, state.snapshot_bytes) or state.compactor is not None:
            return
        if time.monotonic() < state.compact_retry_at:
            return
        if state.table.index is not None:
            try:
                self._compact_now(ws, state)  # the saved index must match the snapshot's rows exactly
            except Exception as exc:  # noqa: BLE001 - the write itself succeeded; generation g is intact
                self._compaction_failed(ws, state, exc)
            else:
                self._compaction_done(ws, state)
        else:
            state.compactor = threading.Thread(target=self._compact, args=(ws, state), name=f"vecbook-compact-{ws}")
            state.compactor.start()  # not a daemon: an exiting interpreter lets it finish

    def _compaction_failed(self, ws: str, state: _LocalState, exc: BaseException) -> None:
        """Log the first failure of a streak as a warning and wait longer before each retry."""
        if isinstance(exc, WorkspaceNotFoundError):
            return
        if isinstance(exc, OSError) and not isinstance(exc, VecbookError):
            exc = storage_error(exc.filename or self._dir(ws), exc, "compact")
        state.compact_failures += 1
        wait = min(tunables.COMPACT_BACKOFF_MAX, tunables.COMPACT_BACKOFF * 2 ** (state.compact_failures - 1))
        state.compact_retry_at = time.monotonic() + wait
        level = logging.WARNING if state.compact_failures == 1 else logging.DEBUG
        logger.log(
            level,
            "workspace %r: compaction failed (%s: %s); every write is safe in the log, which keeps growing. "
            "Retrying in %g s, then less and less often",
            ws, type(exc).__name__, exc, wait,
        )

    def _compaction_done(self, ws: str, state: _LocalState) -> None:
        if state.compact_failures:
            logger.info("workspace %r: compaction succeeded again after %d failure(s)", ws, state.compact_failures)
        state.compact_failures, state.compact_retry_at = 0, 0.0

    def _compact(self, ws: str, state: _LocalState) -> None:
        """Publish generation g+1 from a background thread (see the module docstring)."""
        try:
            published = self._compact_in_background(ws, state)
        except Exception as exc:  # noqa: BLE001 - generation g is intact; a later write tries again
            self._compaction_failed(ws, state, exc)
        else:
            if published:
                self._compaction_done(ws, state)
        finally:
            state.compactor = None

    def _compact_in_background(self, ws: str, state: _LocalState) -> bool:
        folder = self._dir(ws)
        temp = temp_prefix(folder)
        try:
            copied = self._fuzzy_copy(ws, state)
            if copied is None:
                return False  # rows renumbered or reloaded meanwhile: a later write tries again
            generation, incarnation, start, batch = copied
            info = write_snapshot(temp, batch)
            with state.lock:
                copied_to = state.offset if state.generation == generation else start
            # Frames before copied_to are final (logs are only appended to): copy them unlocked.
            copy_log(folder / log_name(generation), start, copied_to, temp.with_suffix(".log"))
            with self._writing(ws, state):
                if (state.generation, state.incarnation) != (generation, incarnation):
                    return False  # another process published meanwhile, or the workspace was re-created
                self._publish(ws, state, temp, copied_to, batch, info)
            return True
        finally:
            remove_temp(temp)

    def _fuzzy_copy(self, ws: str, state: _LocalState) -> tuple[int, str, int, NodeBatch] | None:
        """Copy the table in chunks, taking the lock per chunk only, plus the log offset to replay from.

        Every row not written after that offset stays as it was during the copy;
        a row written after it may be copied in any state, since replaying the log
        from the offset (upserts and deletes are idempotent) overwrites it. Rows are
        only ever appended, so a chunk's row numbers stay valid unless the table is
        renumbered (``layout``) or reloaded: then give up.
        """
        with state.lock:
            self._refresh(ws, state)
            table, generation, incarnation, start = state.table, state.generation, state.incarnation, state.offset
            layout, n = table.layout, table.n_rows
        parts = []
        step = tunables.SNAPSHOT_CHUNK_ROWS
        for lo in range(0, max(n, 1), step):
            with state.lock:
                if state.table is not table or table.layout != layout:
                    return None
                parts.append(table.batch(table.live_rows(lo, min(n, lo + step))))
        return generation, incarnation, start, NodeBatch.concat(parts)

    def _compact_now(self, ws: str, state: _LocalState) -> None:
        """Publish generation g+1 right here, under both locks: rows of RAM and snapshot stay the same."""
        state.table.compact()
        batch = state.table.batch(state.table.live_rows())
        temp = temp_prefix(self._dir(ws))
        try:
            info = write_snapshot(temp, batch)
            self._publish(ws, state, temp, state.offset, batch, info)  # an empty log g+1
        finally:
            remove_temp(temp)

    def _publish(self, ws: str, state: _LocalState, temp: Path, copied_to: int, batch: NodeBatch, info: dict) -> None:
        """Under both locks: snapshot files into place, log g+1 = ``temp.log`` + the frames since
        ``copied_to``, then meta.json; then the old generation's files go."""
        folder = self._dir(ws)
        old, new = state.generation, state.generation + 1
        tail = copy_log(folder / log_name(old), copied_to, state.offset, temp.with_suffix(".log"), durable=True)
        os.replace(temp.with_suffix(".json"), folder / (snap_name(new) + ".json"))
        os.replace(temp.with_suffix(".f32"), folder / (snap_name(new) + ".f32"))
        os.replace(temp.with_suffix(".log"), folder / log_name(new))
        index_state = state.table.index_state()
        saved = index_state is not None and save_index(folder / snap_name(new), *index_state, generation=new, log_offset=tail)
        fsync_dir(folder)
        write_meta(folder, {"id": state.incarnation, "generation": new, "dimensions": state.table.dimensions, "snapshot": info})
        meta_stat = os.stat(folder / META)
        log_file, state.log_file = state.log_file, open(folder / log_name(new), "rb", buffering=0)  # noqa: SIM115 - the state's
        log_file.close()
        state.generation, state.offset, state.snapshot_bytes, state.tail = new, tail, batch.vectors.nbytes, None
        state.index_offset = tail if saved else None
        state.meta_stat = (meta_stat.st_ino, meta_stat.st_mtime_ns, meta_stat.st_size)
        self._sweep(folder)  # the old generation's files, and any a killed compaction left
        state.swept = new

    def wait_for_compaction(self) -> None:
        """Block until background compactions started by this store have finished (tests, benchmarks, exit)."""
        with self._states_lock:
            threads = [s.compactor for s in self._states.values() if s.compactor is not None]
        for thread in threads:
            thread.join()

    async def _close(self) -> None:
        await to_thread(self.wait_for_compaction)
        with self._states_lock:
            states = list(self._states.items())
            self._states.clear()
        for ws, state in states:
            if state.table.index is not None:
                await to_thread(self._checkpoint_index, ws, state)
            for f in (state.lock_file, state.log_file):
                if f is not None:
                    f.close()

    def _checkpoint_index(self, ws: str, state: _LocalState) -> None:
        """Save the index if it ran well ahead of the saved one, so the next open need not rebuild."""
        behind = state.offset - state.index_offset if state.index_offset is not None else state.offset + state.snapshot_bytes
        if behind < tunables.CHECKPOINT_BYTES:
            return
        try:
            with self._writing(ws, state):
                index_state = state.table.index_state()
                if index_state is not None and self._dir(ws).is_dir():
                    prefix = self._dir(ws) / snap_name(state.generation)
                    if save_index(prefix, *index_state, generation=state.generation, log_offset=state.offset):
                        state.index_offset = state.offset
        except (OSError, WorkspaceNotFoundError, StoreCorruptedError):
            pass  # a cache: the next open rebuilds it

    # ---- repair --------------------------------------------------------------------------

    @public
    async def async_repair(self, workspace_id: str) -> dict:
        """Check every file of a workspace and, if any is damaged, rebuild it from what is readable.

        Holds the workspace's lock meanwhile. A healthy workspace is left as it is
        (``{"repaired": False, "problems": []}``). Otherwise the damaged files are
        kept in ``{store_dir}/.damaged/{workspace_id}-<time>/`` (hard links or copies),
        and a new generation is published from the intact snapshot rows and every
        intact log frame (a damaged frame loses that one write, not the ones after
        it). Returns ``{"workspace", "repaired", "nodes", "lost_nodes", "lost_ids",
        "skipped_log_bytes", "problems", "backup"}``. Also handles a lost ``meta.json``.
        """
        ws = validate_workspace_id(workspace_id)
        if not await self._exists(ws):
            raise WorkspaceNotFoundError(ws)
        return await to_thread(self._repair, ws)

    repair = sync_twin(async_repair)

    def _repair(self, ws: str) -> dict:
        from .repair import repair_folder

        folder = self._real_dir(ws)
        with self._disk(ws), self._folder_locked(ws, self._deadline()):
            report = repair_folder(folder, self._root / ".damaged", self.distance)
        state = self._loaded_state(ws)
        if state is not None:
            with state.lock:
                state.needs_reload = True
        return {"workspace": ws, **report}


def _write_all(fd: int, data: bytes, offset: int) -> None:
    os.lseek(fd, offset, os.SEEK_SET)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view[: 1 << 30]) :]


def _valid_id(name: str) -> bool:
    try:
        validate_workspace_id(name)
    except InvalidWorkspaceIdError:
        return False
    return True
