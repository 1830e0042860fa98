"""Opening a local workspace and catching up with what other processes wrote (a LocalVectorStore part).

See ``store.py`` for the layout and the protocol; every byte read is verified, and a reader
never takes the file lock.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ...errors import (
    StoreCorruptedError,
    VecbookError,
    WorkspaceNotFoundError,
)
from .. import local as tunables
from ..engine.ann_files import load_index, read_checkpoint
from ..engine.matrix import FileMatrix
from ..engine.table import NodeTable
from ..engine.table_store import TableState
from . import locking
from .files import (
    META,
    damaged,
    holds_workspace,
    log_name,
    log_start,
    parse_meta,
    snap_name,
    storage_error,
    sweep,
)
from .logfile import FRAME_HEADER, LogDamage, scan_frames
from .snapshot import Verifier, open_snapshot
from .snapshot_read import read_legacy_snapshot
from .state import TableSnapshot, _LocalState

logger = logging.getLogger("vecbook.local")

_LOAD_ATTEMPTS = 1000  # opens that find meta.json moved on meanwhile before giving up (a compaction each)


class CatchUp:
    """The read side of :class:`~vecbook.stores.local.LocalVectorStore`: load a generation, replay its log, follow other writers."""


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
                table, snapshot_bytes, log_file, verifier = self._read_generation(folder, meta)
            except FileNotFoundError as exc:
                if self._meta_stat(folder) != meta_stat:
                    continue  # a compaction published a new generation and removed this one: read that
                raise damaged(exc.filename, f"{exc.filename} is missing, but {folder / META} names generation {generation}") from None
            loaded = table.n_rows  # before the log: the snapshot's rows, exactly
            extendable = bool(generation) and meta["format"] != 1
            table.frozen_rows = loaded if extendable else 0  # the log's rewrites of them move them (see _base)
            log_path, start = folder / log_name(generation), log_start(meta)
            log = self._read_log(log_file, log_path, start)
            if state.log_file is not None:
                state.log_file.close()
            state.log_file = log_file
            state.table, state.incarnation, state.generation, state.verifier = table, meta["id"], generation, verifier
            state.meta_stat, state.snapshot_bytes, state.offset, state.log_start, state.tail = meta_stat, snapshot_bytes, start, start, None
            state.meta_path, state.log_path = os.fspath(folder / META), log_path
            state.needs_reload = True  # until the log is applied
            try:
                if self._index_spec is None:
                    self._apply_log(state, log, start, log_path)
                else:
                    self._load_indexed(folder, state, memoryview(log), start, log_path)
            except FileNotFoundError:
                continue  # compacted while we re-read the log (or freed what we read: see compaction.py)
            if state.offset < start + len(log) and self._meta_stat(folder) != meta_stat:
                continue  # the log ended in zeros or a torn frame, and may have been freed after we read meta.json
            state.needs_reload = False
            state.reuse = TableSnapshot(generation, table, loaded, meta["snapshot"]) if extendable else None
            return
        raise StoreCorruptedError(f"workspace {ws!r} kept changing while it was being opened ({_LOAD_ATTEMPTS} generations)")

    @staticmethod
    def _read_log(log_file, path: Path, start: int) -> bytes:
        """The log's bytes from ``start`` (where meta.json says its frames start) on; closes it and
        raises CorruptedFileError if it ends before ``start``."""
        size = os.fstat(log_file.fileno()).st_size
        if size < start:
            log_file.close()
            raise damaged(path, f"{path} is {size} bytes long, but {path.parent / META} says its frames start at offset {start}", size)
        log_file.seek(start)
        return log_file.read()

    def _read_generation(self, folder: Path, meta: dict) -> tuple[NodeTable, int, Any, Verifier | None]:
        """The table of a generation's snapshot, its size in bytes, its log (open) and the snapshot's verifier.

        The log is opened first and the snapshot files next: a compaction removes them
        only after publishing the next generation, and an open file (or map) stays
        readable. FileNotFoundError if one was already gone. The snapshot is mapped, not
        read (see ``snapshot.py``); one of at most ``VERIFY_AT_OPEN_BYTES`` of vectors is
        verified and decoded before this returns, a bigger one is verified in the background.
        """
        generation = meta["generation"]
        log = open(folder / log_name(generation), "rb", buffering=0)  # noqa: SIM115 - kept open by the state: see _caught_up
        try:
            table = NodeTable(meta["dimensions"], distance=self.distance, storage=FileMatrix(folder))  # indexed once filled, by _load_indexed
            snapshot_bytes, verifier = 0, None
            if generation > 0:
                prefix = folder / snap_name(generation)
                if meta["format"] == 1:
                    batch = read_legacy_snapshot(prefix)
                    table.upsert(batch)
                else:
                    vectors, rows, verifier, sq_norms = open_snapshot(prefix, meta["snapshot"], meta["dimensions"], table.storage)
                    table.load_rows(vectors, rows, sq_norms)
                    table.mark_dead(meta["snapshot"].get("dead", ()))
                    if vectors.nbytes <= tunables.VERIFY_AT_OPEN_BYTES:
                        verifier.wait()
                        table.decode_rows()  # small: damage shows at open
                snapshot_bytes = table.vectors.nbytes
        except BaseException:
            log.close()
            raise
        return table, snapshot_bytes, log, verifier

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

    def _load_indexed(self, folder: Path, state: _LocalState, log: memoryview, start: int, log_path: Path) -> None:
        """Replay the log (its frames from offset ``start``) into a table that has the snapshot,
        attaching the saved index where it fits.

        The log up to the saved index's offset is applied to the table alone; the
        index is then attached (or built from the table) and the rest of the log
        goes into both.
        """
        prefix = folder / snap_name(state.generation)
        table = state.table
        checkpoint = read_checkpoint(prefix, state.generation, self.distance, self._index_spec)
        end = start + len(log)
        stop = checkpoint["log_offset"] if checkpoint and start <= checkpoint["log_offset"] <= end else end
        self._apply_log(state, log[: stop - start], start, log_path, reread=False)
        saved = None
        if checkpoint is not None and state.offset == checkpoint["log_offset"]:
            saved = load_index(prefix, checkpoint, table.n_rows, table.dimensions, self._index_spec)
        table.attach_index(self._index_spec, saved)
        state.index_offset = state.offset if saved is not None else None
        self._apply_log(state, log[state.offset - start :], state.offset, log_path)

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
        if state.table.dimensions and len(data) > FRAME_HEADER:  # room for every row the frames can hold: one copy
            state.table.reserve(state.table.n_rows + len(data) // (4 * state.table.dimensions))
        for frame in scan_frames(data, base):
            if frame.batch is not None:
                state.table.upsert(frame.batch)
            else:
                state.table.delete(frame.deleted)
            state.offset = frame.end
            state.tail = (frame.start, bytes(data[frame.start - base : frame.start - base + FRAME_HEADER]))

    def _refresh(self, ws: str, state: TableState) -> None:
        """Apply what other processes wrote since we last looked (called under state.lock)."""
        assert isinstance(state, _LocalState)
        with self._disk(ws):
            if state.needs_reload:
                self._load(ws, state)
                self._check_snapshot(state)
                return
            self._check_snapshot(state)
            try:
                st = os.stat(state.meta_path)  # a path kept from the load: no Path objects per read
            except FileNotFoundError:
                self._meta_missing(ws, self._dir(ws))
                self._load(ws, state)
                return
            if (st.st_ino, st.st_mtime_ns, st.st_size) != state.meta_stat or not self._caught_up(state):
                self._load(ws, state)

    @staticmethod
    def _check_snapshot(state: _LocalState) -> None:
        """Raise the damage the snapshot's verifier found, if any (it never waits)."""
        if state.verifier is not None:
            state.verifier.check()

    def _caught_up(self, state: _LocalState) -> bool:
        """Apply the log's new frames; False if the state must be rebuilt (its last frame was taken back,
        or a compaction published since meta.json was checked and may have freed what was read).

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
            data, start = f.read(), state.offset
            try:
                self._apply_log(state, data, start, state.log_path)
            except FileNotFoundError:
                return False  # compacted since meta.json was checked (and what we read freed: see compaction.py)
            if state.offset < start + len(data) and self._meta_stat(Path(state.meta_path).parent) != state.meta_stat:
                return False
        return True

    @staticmethod
    def _tail_intact(f, state: _LocalState) -> bool:
        if state.tail is None:
            return True
        start, header = state.tail
        return os.pread(f.fileno(), len(header), start) == header
