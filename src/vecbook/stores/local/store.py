"""LocalVectorStore: persistent workspaces in plain files, no server.

Layout of ``{store_dir}/{workspace_id}/``::

    meta.json        the published state: {"format", "id", "generation", "dimensions",
                     "snapshot": sizes and crc32 sums of the snapshot's files,
                     "log_start": where the log's frames start, "crc": its own}
    snap-<g>.json    ids, contents, metadata of generation g (absent for g = 0), a line per chunk
    snap-<g>.f32     their vectors, raw float32
    snap-<g>.nrm     their squared norms: a cache with its own checksum (absent or bad: recomputed)
    snap-<g>.ids     their ids in row order: a cache with its own checksum (absent or bad: rows decoded)
    snap-<g>.rix     where each row sits in the .json, and its id's hash: a cache with its own checksum
                     (absent or bad: rebuilt; see row_index.py)
    log-<g>.bin      writes since that snapshot: checksummed frames from ``log_start`` on (see
                     logfile.py); the bytes before it are dead, often a hole (see compaction.py)
    LOCK             flock()ed by a writer for the length of one write; holds the writer's pid

Once open, a workspace lives in a NodeTable whose matrix is a copy-on-write map of
the snapshot's vectors and whose rows are decoded when first used (``snapshot.py``);
rows appended go to a scratch file without a name in the workspace folder, mapped shared
right after the snapshot's rows (``engine/matrix.py``: page cache, not anonymous RAM; never
durable state: gone with the process, even after ``kill -9``). Searches never touch the disk beyond a ``stat`` and an ``fstat`` that pick up other
processes' writes. A write
waits its turn among this process's writers, takes the file lock (waiting at most
``lock_timeout``), catches up with the log, appends one frame, fsyncs it while a
helper thread changes the table (no reader sees the change before the fsync is done),
and returns: an acknowledged write survives ``kill -9``. A
write whose append or fsync fails (disk full, EIO) is truncated off the log before
:class:`StorageError` is raised: a call that raised has not happened.

Closing a store that wrote a log of at least ``MIN_COMPACT_BYTES`` publishes a
generation first, so the next open replays none. When the log outgrows the snapshot, a background thread of the writer's process
publishes a new generation without holding up writes: it copies the table (a
chunk per hold of the lock; see ``_fuzzy_copy``) from log offset ``o`` on and
writes that snapshot to temporary files with no lock held (rows the published
snapshot already holds unchanged are copied from its files, not encoded again: see
``compaction.py``); then, under the lock,
it renames them into place, gives log ``g`` the second name ``g+1`` with ``log_start``
``o`` (the frames written after ``o``, by any process, stay where they are: none is
copied), fsyncs, and replaces ``meta.json`` atomically. Until that
replace, generation ``g`` is complete on disk; after it, ``g+1`` is. A compaction
that finds another process published first discards its files; one that fails
(disk full) logs a warning once and is retried less and less often. With an
index, compaction stays in the writing call (the saved index must match the
snapshot's rows exactly). Files of older generations and temporary files left by
a killed process are removed by the next writer, or by an open that finds the
lock free.

Reading: every byte used is verified (frames by their crc32, snapshots and
``meta.json`` by the sums ``meta.json`` records; a big snapshot in a background
thread, whose damage then fails every call: see ``snapshot.py``). Only a torn **last** frame (a
write that never returned) is ignored, and truncated by the next writer; any other
damage raises :class:`CorruptedFileError` naming the file and offset, and nothing
is truncated past it. :meth:`LocalVectorStore.repair` (``python -m vecbook repair``)
recovers what is readable and keeps the damaged files. Readers never take the file
lock: they open the published generation's files (once open, a compaction deleting
them does no harm) and start again if ``meta.json`` moved on meanwhile, so a
concurrent compaction never makes a read fail.

With ``index="hnsw"`` each process keeps an approximate index in RAM, updated on
every write and log replay. The index is saved beside the snapshot
(``snap-<g>.usearch`` etc., see ``ann_files.py``) with the log offset it reflects: by the
writer that publishes a snapshot, and on close by a store whose index ran ahead
of the saved one. It is a cache: on open it is used only if it matches
(generation, offset, rows, checksums), the log after that offset is replayed
into it, and otherwise it is rebuilt from the vectors. A saved graph is opened as a
read-only memory map (writes after the open wait beside it, in a small graph held in
RAM: ``engine/table_index.py``) and checksummed in the background when large.

Symbolic links inside ``store_dir`` (a workspace folder that is a link) are
refused with :class:`SymlinkError`; ``list_workspaces`` skips them with a warning.

The class is written in parts: this module (workspaces, writes, closing, repair),
``catchup.py`` (opening a generation and following other writers), ``compaction.py``
(publishing generations), ``state.py`` (what is held per open workspace), ``log_append.py``
(appending a frame durably, taking it back); file formats in ``files.py``, ``logfile.py`` and
``snapshot*.py``, locks in ``locking.py``.
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
from pathlib import Path
from typing import Any

from ..._aio import sync_twin, to_thread
from ...dumps import fsync_dir
from ...errors import (
    InvalidWorkspaceIdError,
    LockTimeoutError,
    StoreCorruptedError,
    SymlinkError,
    ValidationError,
    VecbookError,
    WorkspaceNotFoundError,
)
from ..arguments import public
from ..engine.ann import make_spec
from ..engine.batch import NodeBatch, validate_workspace_id
from ..engine.table import NodeTable
from ..engine.table_store import TableStore
from . import locking
from .files import (
    holds_workspace,
    log_name,
    storage_error,
    write_durably,
    write_meta,
)
from .log_append import append_frame
from .logfile import (
    FRAME_HEADER,
    encode_delete,
    encode_upsert,
)

__all__ = ["LocalVectorStore"]

logger = logging.getLogger("vecbook.local")

DEFAULT_LOCK_TIMEOUT = 60.0


from .catchup import CatchUp
from .compaction import Compaction
from .state import _LocalState


class LocalVectorStore(CatchUp, Compaction, TableStore):
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
        self._index_spec = make_spec(index, index_params, self.distance)
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

    # ---- writes --------------------------------------------------------------------------

    async def _upsert(self, ws: str, batch: NodeBatch) -> None:
        def encode_and_write() -> None:
            frame = encode_upsert(batch)  # before any lock is taken: readers never wait for it

            def write(table: NodeTable) -> list:
                table.check(batch)
                return frame

            self._write(ws, write, lambda t: t.upsert(batch))

        await to_thread(encode_and_write)  # one worker-thread trip per write

    async def _delete(self, ws: str, ids: list[str]) -> None:
        def write(table: NodeTable) -> list | None:
            present = [node_id for node_id, row in zip(ids, table.find_rows(ids)) if row is not None]
            return encode_delete(present) if present else None

        await to_thread(self._write, ws, write, lambda t: t.delete(ids))

    def _write(self, ws: str, make_frame, apply) -> None:
        """Holding the workspace and caught up: ``make_frame(table)`` (a frame's pieces) → append → fsync,
        with ``apply(table)`` run meanwhile in a helper thread (see ``log_append.py``).

        A call that raises has not happened: its frame is truncated off, and a table that
        ``apply`` had begun to change is rebuilt from the files.
        """
        state = self._state(ws)
        with self._writing(ws, state):
            frame = make_frame(state.table)
            if frame is None:
                return
            path = self._dir(ws) / log_name(state.generation)
            start = state.offset
            applying = []
            try:
                append_frame(path, start, frame, lambda: (applying.append(True), apply(state.table)))
            except BaseException:
                if applying:
                    state.needs_reload = True  # the table may be changed, the log not: rebuild it from the files
                raise
            state.offset, state.tail, state.wrote = start + sum(map(len, frame)), (start, bytes(frame[0][:FRAME_HEADER])), True
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

    async def _close(self) -> None:
        await to_thread(self.wait_for_compaction)
        with self._states_lock:
            states = list(self._states.items())
            self._states.clear()
        for ws, state in states:
            await to_thread(self._compact_at_close, ws, state)
            if state.table.index is not None:
                await to_thread(self._checkpoint_index, ws, state)
            for f in (state.lock_file, state.log_file):
                if f is not None:
                    f.close()

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


def _valid_id(name: str) -> bool:
    try:
        validate_workspace_id(name)
    except InvalidWorkspaceIdError:
        return False
    return True
