"""A compaction leaves the frames written while it ran where they are: the next generation's log is
the same file, and meta.json says where its frames start.

What a user checks: no write is lost or copied, readers and followers racing compactions read
every acknowledged write, the dead bytes are given back to the disk, and where the file system
refuses hard links or holes the store still works.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.local_compaction import before_copy, check, make, published, small_files, store, write  # noqa: F401 - fixtures
from vecbook import LocalVectorStore, VectorNode
from vecbook.stores.local import compaction
from vecbook.stores.local.files import FORMAT, log_name


def log_of(folder: Path) -> Path:
    return folder / log_name(published(folder)["generation"])


def compact_while_writing(store: LocalVectorStore, expected: dict[str, VectorNode], before_copy, first: int) -> None:
    """Insert until a background compaction publishes, with two inserts made while it writes its snapshot."""
    folder = store._dir("ws")
    generation = published(folder)["generation"]
    during = iter(range(2))

    def write_more(*args):
        if next(during, None) is not None:
            more = [make(i) for i in range(first + 1000 + 10 * len(expected), first + 1010 + 10 * len(expected))]
            store.insert(more, "ws")
            expected.update((n.unique_id, n) for n in more)
            write_more()

    before_copy(write_more)
    start = first
    while published(folder)["generation"] == generation:
        write(store, expected, [make(i) for i in range(start, start + 40)])
        start += 40
    before_copy(None)


def test_frames_written_during_a_background_compaction_stay_where_they_are_and_none_is_lost(tmp_path, store, before_copy, monkeypatch):
    """The next generation's log is the same file under a second name, its frames starting where the
    snapshot stops: the frames written while the snapshot was written are not copied. A reader that
    was open before follows the writer across the change."""
    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    write(store, expected, [make(i) for i in range(40)])
    reader = LocalVectorStore(store_dir=tmp_path)
    assert reader.count("ws") == 40
    inode = log_of(folder).stat().st_ino

    def no_copy(*args):
        raise AssertionError("a frame was copied")

    monkeypatch.setattr(compaction, "copy_log", no_copy)
    compact_while_writing(store, expected, before_copy, 40)
    meta = published(folder)
    assert meta["format"] == FORMAT and meta["log_start"] > 0
    assert log_of(folder).stat().st_ino == inode and log_of(folder).stat().st_nlink == 1  # the old name is gone
    assert reader.count("ws") == len(expected)
    write(store, expected, [make(5000)])  # appended after the frames left in place
    assert reader.count("ws") == len(expected)
    reader.close()
    store.close()
    check(folder, expected)


def test_the_bytes_before_the_previous_generation_s_start_are_given_back_and_repair_skips_them(tmp_path, store, before_copy):
    """After two such compactions the log's first bytes are a hole (they read as zeros), and a
    repair that lost meta.json starts at the first frame after them: nothing is lost."""
    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    write(store, expected, [make(i) for i in range(40)])
    compact_while_writing(store, expected, before_copy, 100)
    first_start = published(folder)["log_start"]
    compact_while_writing(store, expected, before_copy, 10_000)
    log = log_of(folder)
    assert published(folder)["log_start"] > first_start > 0
    data = log.read_bytes()
    assert data[:first_start] == bytes(first_start)  # freed: a hole on a file system that can punch one
    assert data[first_start : first_start + 4] == b"VBL1"  # the previous generation's frames, already in the snapshot
    check(folder, expected)
    (folder / "meta.json").unlink()  # lost while the log holds a hole, dead frames and this generation's
    repairer = LocalVectorStore(store_dir=tmp_path)
    report = repairer.repair("ws")
    assert report["repaired"] and report["skipped_log_bytes"] == 0
    repairer.close()
    check(folder, expected)  # every node, as written


def test_where_holes_cannot_be_punched_the_dead_bytes_stay_until_close_and_nothing_is_lost(tmp_path, store, before_copy, monkeypatch):
    from vecbook.stores.local import files

    monkeypatch.setattr(files, "_fallocate", lambda: None)  # not Linux, say
    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    write(store, expected, [make(i) for i in range(40)])
    compact_while_writing(store, expected, before_copy, 100)
    compact_while_writing(store, expected, before_copy, 10_000)
    assert log_of(folder).read_bytes()[:4] == b"VBL1"  # the first frame is still there
    store.close()
    assert published(folder)["log_start"] == 0 and log_of(folder).stat().st_size == 0  # closing started a new log
    check(folder, expected)


def test_without_hard_links_the_frames_after_the_snapshot_are_copied_into_a_new_log(tmp_path, store, before_copy, monkeypatch):
    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    write(store, expected, [make(i) for i in range(40)])
    inode = log_of(folder).stat().st_ino

    def no_links(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("os.link", no_links)
    compact_while_writing(store, expected, before_copy, 40)
    assert published(folder)["log_start"] == 0 and log_of(folder).stat().st_ino != inode
    assert log_of(folder).stat().st_size > 0  # the frames written during the compaction
    store.close()
    check(folder, expected)


def test_a_reader_whose_log_was_freed_while_it_opened_reads_the_newer_generation(tmp_path, store, before_copy, monkeypatch):
    """A reader slow enough that two compactions publish between its reading meta.json and its
    reading the log finds zeros where frames were: it starts again (reading the log once more
    by its name, it finds it gone), it does not report damage."""
    from vecbook.stores.local import catchup

    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    write(store, expected, [make(i) for i in range(40)])
    compact_while_writing(store, expected, before_copy, 100)
    real, calls = catchup.CatchUp._read_generation, []

    def slow(self, where, meta):
        opened = real(self, where, meta)
        if not calls:
            calls.append(meta["generation"])
            compact_while_writing(store, expected, before_copy, 10_000)
            compact_while_writing(store, expected, before_copy, 20_000)
        return opened

    monkeypatch.setattr(catchup.CatchUp, "_read_generation", slow)
    reader = LocalVectorStore(store_dir=tmp_path)
    assert reader.count("ws") == len(expected)
    assert calls and published(folder)["generation"] >= calls[0] + 2
    reader.close()


def test_a_follower_that_checked_meta_json_before_two_compactions_rebuilds_instead_of_missing_writes(tmp_path, before_copy, small_files):
    """A follower reads new frames from the log it holds open once meta.json showed no change. If two
    compactions publish in between, the bytes it reads were freed: it must rebuild, not take the
    zeros for a torn tail and miss acknowledged writes."""
    folder = tmp_path / "ws"
    expected: dict[str, VectorNode] = {}
    with LocalVectorStore(store_dir=tmp_path) as first:
        first.create_workspace("ws")
        write(first, expected, [make(i) for i in range(40)])  # closing compacts: an empty log
    writer, follower = LocalVectorStore(store_dir=tmp_path), LocalVectorStore(store_dir=tmp_path)
    assert follower.count("ws") == 40 and published(folder)["log_start"] == 0
    compact_while_writing(writer, expected, before_copy, 100)
    compact_while_writing(writer, expected, before_copy, 10_000)
    state = follower._loaded_state("ws")
    with state.lock:
        assert follower._caught_up(state) is False  # as if meta.json had been checked before both
    assert follower.count("ws") == len(expected)
    writer.close()
    follower.close()


def test_the_log_is_copied_by_the_kernel_and_a_cut_source_is_damage(tmp_path, monkeypatch):
    """``copy_log`` appends with ``copy_file_range`` (a target opened with O_APPEND made it fail with
    EBADF on every call, and the fallback through 8 MB buffers ran at 135 MB/s); a source shorter
    than the range asked for is reported, not copied short."""
    from vecbook.errors import CorruptedFileError
    from vecbook.stores.local import files

    source, target = tmp_path / "log-1", tmp_path / "log-2.tmp"
    source.write_bytes(bytes(range(256)) * 4096)
    target.write_bytes(b"head")
    calls, refused = [], []
    real = os.copy_file_range

    def copy_file_range(*args):
        calls.append(args)
        try:
            return real(*args)
        except OSError as exc:
            refused.append(exc)
            raise

    monkeypatch.setattr(os, "copy_file_range", copy_file_range)
    assert files.copy_log(source, 1000, 900_000, target, durable=True) == 4 + 899_000
    assert target.read_bytes() == b"head" + source.read_bytes()[1000:900_000]
    assert calls and not refused
    with pytest.raises(CorruptedFileError, match="ended before offset"):
        files.copy_log(source, 0, source.stat().st_size + 1, target)


@pytest.mark.parametrize("data", [b"", bytes(9), b"VBL1", bytes(7) + b"\x01", bytes(8) + b"ab" + bytes(3), bytes(20) + b"\xff"])
def test_a_repair_without_meta_json_finds_the_first_byte_after_the_hole_across_chunks(data):
    from vecbook.stores.local.repair import _first_nonzero

    assert _first_nonzero(data, step=4) == _first_nonzero(data) == len(data) - len(data.lstrip(b"\0"))
