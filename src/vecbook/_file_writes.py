"""Writing big buffers to files a megabyte at a time.

On recent Linux kernels a single ``write`` of several megabytes asks the page cache for
large folios of that size (up to 2 MB). Where free memory is fragmented, as it soon is
after a bulk load has filled gigabytes of page cache, each such allocation waits for the
kernel to compact memory: 512 MB written 4 or 16 MB per call took 116-175 MB/s here, the
same bytes 512 KB-1.5 MB per call 3.7-4.9 GB/s (fresh files on ext4, kernel 6.18; the slow
case is intermittent and grows likelier with the page cache in use). So every bulk write
of vecbook (stores, dumps, the map's layout files) goes through :func:`write_all`.
"""

from __future__ import annotations

import os

__all__ = ["PIECE", "write_all"]

PIECE = 1 << 20  # bytes per system call


def write_all(fd: int, data: bytes | bytearray | memoryview, offset: int | None = None) -> None:
    """Write every byte of ``data`` to ``fd``, at ``offset`` (``pwrite``) or else at the file's
    position, at most :data:`PIECE` bytes per system call."""
    with memoryview(data) as whole, whole.cast("B") as view:
        done = 0
        while done < len(view):
            with view[done : done + PIECE] as piece:
                wrote = os.write(fd, piece) if offset is None else os.pwrite(fd, piece, offset + done)
            done += wrote
