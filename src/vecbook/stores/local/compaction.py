"""Publishing a new generation of a local workspace (a LocalVectorStore part).

See ``store.py``: a background thread copies the table and writes a snapshot with no lock
held, then publishes it under the lock; with an index, compaction stays in the writing call.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ...dumps import fsync_dir
from ...errors import (
    StoreCorruptedError,
    VecbookError,
    WorkspaceNotFoundError,
)
from .. import local as tunables
from . import locking
from ..engine.ann_files import index_files, save_index
from .files import (
    META,
    copy_log,
    free_prefix,
    log_name,
    remove_temp,
    snap_name,
    storage_error,
    temp_prefix,
    write_durably,
    write_meta,
)
from .snapshot import publish_snapshot
from .snapshot_files import SnapshotBase, snapshot_base, write_snapshot_from
from .state import TableSnapshot, _LocalState

logger = logging.getLogger("vecbook.local")


def _release(lock) -> None:
    locking.release(lock)
    lock.close()


class _Renumbered(Exception):
    """The table was renumbered or reloaded during a background compaction's copy: give up."""



def keeps_holes(dead: int, rows: int) -> bool:
    """Whether a snapshot of a table of ``rows`` rows, ``dead`` of them deleted, keeps the dead rows
    as holes (listed in ``meta.json``) instead of dropping them and renumbering the rest.

    A hole costs its row's bytes on disk until a compaction drops it; dropping one renumbers
    every row after it, so the snapshot's files are written again whole (1.5 GB of vectors
    per million rows of 384 dimensions) instead of extended. Up to a sixteenth of the rows
    (and at most ``SNAPSHOT_HOLES_MAX``) stay holes: the bytes they waste are bounded, and
    the whole rewrite comes at most once per that many deletes.
    """
    return dead <= min(rows // 16, tunables.SNAPSHOT_HOLES_MAX)


class Compaction:
    """The compaction side of :class:`~vecbook.stores.local.LocalVectorStore`."""


    def _maybe_compact(self, ws: str, state: _LocalState) -> None:
        """Start a compaction if the log outgrew the snapshot (and no failed one is backing off)."""
        if state.offset - state.log_start <= max(tunables.MIN_COMPACT_BYTES, state.snapshot_bytes) or state.compactor is not None:
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
        copied = self._fuzzy_copy(ws, state)
        if copied is None:
            return False  # rows renumbered or reloaded meanwhile: a later write tries again
        generation, incarnation, start, columns, n, sq_norms, base, taken, dead = copied
        table, layout = taken[0], taken[1]
        published = False
        try:
            chunks = self._vector_chunks(state, table, layout, np.arange(base.rows if base is not None else 0, n))
            info = write_snapshot_from(temp, columns, chunks, table.dimensions, base, sq_norms, dead=dead)
            with self._writing(ws, state):
                if (state.generation, state.incarnation) != (generation, incarnation):
                    return False  # another process published meanwhile, or the workspace was re-created
                self._publish(ws, state, temp, start, info, taken)
            published = True
            return True
        except _Renumbered:
            return False
        except FileNotFoundError:
            if base is not None and self._meta_stat(folder) != state.meta_stat:
                return False  # another process published and removed the snapshot we copied from
            raise
        finally:
            if not published:
                self._give_back(state, taken)
            remove_temp(temp)
            self._done_with(base)

    def _fuzzy_copy(self, ws: str, state: _LocalState) -> tuple | None:
        """Take the table's rows in chunks, holding the lock per chunk only, plus the log offset to replay from.

        Every row not written after that offset stays as it was during the copy;
        a row written after it may be copied in any state (its vector even in another
        state than its metadata: see :meth:`_vector_chunks`), since replaying the log
        from the offset (upserts and deletes are idempotent) overwrites it. Rows are
        only ever appended, so a chunk's row numbers stay valid unless the table is
        renumbered (``layout``) or reloaded: then give up. Rows the published snapshot
        already holds unchanged (see :meth:`_base`) are not taken: the snapshot's bytes are.

        Dead rows are copied as holes. If :func:`keeps_holes` says there are too many, the
        table drops them first (renumbering the rows after the first one, under the lock).

        Returns (generation, incarnation, offset, (ids, contents, metadatas), row count,
        squared norms of every row, base, taken, holes), where ``taken`` is what :meth:`_publish`
        and :meth:`_give_back` need and ``holes`` the dead rows copied.
        """
        with state.lock:
            self._refresh(ws, state)
            table, generation, incarnation, start = state.table, state.generation, state.incarnation, state.offset
            if not keeps_holes(table.dead_count, table.n_rows):
                table.compact()
            layout, n = table.layout, table.n_rows
            floor = table.take_changed_floor()  # from here on, rows rewritten in place are counted again
        taken = (table, layout, floor, n)
        base = None
        try:
            with state.lock:
                base = self._base(ws, state, table, layout, floor, n)
                first = base.rows if base is not None else 0
                sq_norms = table.sq_norms(np.arange(n))  # a copy: rows written meanwhile are replayed over it
                dead = [table.dead_rows(0, first)]
            ids: list = []
            contents: list = []
            metadatas: list = []
            step = tunables.SNAPSHOT_CHUNK_ROWS
            for lo in range(first, n, step):
                with state.lock:
                    if state.table is not table or table.layout != layout:
                        self._give_back(state, taken)
                        self._done_with(base)
                        return None
                    hi = min(n, lo + step)
                    part = table.row_lists(np.arange(lo, hi))
                    dead.append(table.dead_rows(lo, hi))
                ids += part[0]
                contents += part[1]
                metadatas += part[2]
        except BaseException:
            self._give_back(state, taken)
            self._done_with(base)
            raise
        return generation, incarnation, start, (ids, contents, metadatas), n, sq_norms, base, taken, np.concatenate(dead)

    @staticmethod
    def _vector_chunks(state: _LocalState, table, layout: int, rows: np.ndarray) -> Iterator[np.ndarray]:
        """The vectors of ``rows``, a chunk per hold of the lock, each in the same buffer (written before the next)."""
        step = tunables.SNAPSHOT_CHUNK_ROWS
        buffer = np.empty((min(step, len(rows)), table.dimensions or 0), dtype=np.float32)
        for lo in range(0, len(rows), step):
            part = rows[lo : lo + step]
            with state.lock:
                if state.table is not table or table.layout != layout:
                    raise _Renumbered
                table.vectors_of(part, out=buffer[: len(part)])
            yield buffer[: len(part)]

    def _base(self, ws: str, state: _LocalState, table, layout: int, floor: int, n: int) -> SnapshotBase | None:
        """The published snapshot as the start of the next one, if it holds the table's first rows unchanged.

        It does if this state published it from this table (or opened the table from it),
        no row of it was rewritten in place or renumbered before ``floor`` was taken (a row
        deleted since stays in its files, a hole the next snapshot lists)
        (``floor`` is above them: a compaction of dead rows after them, written and deleted
        since, keeps them), and the table was not renumbered since (``layout``, taken with it).
        """
        known = state.reuse
        if known is None or known.generation != state.generation or known.table is not table or table.layout != layout:
            return None
        if floor < known.rows:
            return None
        base = snapshot_base(self._dir(ws) / snap_name(state.generation), known.info, n, table.dimensions)
        if base is not None:
            base.hold = self._extend_lock(ws, state)
        return base if base is not None and base.hold is not None else None

    def _extend_lock(self, ws: str, state: _LocalState):
        """The workspace's ``EXTEND`` lock, held, if no other writer holds it and the published generation
        is still the state's (None otherwise): only its holder may write past the end of the published
        snapshot's vector file, and only while that snapshot is the published one."""
        path = self._dir(ws) / "EXTEND"
        try:
            lock = locking.open_lock(path)
        except OSError:
            return None  # a folder we may not write: a compaction would fail anyway
        if locking.try_acquire(lock) and self._meta_stat(self._dir(ws)) == state.meta_stat:
            return lock
        _release(lock)
        return None

    @staticmethod
    def _done_with(base: SnapshotBase | None) -> None:
        if base is not None:
            _release(base.hold)

    @staticmethod
    def _give_back(state: _LocalState, taken: tuple) -> None:
        """A compaction that publishes nothing: the rows it saw changed still count as changed."""
        table, _, floor, _ = taken
        with state.lock:
            table.changed_floor = min(table.changed_floor, floor)

    def _compact_now(self, ws: str, state: _LocalState) -> None:
        """Publish generation g+1 right here, under both locks: rows of RAM and snapshot stay the same.

        With more dead rows than :func:`keeps_holes` allows, the snapshot is written from the
        live rows, and the table then drops its dead rows onto that file: its matrix becomes the
        new snapshot's vectors, mapped as after an open, instead of a copy in a new scratch file
        (1.5 GB written once more per million rows).
        """
        table = state.table
        drop = table.dead_count > 0 and not keeps_holes(table.dead_count, table.n_rows)
        floor = table.take_changed_floor()
        rows = table.live_rows() if drop else np.arange(table.n_rows)
        if drop:
            floor = min(floor, int(table.dead_rows()[0]))  # the rows from the first dead one are renumbered
        layout = table.layout
        taken = (table, layout, floor, len(rows))
        base = self._base(ws, state, table, layout, floor, len(rows))
        rows_after = rows[base.rows :] if base is not None else rows
        chunks = self._vector_chunks(state, table, layout, rows_after)  # the lock is ours already
        temp = temp_prefix(self._dir(ws))
        published = False
        try:
            info = write_snapshot_from(
                temp, table.row_lists(rows_after), chunks, table.dimensions, base, table.sq_norms(rows),
                dead=None if drop else table.dead_rows(),
            )
            if drop:  # a file of its own (not an extended one, which a later extension may cut back to its published size)
                table.compact(self._mapped(table, temp, len(rows)) if base is None else None)
                table.take_changed_floor()  # renumbered as the snapshot is: no change to it (a failure gives it back)
            self._publish(ws, state, temp, state.offset, info, taken)  # nothing to replay: a new, empty log
            published = True
        finally:
            if not published:
                self._give_back(state, taken)
            remove_temp(temp)
            self._done_with(base)

    @staticmethod
    def _mapped(table, prefix: Path, rows: int) -> np.ndarray | None:
        """The vectors of the snapshot just written at ``prefix``, mapped copy-on-write as an open maps
        them (None where the table's storage cannot: it copies instead)."""
        map_file = getattr(table.storage, "map_file", None)
        return map_file(prefix.with_suffix(".f32"), rows, table.dimensions) if map_file is not None and table.dimensions else None

    def _publish(self, ws: str, state: _LocalState, temp: Path, start: int, info: dict, taken: tuple) -> None:
        """Under both locks: snapshot files into place, the log of g+1, then meta.json; then the
        old generation's files go.

        The snapshot holds every frame before ``start``. Generation g+1 keeps appending to
        g's log file (a second name for it), its frames starting at ``start``: the frames
        written during a background compaction are not copied. The bytes before the previous
        generation's start, which no reader of g or g+1 reads, are given back to the disk
        (:func:`free_prefix`). With no frame after ``start``, g+1 starts a new, empty log.
        """
        folder = self._dir(ws)
        if state.verifier is not None:
            state.verifier.wait()  # never publish rows of a snapshot whose damage is not ruled out
        old, new = state.generation, state.generation + 1
        log_path, dead = folder / log_name(new), state.log_start
        publish_snapshot(temp, folder, new)
        start, offset, tail = self._next_log(state, folder / log_name(old), log_path, start)
        index_state = state.table.index_state()
        saved = index_state is not None and save_index(folder / snap_name(new), *index_state, generation=new, log_offset=offset)
        fsync_dir(folder)
        meta = {"id": state.incarnation, "generation": new, "dimensions": state.table.dimensions, "snapshot": info, "log_start": start}
        write_meta(folder, meta)
        meta_stat = os.stat(folder / META)
        log_file, state.log_file = state.log_file, open(log_path, "rb", buffering=0)  # noqa: SIM115 - the state's
        log_file.close()
        state.generation, state.offset, state.log_start, state.snapshot_bytes = new, offset, start, info["f32"]["size"]
        state.tail = tail
        table, _, _, rows = taken
        state.reuse = TableSnapshot(new, table, rows, info) if rows is not None else None
        table.frozen_rows = rows or 0  # its rows stay as they are, so the next snapshot may extend this one
        state.log_path = log_path
        state.index_offset = offset if saved else None
        state.meta_stat = (meta_stat.st_ino, meta_stat.st_mtime_ns, meta_stat.st_size)
        self._sweep(folder)  # the old generation's files, and any a killed compaction left
        state.swept = new
        if start and dead:
            free_prefix(log_path, dead)

    @staticmethod
    def _next_log(state: _LocalState, old_path: Path, path: Path, start: int) -> tuple[int, int, tuple | None]:
        """Make ``path`` the next generation's log (``old_path`` is the current one); returns where its
        frames start and end, and its last frame's (start, header) as in ``state.tail``."""
        path.unlink(missing_ok=True)  # left by a compaction killed before its meta.json
        if start == state.offset:
            write_durably(path, b"")
            return 0, 0, None
        try:
            os.link(old_path, path)
            return start, state.offset, state.tail
        except FileNotFoundError:
            raise
        except OSError as exc:  # a file system without hard links: copy the frames into a new log
            logger.debug("%s: no hard link (%s); copying the log's last %d bytes", path.parent, exc, state.offset - start)
            return 0, copy_log(old_path, start, state.offset, path, durable=True), None

    def wait_for_compaction(self) -> None:
        """Block until background compactions started by this store have finished (tests, benchmarks, exit)."""
        with self._states_lock:
            threads = [s.compactor for s in self._states.values() if s.compactor is not None]
        for thread in threads:
            thread.join()

    def _compact_at_close(self, ws: str, state: _LocalState) -> None:
        """Publish a generation if this process left a long log: the next open then replays none.

        A log of at least ``MIN_COMPACT_BYTES`` (a bulk load, say) would cost every later
        open its replay. Failures are logged like any compaction's: closing never fails.
        """
        if not state.wrote or state.offset - state.log_start < max(1, tunables.MIN_COMPACT_BYTES) or time.monotonic() < state.compact_retry_at:
            return
        try:
            with self._writing(ws, state):
                if state.offset - state.log_start >= max(1, tunables.MIN_COMPACT_BYTES):
                    self._compact_now(ws, state)
        except Exception as exc:  # noqa: BLE001 - every write is safe in the log
            self._compaction_failed(ws, state, exc)

    def _checkpoint_index(self, ws: str, state: _LocalState) -> None:
        """Save the index if it ran well ahead of the saved one, so the next open need not rebuild.

        A graph still mapped from its file stays that file: what is saved is the graph of the
        rows waiting beside it and the lists (``ann_files.py``), unless they go into it first
        (:meth:`TableIndex.folds_at_close`: at least ``FOLD_AT_CLOSE_WAITING`` wait beside a
        graph of at most ``FOLD_AT_CLOSE_BYTES``). Saved files this store could not use (made
        with other settings, or damaged) are replaced whatever the size, or every open would
        rebuild again.
        """
        behind = state.offset - state.index_offset if state.index_offset is not None else state.offset - state.log_start + state.snapshot_bytes
        unusable = state.index_offset is None and index_files(self._dir(ws) / snap_name(state.generation))[2].exists()
        folds = state.table.folds_at_close(tunables.FOLD_AT_CLOSE_BYTES, tunables.FOLD_AT_CLOSE_WAITING)
        if behind < tunables.CHECKPOINT_BYTES and not unusable and not folds:
            return
        try:
            with self._writing(ws, state):
                try:
                    state.table.fold_at_close(tunables.FOLD_AT_CLOSE_BYTES, tunables.FOLD_AT_CLOSE_WAITING)
                except Exception:  # noqa: BLE001 - the saved graph and what waits beside it stay as they are
                    logger.debug("workspace %r: the writes waiting beside the index stay there", ws, exc_info=True)
                    return
                index_state = state.table.index_state()
                if index_state is not None and self._dir(ws).is_dir():
                    prefix = self._dir(ws) / snap_name(state.generation)
                    if save_index(prefix, *index_state, generation=state.generation, log_offset=state.offset):
                        state.index_offset = state.offset
        except (OSError, WorkspaceNotFoundError, StoreCorruptedError):
            pass  # a cache: the next open rebuilds it
