"""``python -m vecbook demo``: the terminal half of the README's main job."""

from vecbook.__main__ import main


def test_demo_builds_the_sample_and_searches(tmp_path, capsys):
    assert main(["demo", "--hash-model", "--store-dir", str(tmp_path), "--query", "http client", "--top-k", "3"]) == 0
    out = capsys.readouterr().out
    assert "3000 packages ready" in out
    assert out.count("3 results") == 2  # plain and filtered
    # a second run reopens the store instead of embedding again
    assert main(["demo", "--hash-model", "--store-dir", str(tmp_path), "--filter", '{"month": {"exists": false}}']) == 0
    assert "3000 packages ready" in capsys.readouterr().out
