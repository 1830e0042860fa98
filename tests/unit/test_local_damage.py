"""The local backend's damaged files: log frames, snapshots, meta.json (issue 13; docs/reliability.md lists them).

Each test flips, cuts or removes bytes a user's disk could lose and checks what the user
would check: the error and the file it names, the nodes left, what ``repair`` keeps.
Longer injections run in ``tests/reliability/test_local_faults.py``; failures, locks and
other processes are in ``test_local_reliability.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.local_files import (
    DIMS,
    compacted,
    flip,
    frame_bounds,
    frames_of_ten,
    ids,
    node,
    vec,
)
from vecbook import (
    CorruptedFileError,
    LocalVectorStore,
)
from vecbook.__main__ import main
from vecbook.stores import local
from vecbook.stores.local.files import FORMAT

# ---- 1: a damaged log frame that is not the tail --------------------------------------------------


def test_a_flipped_bit_in_an_early_frame_is_reported_not_hidden(tmp_path):
    frames_of_ten(tmp_path)
    log = tmp_path / "ws" / "log-000000.bin"
    start, _ = frame_bounds(log)[10]
    flip(log, start + 40)  # inside frame 10's payload; frames 11..99 are intact
    damaged = log.read_bytes()
    with pytest.raises(CorruptedFileError) as err:
        LocalVectorStore(store_dir=tmp_path).count("ws")
    assert err.value.path == str(log) and err.value.offset == start
    assert f"offset {start}" in str(err.value) and "repair" in str(err.value)
    with pytest.raises(CorruptedFileError):  # a writer neither truncates nor appends past it
        LocalVectorStore(store_dir=tmp_path).insert(node(5000), "ws")
    assert log.read_bytes() == damaged


def test_a_bad_last_frame_is_a_torn_tail_and_is_dropped(tmp_path):
    frames_of_ten(tmp_path, frames=20)
    log = tmp_path / "ws" / "log-000000.bin"
    flip(log, log.stat().st_size - 5)  # the last frame fails its checksum, nothing after it
    s = LocalVectorStore(store_dir=tmp_path)
    assert s.count("ws") == 190
    s.insert(node(9999), "ws")
    assert LocalVectorStore(store_dir=tmp_path).count("ws") == 191


def test_repair_keeps_every_intact_frame_and_a_copy_of_the_damaged_log(tmp_path):
    frames_of_ten(tmp_path)
    log = tmp_path / "ws" / "log-000000.bin"
    start, end = frame_bounds(log)[10]
    flip(log, start + 40)
    damaged = log.read_bytes()
    report = LocalVectorStore(store_dir=tmp_path).repair("ws")
    assert report["repaired"] and report["nodes"] == 990 and report["skipped_log_bytes"] == end - start
    assert any(f"bytes {start}-{end}" in p for p in report["problems"])
    assert (Path(report["backup"]) / "log-000000.bin").read_bytes() == damaged
    s = LocalVectorStore(store_dir=tmp_path)
    assert ids(s) == {f"n{i}" for i in range(1000)} - {f"n{i}" for i in range(100, 110)}
    got = s.get("n555", "ws")[0]
    assert got.vector.tobytes() == vec(555).tobytes() and got.metadata == {"i": 555, "p": "n"}
    s.insert(node(5000), "ws")
    assert LocalVectorStore(store_dir=tmp_path).repair("ws")["repaired"] is False
    assert LocalVectorStore(store_dir=tmp_path).count("ws") == 991


def test_repair_from_the_command_line(tmp_path, capsys):
    frames_of_ten(tmp_path, frames=30)
    log = tmp_path / "ws" / "log-000000.bin"
    flip(log, 200)
    assert main(["repair", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ws: repaired, 290 nodes kept" in out and ".damaged" in out
    assert main(["repair", str(tmp_path), "ws", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["repaired"] is False
    assert main(["repair", str(tmp_path), "nope"]) == 1


# ---- 2: snapshots carry checksums -------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".f32", ".json"])
def test_a_flipped_bit_anywhere_in_a_snapshot_is_reported(tmp_path, suffix):
    folder = compacted(tmp_path, n=500)
    snap = folder / f"snap-000001{suffix}"
    good = snap.read_bytes()
    rng = np.random.default_rng(7)
    for offset in rng.integers(0, len(good), 25).tolist():
        flip(snap, offset, int(rng.integers(0, 8)))
        with pytest.raises(CorruptedFileError) as err:
            LocalVectorStore(store_dir=tmp_path).count("ws")
        assert err.value.path == str(snap)
        snap.write_bytes(good)
    assert LocalVectorStore(store_dir=tmp_path).count("ws") == 500


def test_repair_keeps_the_rows_of_intact_snapshot_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(local, "SNAPSHOT_CHUNK_BYTES", 64 * 1024)  # 1,024 vectors of 16 floats per checksum
    folder = compacted(tmp_path, n=3000, in_log=5)
    flip(folder / "snap-000001.f32", 64 * 1024 + 100)  # in rows 1024..2047
    report = LocalVectorStore(store_dir=tmp_path).repair("ws")
    assert report["repaired"] and report["lost_nodes"] == 1024 and len(report["lost_ids"]) == 1024
    assert set(report["lost_ids"]) == {f"n{i}" for i in range(1024, 2048)}
    s = LocalVectorStore(store_dir=tmp_path)
    assert ids(s) == {f"n{i}" for i in range(3005)} - set(report["lost_ids"])
    assert s.get("n2999", "ws")[0].vector.tobytes() == vec(2999).tobytes()


def test_a_store_of_format_1_still_opens_and_moves_to_the_current_format(tmp_path, monkeypatch):
    folder = tmp_path / "ws"
    folder.mkdir()
    (folder / "LOCK").touch()
    rows = [node(i) for i in range(50)]
    columns = {"dimensions": DIMS, "ids": [n.unique_id for n in rows], "contents": [n.content for n in rows], "metadatas": [n.metadata for n in rows]}
    (folder / "snap-000001.json").write_text(json.dumps(columns))
    (folder / "snap-000001.f32").write_bytes(np.stack([n.vector for n in rows]).astype("<f4").tobytes())
    (folder / "log-000001.bin").write_bytes(b"")
    (folder / "meta.json").write_text(json.dumps({"format": 1, "id": "abc", "generation": 1, "dimensions": DIMS}))
    s = LocalVectorStore(store_dir=tmp_path)
    assert ids(s) == {f"n{i}" for i in range(50)}
    monkeypatch.setattr(local, "MIN_COMPACT_BYTES", 0)
    s.insert([node(i) for i in range(50, 100)], "ws")
    s.wait_for_compaction()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["format"] == FORMAT and meta["generation"] == 2
    assert ids(LocalVectorStore(store_dir=tmp_path)) == {f"n{i}" for i in range(100)}


def test_a_store_of_format_2_reads_its_log_from_the_start_and_an_older_vecbook_refuses_format_3(tmp_path, monkeypatch):
    """Format 2 (before meta.json said where the log starts) opens as before: its frames start at 0.
    A format-3 meta.json names its format, so an older vecbook refuses it instead of reading a freed
    prefix of zeros as damage."""
    from vecbook.stores.local import files

    folder = compacted(tmp_path, n=300, in_log=7)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["format"] == FORMAT and meta["log_start"] == 0
    del meta["log_start"]
    meta["format"] = 2
    meta["crc"] = files._crc(meta)
    (folder / "meta.json").write_text(json.dumps(meta))
    s = LocalVectorStore(store_dir=tmp_path)
    assert ids(s) == {f"n{i}" for i in range(307)}
    monkeypatch.setattr(local, "MIN_COMPACT_BYTES", 0)
    s.insert([node(i) for i in range(307, 900)], "ws")
    s.wait_for_compaction()
    s.close()
    assert json.loads((folder / "meta.json").read_text())["format"] == FORMAT
    assert ids(LocalVectorStore(store_dir=tmp_path)) == {f"n{i}" for i in range(900)}
    monkeypatch.setattr(files, "_KEYS", {k: v for k, v in files._KEYS.items() if k < 3})  # an older vecbook
    with pytest.raises(CorruptedFileError, match=f"unknown format {FORMAT}"):
        LocalVectorStore(store_dir=tmp_path).count("ws")


def test_a_log_shorter_than_where_meta_json_says_its_frames_start_is_damage(tmp_path):
    from vecbook.stores.local import files

    folder = compacted(tmp_path, n=300, in_log=3)
    meta = json.loads((folder / "meta.json").read_text())
    size = (folder / "log-000001.bin").stat().st_size
    meta["log_start"] = size + 12
    meta["crc"] = files._crc(meta)
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CorruptedFileError, match=f"{size} bytes long, but .* start at offset {size + 12}") as err:
        LocalVectorStore(store_dir=tmp_path).count("ws")
    assert err.value.path == str(folder / "log-000001.bin")
    report = LocalVectorStore(store_dir=tmp_path).repair("ws")
    assert report["repaired"] and any("start at offset" in problem for problem in report["problems"])
    assert LocalVectorStore(store_dir=tmp_path).count("ws") == 300  # the snapshot's rows; the 3 in the log are lost


# ---- 6: meta.json and logs damaged or missing ------------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        lambda t: t.replace('"generation"', '"generatinn"'),
        lambda t: t.replace('"id"', '"hd"'),
        lambda t: t.replace('"generation": 0', '"generation": "0"'),
        lambda t: t.replace('"generation": 0', '"generation": -1'),
        lambda t: t.replace('"dimensions": 16', '"dimensions": 17'),
        lambda t: "[1]",
        lambda t: "null",
        lambda t: t[: len(t) // 2],
    ],
    ids=["key-flip", "id-flip", "string", "negative", "dims", "list", "null", "truncated"],
)
def test_a_damaged_meta_json_is_reported_naming_it(tmp_path, damage):
    s = LocalVectorStore(store_dir=tmp_path)
    s.create_workspace("ws", dimensions=DIMS)
    s.insert(node(1), "ws")
    meta = tmp_path / "ws" / "meta.json"
    meta.write_text(damage(meta.read_text()))
    with pytest.raises(CorruptedFileError) as err:
        LocalVectorStore(store_dir=tmp_path).count("ws")
    assert err.value.path == str(meta)


def test_a_deleted_meta_json_does_not_make_the_workspace_vanish(tmp_path):
    s = LocalVectorStore(store_dir=tmp_path)
    s.create_workspace("ws")
    s.insert([node(i) for i in range(20)], "ws")
    (tmp_path / "ws" / "meta.json").unlink()
    fresh = LocalVectorStore(store_dir=tmp_path)
    assert fresh.list_workspaces() == ["ws"] and fresh.exist_workspace("ws")
    for store in (s, fresh):  # open in RAM or not
        with pytest.raises(CorruptedFileError, match="meta.json is missing") as err:
            store.count("ws")
        assert err.value.path == str(tmp_path / "ws" / "meta.json")
    assert fresh.create_workspace("ws") is False  # nothing is overwritten
    report = fresh.repair("ws")
    assert report["repaired"] and report["nodes"] == 20
    assert LocalVectorStore(store_dir=tmp_path).count("ws") == 20


def test_a_deleted_log_is_reported_naming_it(tmp_path):
    folder = compacted(tmp_path, n=100, in_log=3)
    (folder / "log-000001.bin").unlink()
    with pytest.raises(CorruptedFileError) as err:
        LocalVectorStore(store_dir=tmp_path).count("ws")
    assert err.value.path == str(folder / "log-000001.bin")
    report = LocalVectorStore(store_dir=tmp_path).repair("ws")
    assert report["repaired"] and report["nodes"] == 100  # the snapshot's; the log's 3 writes are gone


