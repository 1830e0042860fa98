"""The ``local`` backend: workspaces in plain files under a directory, no server.

The backend's tunables live here and are read at use time, so a test, a benchmark
or a script may change them on this package (``vecbook.stores.local.MIN_COMPACT_BYTES = 0``);
they are not part of the public API.

``MIN_COMPACT_BYTES``    a log is compacted into a new snapshot once it outgrows both this
                         and the snapshot's vectors
``CHECKPOINT_BYTES``     on close, save the ANN index if the log ran this far past the saved one
``FOLD_AT_CLOSE_BYTES``  on close, a mapped graph of at most this size takes in the writes waiting
                         beside it, if at least ``FOLD_AT_CLOSE_WAITING`` wait, and is saved
                         (see ``Compaction._checkpoint_index``)
``SNAPSHOT_CHUNK_ROWS``  rows copied per hold of the lock by a background compaction
``COMPACT_BACKOFF``      seconds before retrying a failed compaction (doubled per failure,
                         at most ``COMPACT_BACKOFF_MAX``)
``COMPACT_BACKOFF_MAX``  the longest wait between compaction attempts
``SNAPSHOT_CHUNK_BYTES`` bytes of a snapshot's vectors per checksum (``repair`` loses at most
                         the rows of a damaged chunk)
``SNAPSHOT_LINE_ROWS``   rows per line (and per checksum) of a snapshot's JSON
``SNAPSHOT_HOLES_MAX``   at most this many deleted rows (and a sixteenth of the rows) stay in a
                         snapshot as holes, listed in ``meta.json``, rather than renumbering the
                         rest (see ``compaction.keeps_holes``)
``VERIFY_AT_OPEN_BYTES`` a snapshot with at most this many bytes of vectors is verified (and
                         its rows decoded) before the open returns; a bigger one is verified
                         in a background thread (see ``snapshot.py``)
"""

MIN_COMPACT_BYTES = 8 << 20
CHECKPOINT_BYTES = 1 << 20
FOLD_AT_CLOSE_BYTES = 256 << 20  # copied into RAM and saved again in ~0.5 s here
FOLD_AT_CLOSE_WAITING = 1000  # fewer cost a search little (a second, small graph to ask: engine/table_index.py)
SNAPSHOT_CHUNK_ROWS = 8192
COMPACT_BACKOFF = 5.0
COMPACT_BACKOFF_MAX = 600.0
SNAPSHOT_CHUNK_BYTES = 16 << 20
SNAPSHOT_LINE_ROWS = 128  # a search result decodes the line of its row: keep lines short
SNAPSHOT_HOLES_MAX = 65_536  # 0.5 MB of row numbers in meta.json
VERIFY_AT_OPEN_BYTES = 16 << 20

from .store import LocalVectorStore

__all__ = ["LocalVectorStore"]
