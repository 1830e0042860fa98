"""Where a NodeTable's float32 matrix lives: anonymous RAM (``memory``) or a scratch file (``local``).

A table's matrix grows as rows are appended. :class:`RamMatrix` allocates a bigger
array and copies the used rows into it (so it grows 16-fold while small: see
:meth:`RamMatrix.capacity`). :class:`FileMatrix` keeps the matrix in an unlinked
scratch file mapped shared: its pages are page cache the kernel writes back and
evicts under pressure, not anonymous memory that can exhaust RAM (10M × 384
float32 is 15.4 GB), and growing is ``fallocate`` + a new map of the same file,
never a copy. The scratch is never durable state: it has no name (``O_TMPFILE``,
or unlinked right after creation), so nothing is left behind after ``kill -9``,
and its blocks are allocated before use (``posix_fallocate``), so a full disk is
an error at the growth, never a ``SIGBUS`` at a write to the map: the table then
holds its matrix in RAM, as before scratch files (so does a table of a folder this
process may not write).

A snapshot's vectors are mapped copy-on-write by :meth:`FileMatrix.map_file`. On Linux
they sit at the start of a reserved range of address space (:class:`_Region`), and
growing maps the scratch's pages right after them: the first write after a cold open
appends without copying the snapshot's rows (a 1M × 384 matrix took ~4 s to copy, 10M
~45 s). Rows rewritten in place become private pages of this process; the file is
never written.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import mmap
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..._file_writes import write_all
from ...errors import StorageError

__all__ = ["FileMatrix", "MatrixStorage", "RamMatrix"]

_MIN_CAPACITY = 1024
_NO_ROOM = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}  # errors of a scratch: use RAM
logger = logging.getLogger("vecbook.local")


def _quarter_of_ram() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name
        return 2 << 30


_ROOMY_BYTES = _quarter_of_ram()  # a RAM matrix smaller than this grows 16-fold


class _Region:
    """Reserved address space: a file's bytes mapped copy-on-write at its start, a scratch's pages after them.

    One contiguous range, so one numpy array spans both: rows of the file, then rows appended
    in the scratch, with no copy. The range is reserved (``PROT_NONE``, no memory committed)
    for ``reserve`` bytes; :meth:`extend` maps the scratch's pages into it. Unmapped with the
    last array over it (each array holds a ctypes buffer that holds the region).
    """

    _PAGE = mmap.PAGESIZE
    _MAP_FIXED, _MAP_NORESERVE, _PROT_NONE = 0x10, 0x4000, 0  # Linux's values on x86-64 and arm64 (not in Python's mmap module)
    _libc = None

    @classmethod
    def available(cls) -> bool:
        if sys.platform != "linux" or platform.machine() not in ("x86_64", "aarch64"):
            return False
        if cls._libc is None:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.mmap.restype = ctypes.c_void_p
            libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int64)
            libc.munmap.restype = ctypes.c_int
            libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
            cls._libc = libc
        return True

    def __init__(self, path: Path, nbytes: int, reserve: int):
        self.reserve = self.pages(max(reserve, nbytes))
        reserved = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | self._MAP_NORESERVE
        self.addr = self._mmap(None, self.reserve, self._PROT_NONE, reserved, -1)
        try:
            with open(path, "rb") as f:  # a private map may be written through a read-only descriptor
                self._mmap(self.addr, nbytes, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | self._MAP_FIXED, f.fileno())
        except BaseException:
            self._libc.munmap(self.addr, self.reserve)
            del self.addr  # unmapped: __del__ must not unmap what may be mapped there next
            raise
        self.file_end = self.mapped = self.pages(nbytes)  # the scratch's offset 0 is mapped at addr + file_end

    def extend(self, fd: int, nbytes: int) -> None:
        """Make the first ``nbytes`` usable: the scratch (``fd``, allocated far enough) mapped after the file."""
        need = self.pages(nbytes)
        if need > self.mapped:
            flags = mmap.MAP_SHARED | self._MAP_FIXED
            self._mmap(self.addr + self.mapped, need - self.mapped, mmap.PROT_READ | mmap.PROT_WRITE, flags, fd, self.mapped - self.file_end)
            self.mapped = need

    def array(self, rows: int, dims: int) -> np.ndarray:
        buffer = (ctypes.c_char * (rows * dims * 4)).from_address(self.addr)
        buffer.region = self  # the region lives as long as an array over it
        return np.frombuffer(buffer, dtype=np.float32).reshape(rows, dims)

    def _mmap(self, addr: int | None, length: int, prot: int, flags: int, fd: int, offset: int = 0) -> int:
        got = self._libc.mmap(addr, length, prot, flags, fd, offset)
        if got in (None, ctypes.c_void_p(-1).value):
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return got

    @classmethod
    def pages(cls, nbytes: int) -> int:
        """``nbytes`` rounded up to whole pages."""
        return -(-nbytes // cls._PAGE) * cls._PAGE

    def __del__(self) -> None:
        if hasattr(self, "addr"):
            self._libc.munmap(self.addr, self.reserve)


class MatrixStorage:
    """Allocates and grows a table's (capacity × dims) float32 matrix."""

    def capacity(self, rows: int, capacity: int, dims: int) -> int:
        """The capacity to grow to so that ``rows`` rows fit (now ``capacity``)."""
        raise NotImplementedError

    def empty(self, capacity: int, dims: int) -> np.ndarray:
        """A new matrix (contents undefined)."""
        raise NotImplementedError

    def grown(self, matrix: np.ndarray, used: int, capacity: int) -> np.ndarray:
        """``matrix`` (same width) with room for ``capacity`` rows, its first ``used`` rows kept."""
        new = self.empty(capacity, matrix.shape[1])
        self.put(new, 0, matrix[:used])
        return new

    def adopt(self, vectors: np.ndarray) -> np.ndarray:
        """A matrix with spare rows whose first rows are ``vectors`` (a bulk load into an empty table)."""
        n = len(vectors)
        matrix = self.empty(max(_MIN_CAPACITY, n + n // 4), vectors.shape[1])
        self.put(matrix, 0, vectors)
        return matrix

    def taken(self, matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """A new matrix holding just ``rows`` of ``matrix``, in order (compaction)."""
        new = self.empty(len(rows), matrix.shape[1])
        step = max(1, (8 << 20) // max(1, 4 * matrix.shape[1]))  # 8 MB at a time: no whole temporary copy
        for lo in range(0, len(rows), step):
            self.put(new, lo, np.take(matrix, rows[lo : lo + step], axis=0, mode="clip"))
        return new

    def put(self, matrix: np.ndarray, start: int, vectors: np.ndarray) -> None:
        """Write ``vectors`` into rows ``start``, ``start + 1``, ... of ``matrix`` (every row of a bulk write goes here)."""
        matrix[start : start + len(vectors)] = vectors


class RamMatrix(MatrixStorage):
    """Anonymous RAM: growing copies, so grow 16-fold while the matrix is under a quarter of RAM.

    Spare rows are pages never touched (the allocator maps large arrays lazily): they cost
    address space, not RAM, and a bulk load copies each row 1/15 of a time, not once as by
    doubling. Beyond a quarter of RAM, double.
    """

    def capacity(self, rows: int, capacity: int, dims: int) -> int:
        row_bytes = 4 * max(1, dims)
        return max(_MIN_CAPACITY, rows, 2 * capacity, min(16 * capacity, _ROOMY_BYTES // row_bytes))

    def empty(self, capacity: int, dims: int) -> np.ndarray:
        return np.empty((capacity, dims), dtype=np.float32)


class FileMatrix(MatrixStorage):
    """An unlinked scratch file in ``folder``, mapped shared: page cache, not anonymous RAM.

    Growing extends the file and maps it again: the rows stay where they are (an older
    map of the same file, still held by a view, sees the same pages). Grows by a
    quarter, since it costs no copy; every byte of capacity is allocated on disk.
    Compaction (``taken``) writes the kept rows to a new scratch; the old one goes with
    its last map. A forked child shares the map, so a child must not write through a
    parent's table (the local store's child drops them: ``_after_fork``).
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._fd: int | None = None
        self._current: np.ndarray | None = None  # the latest matrix mapped from self._fd (and self._region)
        self._region: _Region | None = None  # where self._current lies when it starts with a file's rows
        self._warned = False

    def map_file(self, path: Path, rows: int, dims: int) -> np.ndarray:
        """The ``rows`` × ``dims`` float32 rows of ``path`` (a snapshot's vectors, nothing before them),
        mapped copy-on-write: rows written here stay in this process, the file is never written.

        Growing this matrix appends the scratch's pages right after the file's, with no copy,
        where address space can be reserved (:class:`_Region`: Linux); elsewhere it copies once.
        """
        nbytes = rows * dims * 4
        if not nbytes:
            return np.zeros((rows, dims), dtype=np.float32)
        if not _Region.available():
            with open(path, "rb") as f:
                raw = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
            return np.frombuffer(raw, dtype=np.float32, count=rows * dims).reshape(rows, dims)
        region = _Region(path, nbytes, reserve=4 * nbytes + (64 << 20))
        matrix = region.array(rows, dims)
        self._close()
        self._region, self._current = region, matrix
        return matrix

    def capacity(self, rows: int, capacity: int, dims: int) -> int:
        return max(_MIN_CAPACITY, rows, capacity + capacity // 4)

    def empty(self, capacity: int, dims: int) -> np.ndarray:
        fd = self._scratch()
        if fd is None:  # a folder this process may not write (a read-only store): RAM it is
            return self._in_ram(capacity, dims)
        try:
            matrix = self._map(fd, capacity, dims)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in _NO_ROOM:
                raise
            return self._in_ram(capacity, dims)
        except BaseException:
            os.close(fd)
            raise
        self._close()
        self._fd, self._current = fd, matrix
        return matrix

    def grown(self, matrix: np.ndarray, used: int, capacity: int) -> np.ndarray:
        grown = None
        if matrix is self._current:  # else another matrix (a file's map on another system): copied below
            try:
                if self._region is not None:
                    grown = self._grown_in_region(capacity, matrix.shape[1])
                elif self._fd is not None:
                    grown = self._map(self._fd, capacity, matrix.shape[1])
            except OSError as exc:
                if exc.errno not in _NO_ROOM:
                    raise  # with _NO_ROOM: copied below, into RAM (see _in_ram)
        if grown is None:  # beyond the region's reserved space too: copied once into a scratch of its own
            return super().grown(matrix, used, capacity)
        self._current = grown
        return grown

    def put(self, matrix: np.ndarray, start: int, vectors: np.ndarray) -> None:
        """Rows in the scratch are written with ``pwrite``, not through the map.

        A first write through a shared map faults its pages in one by one (or, with large
        folios, zero-fills them by readahead): 1.3 ms per 1.5 MB on this machine's ext4,
        and 6–10 ms where the virtual machine backs fresh memory lazily, against 0.17 ms
        for ``pwrite`` (see docs/performance.md). The map sees the same page cache.
        Rows of a snapshot's file (copy-on-write) go through the map.
        """
        if matrix is not self._current or self._fd is None or not len(vectors) or not hasattr(os, "pwrite"):
            return super().put(matrix, start, vectors)
        row_bytes = matrix.shape[1] * 4
        file_end = self._region.file_end if self._region is not None else 0
        first = max(start, -(-file_end // row_bytes))  # the first row lying wholly in the scratch
        if first > start:
            super().put(matrix, start, vectors[: first - start])
        if first - start < len(vectors):
            data = np.ascontiguousarray(vectors[first - start :], dtype=np.float32)
            try:
                write_all(self._fd, memoryview(data).cast("B"), first * row_bytes - file_end)
            except OSError as exc:
                why = exc.strerror or str(exc)
                raise StorageError(self.folder, f"cannot write rows to the table's scratch file in {self.folder}: {why}", exc.errno) from exc

    def _grown_in_region(self, capacity: int, dims: int) -> np.ndarray | None:
        """The region's matrix with room for ``capacity`` rows (None if it cannot hold them)."""
        region, nbytes = self._region, capacity * dims * 4
        if nbytes > region.reserve:
            return None
        if self._fd is None:
            self._fd = self._scratch()
            if self._fd is None:  # a folder this process may not write
                raise OSError(errno.EACCES, f"no scratch file can be made in {self.folder}")
        scratch_bytes = region.pages(nbytes) - region.file_end
        if scratch_bytes > os.fstat(self._fd).st_size:
            _allocate(self._fd, scratch_bytes)
        region.extend(self._fd, nbytes)
        return region.array(capacity, dims)

    def _in_ram(self, capacity: int, dims: int) -> np.ndarray:
        """The fallback when the scratch cannot be had (a read-only folder, a full disk): RAM, as ``memory`` does.

        The table keeps working (reads, and writes the log still takes) as it did before scratch files.
        """
        if not self._warned:
            self._warned = True
            logger.warning("no room for a scratch file in %s: this table's vectors are held in RAM", self.folder)
        self._close()
        return RamMatrix.empty(self, capacity, dims)

    def _scratch(self) -> int | None:
        flags = os.O_RDWR | getattr(os, "O_CLOEXEC", 0)
        tmpfile = getattr(os, "O_TMPFILE", 0)
        if tmpfile:
            try:
                return os.open(self.folder, flags | tmpfile, 0o600)  # never has a name
            except OSError:
                pass  # a file system without O_TMPFILE, or a folder we may not write
        try:
            fd, name = tempfile.mkstemp(prefix=".scratch-", dir=self.folder)
        except OSError as exc:
            if exc.errno in _NO_ROOM:
                return None
            raise
        os.unlink(name)
        return fd

    @staticmethod
    def _map(fd: int, capacity: int, dims: int) -> np.ndarray:
        size = capacity * dims * 4
        if size == 0:
            return np.empty((capacity, dims), dtype=np.float32)
        if os.fstat(fd).st_size < size:
            _allocate(fd, size)
        view = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        return np.frombuffer(view, dtype=np.float32).reshape(capacity, dims)  # the array keeps the map alive

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # maps still in use keep the file; it goes with the last of them
        self._fd, self._current, self._region = None, None, None

    def __del__(self) -> None:
        self._close()


def _allocate(fd: int, size: int) -> None:
    """Give the scratch ``size`` bytes of disk now: ENOSPC here, not SIGBUS at a write to its map."""
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, 0, size)
    else:
        os.ftruncate(fd, size)
