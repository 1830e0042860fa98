"""The errors vecbook raises.

Every error is a :class:`VecbookError` and also the builtin a caller would
naturally catch, so ``except KeyError`` keeps working for a missing workspace::

    VecbookError (Exception)
    ├── WorkspaceNotFoundError (KeyError)     a workspace that does not exist
    ├── WorkspaceExistsError (ValueError)     a destination that already exists
    ├── InvalidWorkspaceIdError (ValueError)  an id that is not a safe name
    ├── ValidationError (ValueError)          bad nodes: ids, metadata, vectors
    │   └── DimensionMismatchError            a vector of the wrong length
    ├── FilterError (ValueError)              a filter that is malformed or unsupported
    ├── DumpFormatError (ValueError)          a dump file that cannot be read (names the line)
    │   └── DumpMismatchError                 a dump whose header names another model or vector length
    ├── DumpNotFoundError (FileNotFoundError) no dump file where one was expected
    ├── EmbeddingError (RuntimeError)         the embedding model failed
    │   └── RetryableEmbeddingError           a failure worth retrying (429, 5xx, timeout)
    ├── BackendUnavailableError (ConnectionError)  a server that does not answer
    ├── PartialWriteError (RuntimeError)      a write failed and could not be undone; lists the ids in doubt
    ├── MissingDependencyError (ImportError)  an optional extra is not installed
    ├── StoreClosedError (RuntimeError)       a store used after close()
    ├── StoreInUseError (RuntimeError)        an embedded engine's folder open in another process
    ├── StoreCorruptedError (RuntimeError)    on-disk data that cannot be trusted
    │   └── CorruptedFileError                names the damaged file (and offset)
    ├── StorageError (OSError)                the disk refused: full, read-only, permissions, I/O
    │   └── SymlinkError                      a symbolic link inside store_dir, which vecbook refuses
    ├── LockTimeoutError (TimeoutError)       a writer waited too long for another process's lock
    └── LayoutWorkerError (RuntimeError)      the map's UMAP process died or failed
        └── LayoutCancelledError              the UMAP was stopped (map closed, another layout chosen)
"""

from __future__ import annotations

__all__ = [
    "VecbookError",
    "WorkspaceNotFoundError",
    "WorkspaceExistsError",
    "InvalidWorkspaceIdError",
    "ValidationError",
    "DimensionMismatchError",
    "FilterError",
    "DumpFormatError",
    "DumpNotFoundError",
    "DumpMismatchError",
    "EmbeddingError",
    "RetryableEmbeddingError",
    "BackendUnavailableError",
    "PartialWriteError",
    "MissingDependencyError",
    "StoreClosedError",
    "StoreInUseError",
    "StoreCorruptedError",
    "CorruptedFileError",
    "StorageError",
    "SymlinkError",
    "LockTimeoutError",
    "LayoutWorkerError",
    "LayoutCancelledError",
]


class VecbookError(Exception):
    """Base class of every error vecbook raises on purpose."""


class WorkspaceNotFoundError(VecbookError, KeyError):
    """The workspace does not exist (vecbook never creates one implicitly)."""

    def __init__(self, workspace_id: str):
        self.workspace_id = workspace_id
        super().__init__(f"workspace {workspace_id!r} does not exist; create it with create_workspace()")

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return str(self.args[0])


class WorkspaceExistsError(VecbookError, ValueError):
    """The destination workspace already exists and would be overwritten."""

    def __init__(self, workspace_id: str, hint: str = ""):
        self.workspace_id = workspace_id
        super().__init__(f"workspace {workspace_id!r} already exists" + (f"; {hint}" if hint else ""))


class InvalidWorkspaceIdError(VecbookError, ValueError):
    """The workspace id is not a safe, portable name."""


class ValidationError(VecbookError, ValueError):
    """Nodes or arguments that cannot be stored as given. Nothing was written."""


class DimensionMismatchError(ValidationError):
    """A vector whose length differs from the workspace's dimension."""

    def __init__(self, expected: int, got: int, where: str = ""):
        self.expected = expected
        self.got = got
        at = f" ({where})" if where else ""
        super().__init__(f"vector has {got} dimensions, the workspace expects {expected}{at}")


class FilterError(VecbookError, ValueError):
    """A filter that is malformed, uses an unknown operator or mismatched types."""


