"""LocalVectorStore: persistent workspaces in plain files, no server.

Layout of ``{store_dir}/{workspace_id}/``::

    meta.json        {"format", "id", "generation", "dimensions"}: the published state
    snap-<g>.json    ids, contents, metadata of generation g (absent for g = 0)
    snap-<g>.f32     their vectors, raw float32
    log-<g>.bin      writes since that snapshot: checksummed frames (see logfile.py)
    LOCK             flock()ed by a writer for the length of one write

Once open, a workspace lives in RAM (a NodeTable) and searches never touch the
disk beyond two ``stat`` calls that pick up other processes' writes. A write
takes the lock, catches up with the log, appends one frame, fsyncs it and only
then changes the table and returns: an acknowledged write survives ``kill -9``.
When the log outgrows the snapshot, a background thread of the writer's process
publishes a new generation without holding up writes: it copies the table (a
chunk per hold of the lock; see ``_fuzzy_copy``) from log offset ``o`` on and
writes that snapshot to temporary files with no lock held; then,
under the lock, it renames them into place, starts log ``g+1`` with the frames
written after ``o`` (by any process), fsyncs, and replaces ``meta.json``
atomically. Until that replace, generation ``g`` is complete on disk; after it,
``g+1`` is. A compaction that finds another process published first discards its files.
With an index, compaction stays in the writing call (the saved index must match
the snapshot's rows exactly).

With ``index="hnsw"`` each process keeps an approximate index in RAM, updated on
every write and log replay. The index is saved beside the snapshot
(``snap-<g>.hnsw`` etc., see ``ann.py``) with the log offset it reflects: by the
writer that publishes a snapshot, and on close by a store whose index ran ahead
of the saved one. It is a cache: on open it is used only if it matches
(generation, offset, rows, checksums), the log after that offset is replayed
into it, and otherwise it is rebuilt from the vectors.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...dumps import fsync_dir
from ..._aio import to_thread
from ...errors import StoreCorruptedError, WorkspaceNotFoundError
from ..engine.batch import NodeBatch, validate_workspace_id
from ..engine.ann import index_files, load_index, make_spec, read_checkpoint, save_index
from .files import abandoned, copy_log, log_name, remove_temp, snap_name, temp_prefix, write_meta
from .logfile import encode_delete, encode_upsert, read_snapshot, scan_frames, write_durably, write_snapshot
from ..engine.table_store import TableState, TableStore
from ..engine.table import NodeTable

try:
    import fcntl
except ImportError:  # Windows: writers in one process are still serialised by the thread lock
    fcntl = None

__all__ = ["LocalVectorStore"]

FORMAT = 1
MIN_COMPACT_BYTES = 8 << 20
CHECKPOINT_BYTES = 1 << 20  # on close, save the ANN index if the log ran this far past the saved one
SNAPSHOT_CHUNK_ROWS = 8192  # rows copied per hold of the lock by a background compaction


@dataclass
class _LocalState(TableState):
    incarnation: str = ""
    generation: int = 0
    offset: int = 0  # bytes of the log already applied
    meta_stat: tuple = ()
    snapshot_bytes: int = 0
    lock_file: Any = None
    index_offset: int | None = None  # log offset of the saved index of this generation, if any
    compactor: threading.Thread | None = None  # a background compaction of this workspace, while it runs


class LocalVectorStore(TableStore):
    """Workspaces persisted under ``store_dir``: crash-safe, multi-process safe, searched in RAM.

    ``index="hnsw"`` / ``index_params``: an approximate index for unfiltered
    searches, as for :class:`MemoryVectorStore`, persisted beside the snapshots.
    """

    backend = "local"

    def __init__(
        self,
        embedding_model=None,
        store_dir: str | os.PathLike = "./local_vector_store",
        batch_size: int = 1024,
        index: str | None = None,
        index_params: dict | None = None,
        **kwargs: Any,
    ):
        super().__init__(embedding_model=embedding_model, batch_size=batch_size, **kwargs)
        self._index_spec = make_spec(index, index_params)
        self.store_dir = str(store_dir)
        self._root = Path(store_dir).resolve()
        self._root_str = str(self._root)
        self._root.mkdir(parents=True, exist_ok=True)
        self._states: dict[str, _LocalState] = {}
        self._states_lock = threading.RLock()  # _forget() may run while _state() holds it

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

    # ---- workspaces ---------------------------------------------------------------------

    async def _exists(self, ws: str) -> bool:
        return os.path.isfile(os.path.join(self._root_str, validate_workspace_id(ws), "meta.json"))

    async def _known(self, ws: str) -> bool:
        # A workspace open in RAM needs no stat here: the hooks that follow stat meta.json
        # anyway and raise WorkspaceNotFoundError if another process deleted it.
        return self._loaded_state(ws) is not None or await self._exists(ws)

    async def _list(self) -> list[str]:
        def scan() -> list[str]:
            names = []
            for entry in os.scandir(self._root):
                if entry.is_dir() and not entry.name.startswith(".") and os.path.isfile(os.path.join(entry.path, "meta.json")):
                    names.append(entry.name)
            return names

        return await to_thread(scan)

    async def _create(self, ws: str, dimensions: int | None) -> None:
        await to_thread(self._create_files, ws, dimensions)

    def _create_files(self, ws: str, dimensions: int | None) -> None:
        target = self._dir(ws)
        tmp = self._root / f".tmp-{ws}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            (tmp / "LOCK").touch()
            write_durably(tmp / log_name(0), b"")
            write_meta(tmp, {"format": FORMAT, "id": uuid.uuid4().hex, "generation": 0, "dimensions": dimensions})
            fsync_dir(tmp)
            try:
                os.rename(tmp, target)  # atomic; fails if another process created it first
            except OSError:
                if not (target / "meta.json").is_file():
                    raise StoreCorruptedError(f"{target} exists but is not a vecbook workspace") from None
                return
            fsync_dir(self._root)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    async def _drop(self, ws: str) -> None:
        await to_thread(self._drop_files, ws)

    def _drop_files(self, ws: str) -> None:
        target = self._dir(ws)
        trash = self._root / f".trash-{ws}-{uuid.uuid4().hex[:8]}"
        with self._states_lock:
            state = self._states.pop(ws, None)
        try:
            os.rename(target, trash)
        except FileNotFoundError:
            return
        fsync_dir(self._root)
        shutil.rmtree(trash, ignore_errors=True)
        if state is not None and state.lock_file is not None:
            state.lock_file.close()

    # ---- opening and catching up ---------------------------------------------------------

    def _state(self, ws: str) -> _LocalState:
        with self._states_lock:
            state = self._states.get(ws)
            if state is None:
                state = _LocalState(self._new_table())
                with state.lock:
                    self._load(ws, state)
                self._states[ws] = state
            return state

    def _loaded_state(self, ws: str) -> _LocalState | None:
        with self._states_lock:
            return self._states.get(ws)

    def _forget(self, ws: str) -> WorkspaceNotFoundError:
        with self._states_lock:
            state = self._states.pop(ws, None)
        if state is not None and state.lock_file is not None:
            state.lock_file.close()
        return WorkspaceNotFoundError(ws)

    def _read_meta(self, ws: str) -> tuple[dict, tuple]:
        path = self._dir(ws) / "meta.json"
        try:
            st = os.stat(path)
            meta = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise self._forget(ws) from None
        except ValueError as exc:
            raise StoreCorruptedError(f"{path} is not valid JSON: {exc}") from exc
        if meta.get("format") != FORMAT:
            raise StoreCorruptedError(f"{path}: unsupported format {meta.get('format')!r}")
        return meta, (st.st_ino, st.st_mtime_ns, st.st_size)

    def _load(self, ws: str, state: _LocalState) -> None:
        """(Re)build the state from the published generation and its log."""
        for _ in range(5):  # a concurrent compaction may delete files under us: start again
            meta, meta_stat = self._read_meta(ws)
            folder = self._dir(ws)
            generation = meta["generation"]
            try:
                table = NodeTable(meta.get("dimensions"), distance=self.distance)  # indexed once filled, below
                snapshot_bytes = 0
                if generation > 0:
                    batch = read_snapshot(folder / snap_name(generation))
                    table.upsert(batch)
                    snapshot_bytes = batch.vectors.nbytes
                log = (folder / log_name(generation)).read_bytes()
            except FileNotFoundError:
                continue
            if state.lock_file is not None and state.incarnation != meta["id"]:
                state.lock_file.close()
                state.lock_file = None
            state.table, state.incarnation, state.generation = table, meta["id"], generation
            state.meta_stat, state.snapshot_bytes, state.offset = meta_stat, snapshot_bytes, 0
            if self._index_spec is None:
                self._apply_log(state, log, 0)
            else:
                self._load_indexed(folder, state, memoryview(log))
            return
        raise StoreCorruptedError(f"workspace {ws!r} kept changing while it was being opened")

    def _load_indexed(self, folder: Path, state: _LocalState, log: memoryview) -> None:
        """Replay the log into a table that has the snapshot, attaching the saved index where it fits.

        The log up to the saved index's offset is applied to the table alone; the
        index is then attached (or built from the table) and the rest of the log
        goes into both.
        """
        prefix = folder / snap_name(state.generation)
        table = state.table
        checkpoint = read_checkpoint(prefix, state.generation, self.distance, self._index_spec)
        stop = checkpoint["log_offset"] if checkpoint and checkpoint["log_offset"] <= len(log) else len(log)
        self._apply_log(state, log[:stop], 0)
        saved = None
        if checkpoint is not None and state.offset == checkpoint["log_offset"]:
            saved = load_index(prefix, checkpoint, table.n_rows, table.dimensions, self._index_spec)
        table.attach_index(self._index_spec, saved)
        state.index_offset = state.offset if saved is not None else None
        self._apply_log(state, log[state.offset :], state.offset)

    @staticmethod
    def _apply_log(state: _LocalState, data: bytes | memoryview, base: int) -> None:
        """Apply the intact frames of ``data``, which starts at log offset ``base``."""
        for frame in scan_frames(data):
            if frame.batch is not None:
                state.table.upsert(frame.batch)
            else:
                state.table.delete(frame.deleted)
            state.offset = base + frame.end

    def _refresh(self, ws: str, state: TableState) -> None:
        """Apply what other processes wrote since we last looked (called under state.lock)."""
        assert isinstance(state, _LocalState)
        folder = self._dir(ws)
        try:
            meta_stat = os.stat(folder / "meta.json")
        except FileNotFoundError:
            raise self._forget(ws) from None
        if (meta_stat.st_ino, meta_stat.st_mtime_ns, meta_stat.st_size) != state.meta_stat:
            self._load(ws, state)
            return
        log_path = folder / log_name(state.generation)
        try:
            size = os.stat(log_path).st_size
            if size > state.offset:
                with open(log_path, "rb") as f:
                    f.seek(state.offset)
                    tail = f.read(size - state.offset)
                self._apply_log(state, tail, state.offset)
        except FileNotFoundError:  # compacted meanwhile
            self._load(ws, state)

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
        """Under both locks and caught up: ``make_frame(table)`` → append + fsync → ``apply(table)``."""
        state = self._state(ws)
        with state.lock, self._file_lock(ws, state):
            frame = make_frame(state.table)
            if frame is None:
                return
            log_path = self._dir(ws) / log_name(state.generation)
            with open(log_path, "r+b") as log:
                log.truncate(state.offset)  # drop a torn tail left by a crashed writer
                log.seek(state.offset)
                log.write(frame)
                log.flush()
                os.fsync(log.fileno())
            apply(state.table)
            state.offset += len(frame)
            if state.offset > max(MIN_COMPACT_BYTES, state.snapshot_bytes) and state.compactor is None:
                if state.table.index is not None:
                    self._compact_now(ws, state)  # the saved index must match the snapshot's rows exactly
                else:
                    state.compactor = threading.Thread(target=self._compact, args=(ws, state), name=f"vecbook-compact-{ws}")
                    state.compactor.start()  # not a daemon: an exiting interpreter lets it finish

    @contextmanager
    def _file_lock(self, ws: str, state: _LocalState):
        """Hold the workspace's LOCK, caught up with every write published before we got it."""
        while True:
            if state.lock_file is None:
                try:
                    state.lock_file = open(self._dir(ws) / "LOCK", "a+b")
                except FileNotFoundError:
                    raise self._forget(ws) from None
            if fcntl is not None:
                fcntl.flock(state.lock_file.fileno(), fcntl.LOCK_EX)
            incarnation = state.incarnation
            try:
                self._refresh(ws, state)
            except BaseException:
                self._unlock(state)
                raise
            if state.incarnation == incarnation and state.lock_file is not None:
                break
            self._unlock(state)  # the workspace was deleted and re-created: lock the new one
        try:
            yield
        finally:
            self._unlock(state)

    @staticmethod
    def _unlock(state: _LocalState) -> None:
        if fcntl is not None and state.lock_file is not None:
            fcntl.flock(state.lock_file.fileno(), fcntl.LOCK_UN)

    def _compact(self, ws: str, state: _LocalState) -> None:
        """Publish generation g+1 from a background thread (see the module docstring)."""
        folder = self._dir(ws)
        temp = temp_prefix(folder)
        try:
            copied = self._fuzzy_copy(ws, state)
            if copied is None:
                return  # rows renumbered or reloaded meanwhile: a later write tries again
            generation, incarnation, start, batch = copied
            write_snapshot(temp, batch)
            with state.lock:
                copied_to = state.offset if state.generation == generation else start
            # Frames before copied_to are final (logs are only appended to): copy them unlocked.
            copy_log(folder / log_name(generation), start, copied_to, temp.with_suffix(".log"))
            with state.lock, self._file_lock(ws, state):
                if (state.generation, state.incarnation) != (generation, incarnation):
                    return  # another process published meanwhile, or the workspace was re-created
                self._publish(ws, state, temp, copied_to, batch)
        except (OSError, WorkspaceNotFoundError, StoreCorruptedError):
            pass  # generation g is intact: a later write tries again
        finally:
            remove_temp(temp)
            state.compactor = None

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
        for lo in range(0, max(n, 1), SNAPSHOT_CHUNK_ROWS):
            with state.lock:
                if state.table is not table or table.layout != layout:
                    return None
                parts.append(table.batch(table.live_rows(lo, min(n, lo + SNAPSHOT_CHUNK_ROWS))))
        return generation, incarnation, start, NodeBatch.concat(parts)

    def _compact_now(self, ws: str, state: _LocalState) -> None:
        """Publish generation g+1 right here, under both locks: rows of RAM and snapshot stay the same."""
        state.table.compact()
        batch = state.table.batch(state.table.live_rows())
        temp = temp_prefix(self._dir(ws))
        try:
            write_snapshot(temp, batch)
            self._publish(ws, state, temp, state.offset, batch)  # an empty log g+1
        finally:
            remove_temp(temp)

    def _publish(self, ws: str, state: _LocalState, temp: Path, copied_to: int, batch: NodeBatch) -> None:
        """Under both locks: snapshot files into place, log g+1 = ``temp.log`` + the frames since
        ``copied_to``, then meta.json."""
        folder = self._dir(ws)
        old, new = state.generation, state.generation + 1
        tail = copy_log(folder / log_name(old), copied_to, state.offset, temp.with_suffix(".log"), durable=True)
        os.replace(temp.with_suffix(".json"), folder / (snap_name(new) + ".json"))
        os.replace(temp.with_suffix(".f32"), folder / (snap_name(new) + ".f32"))
        os.replace(temp.with_suffix(".log"), folder / log_name(new))
        index_state = state.table.index_state()
        saved = index_state is not None and save_index(folder / snap_name(new), *index_state, generation=new, log_offset=tail)
        fsync_dir(folder)
        write_meta(folder, {"format": FORMAT, "id": state.incarnation, "generation": new, "dimensions": state.table.dimensions})
        meta_stat = os.stat(folder / "meta.json")
        state.generation, state.offset, state.snapshot_bytes = new, tail, batch.vectors.nbytes
        state.index_offset = tail if saved else None
        state.meta_stat = (meta_stat.st_ino, meta_stat.st_mtime_ns, meta_stat.st_size)
        stale = [folder / name for name in (log_name(old), snap_name(old) + ".json", snap_name(old) + ".f32")]
        for path in stale + index_files(folder / snap_name(old)):
            path.unlink(missing_ok=True)
        for leftover in folder.glob(".snap-*"):  # from compactions killed midway (ours is renamed by now)
            if abandoned(leftover):
                leftover.unlink(missing_ok=True)

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
            if state.lock_file is not None:
                state.lock_file.close()

    def _checkpoint_index(self, ws: str, state: _LocalState) -> None:
        """Save the index if it ran well ahead of the saved one, so the next open need not rebuild."""
        behind = state.offset - state.index_offset if state.index_offset is not None else state.offset + state.snapshot_bytes
        if behind < CHECKPOINT_BYTES:
            return
        try:
            with state.lock, self._file_lock(ws, state):
                index_state = state.table.index_state()
                if index_state is not None and self._dir(ws).is_dir():
                    prefix = self._dir(ws) / snap_name(state.generation)
                    if save_index(prefix, *index_state, generation=state.generation, log_offset=state.offset):
                        state.index_offset = state.offset
        except (OSError, WorkspaceNotFoundError, StoreCorruptedError):
            pass  # a cache: the next open rebuilds it
