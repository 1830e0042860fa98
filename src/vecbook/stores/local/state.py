"""What a LocalVectorStore holds per open workspace: the table and where it stands in the files."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from ..engine.table_store import TableState

__all__ = ["_LocalState", "TableSnapshot"]


@dataclass
class TableSnapshot:
    """The published snapshot of ``generation`` holds exactly the first ``rows`` rows of ``table``,
    as they were when ``table.changed_floor`` was last taken (renumbering them lowers it too).

    A compaction may then copy the snapshot's bytes for those rows instead of encoding them
    again, if none of them changed since (see ``compaction.py``).
    """

    generation: int
    table: Any
    rows: int
    info: dict


@dataclass
class _LocalState(TableState):
    incarnation: str = ""
    generation: int = 0
    offset: int = 0  # where the log's frames applied so far end
    log_start: int = 0  # where this generation's frames start in its log (see compaction.py)
    tail: tuple[int, bytes] | None = None  # (start, header) of the last frame applied: a rollback shows here
    meta_stat: tuple = ()
    meta_path: str = ""  # meta.json of the workspace, as a str (stat'ed before every read)
    log_path: Any = None  # the Path of this generation's log
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
    verifier: Any = None  # the snapshot's Verifier (snapshot.py), checking its sums in the background
    wrote: bool = False  # whether this process wrote to the workspace (then close compacts a long log)
    reuse: TableSnapshot | None = None  # what the published snapshot is of the table, if known

    def __post_init__(self) -> None:
        if self.write_lock is None:
            self.write_lock = threading.Lock()