class DumpFormatError(VecbookError, ValueError):
    """A dump file that cannot be read; the message names file and line."""


class DumpMismatchError(DumpFormatError):
    """A dump's header names an embedding model or vector length that differs from the store's
    (load with ``check_header=False`` to load it anyway)."""


class DumpNotFoundError(VecbookError, FileNotFoundError):
    """No dump file at the given path."""


class EmbeddingError(VecbookError, RuntimeError):
    """The embedding model failed; nothing that depended on it was written."""


class RetryableEmbeddingError(EmbeddingError):
    """A transient embedding failure (rate limit, server error, timeout, bad reply).

    ``retry_after`` is the delay the server asked for, in seconds, if it said.
    """

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class BackendUnavailableError(VecbookError, ConnectionError):
    """A backend server that cannot be reached; the message names host and port."""


class PartialWriteError(VecbookError, RuntimeError):
    """A write failed and putting back what it had changed failed too (e.g. the server went away).

    ``written_ids`` are the ids that may hold this call's writes: each is either as it
    was before the call or as the call wrote it. Every other id is untouched.
    """

    def __init__(self, message: str, written_ids: list[str]):
        super().__init__(f"{message} ({len(written_ids)} node(s) may hold this call's writes; see .written_ids)")
        self.written_ids = list(written_ids)


class MissingDependencyError(VecbookError, ImportError):
    """An optional extra is not installed; the message names the pip command."""

    def __init__(self, package: str, extra: str, feature: str = "", command: str | None = None):
        what = feature or package
        super().__init__(
            f"{what} needs the {package!r} package, which is not installed; "
            f"run: {command or f'pip install {chr(39)}vecbook[{extra}]{chr(39)}'}"
        )
        self.package = package
        self.extra = extra


class StoreClosedError(VecbookError, RuntimeError):
    """The store was closed; make a new one to go on."""


class StoreInUseError(VecbookError, RuntimeError):
    """An embedded engine's folder is open in another process (the message says what to use instead)."""


class StoreCorruptedError(VecbookError, RuntimeError):
    """On-disk data failed its integrity check in a way that cannot be repaired safely."""


class CorruptedFileError(StoreCorruptedError):
    """One file of a store is damaged: ``path`` names it, ``offset`` the first bad byte if known.

    Nothing was changed on disk; the message says how to recover what is readable.
    """

    def __init__(self, path: str, message: str, offset: int | None = None):
        super().__init__(message)
        self.path = str(path)
        self.offset = offset


class StorageError(VecbookError, OSError):
    """The file system refused a read or a write (disk full, read-only, permissions, I/O error).

    ``path`` (also ``filename``) names the file or folder, ``errno`` is the system's code.
    A write that raised this was not applied.
    """

    def __init__(self, path: str, message: str, errno: int | None = None):
        super().__init__(message)
        self.errno = errno
        self.strerror = message
        self.path = self.filename = str(path)

    def __str__(self) -> str:
        return str(self.args[0])


class SymlinkError(StorageError):
    """A symbolic link inside ``store_dir`` where vecbook expects a workspace folder.

    vecbook does not follow such links: renames, locks and deletes would act on the
    link, not on the data it points to. Move the data into ``store_dir`` instead.
    """


class LockTimeoutError(VecbookError, TimeoutError):
    """A write waited ``timeout`` seconds for a workspace lock held by another process.

    ``path`` is the lock file, ``pid`` the holder's process id if known. Nothing was written.
    """

    def __init__(self, path: str, timeout: float, pid: int | None = None):
        holder = f"process {pid}" if pid else "another process"
        super().__init__(
            f"waited {timeout:g} s for the lock {path}, held by {holder} (a long write, or a stopped "
            f"or hung process); nothing was written. Try again, or pass a larger lock_timeout="
        )
        self.path = self.filename = str(path)
        self.timeout = timeout
        self.pid = pid

    def __str__(self) -> str:
        return str(self.args[0])


class LayoutWorkerError(VecbookError, RuntimeError):
    """The process computing a map layout (UMAP) died or failed; the message says how."""


class LayoutCancelledError(LayoutWorkerError):
    """A map layout was stopped before it finished (the map closed, or another layout was chosen)."""
