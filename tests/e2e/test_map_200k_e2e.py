"""The explorer's map on a 200,000-point workspace in real JupyterLab and Debian's chromium.

The workspace is built here in a few seconds: a ``local`` store, pre-embedded
64-d clustered vectors (no model runs; queries use the hashing model). Every
websocket frame is recorded in both directions. After the map shows: three
searches typed in the panel, then a mouse click on the map still lists
neighbours; a lasso drawn with the mouse fills the selection; ``select()`` from Python
redraws the plot (also over a mouse lasso); no frame after the initial load is
over 1 MB. A filtered search (its excluded points drawn faint) and a colour change
each send one binary buffer (16 bytes a point) to the browser and nothing back; another
search with the same filter sends nothing big. A reload of the page redraws the map as it was.
Then UMAP shows its fitted sample first, then every point.
Screenshots go to artifacts/e2e/.
"""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from .conftest import ARTIFACTS, missing_requirement
from .labkit import (
    CANVAS_SUM,
    DRAWN_PIXELS,
    FIG,
    NotebookDriver,
    canvas_box,
    chromium,
    click_at,
    drawn_point_near_centre,
    lab_server,
    lasso,
    wait_drawn,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

N = 200_000
DIMS = 64
MB = 1 << 20
QUERIES = ["fast http client", "vector search server", "plot data tool"]
UMAP_SAMPLE = 5_000  # UMAP fits this many, then places the rest: its sample is drawn first
# JavaScript: wait (up to 300 s) until the map's status holds ``text``, then count the drawn pixels
# (DRAWN_PIXELS, passed as its source) on every animation frame for as long as it does.
WHILE_SAMPLE_SHOWN = """async ([sel, drawnSource, text]) => {
    const drawn = new Function('return ' + drawnSource)();
    const shown = () => document.querySelector('.vecbook-map-status').innerText.includes(text);
    const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
    const deadline = Date.now() + 300000;
    while (!shown() && Date.now() < deadline) await frame();
    const counts = [];
    while (shown() && counts.length < 3000) { counts.push(drawn(sel)); await frame(); }
    return counts;
}"""

def build_workspace(store_dir: str, n: int = N, dims: int = DIMS) -> None:
    """``n`` nodes in workspace "big": 40 clusters, topic/rank/cluster metadata, vectors given (no model)."""
    import vecbook
    from vecbook import HashEmbeddingModel, VectorNode

    rng = np.random.default_rng(0)
    words = "fast python client library tool async http plot server parser data web cloud test db ui model vector search".split()
    topics = ["ai", "web", "data", "cli", "cloud", "test", "db", "ui"]
    centres = rng.normal(size=(40, dims)).astype(np.float32)
    cluster = rng.integers(0, 40, n)
    vectors = centres[cluster] + 0.5 * rng.normal(size=(n, dims)).astype(np.float32)
    picks = rng.integers(0, len(words), size=(n, 6))
    store = vecbook.LocalVectorStore(embedding_model=HashEmbeddingModel(dimensions=dims), store_dir=store_dir)
    try:
        store.create_workspace("big", dimensions=dims)
        for start in range(0, n, 50_000):
            store.insert([VectorNode(unique_id=f"p{i:07d}", content=" ".join(words[j] for j in picks[i]),
                                     metadata={"topic": topics[cluster[i] % 8], "rank": int(i), "cluster": int(cluster[i])},
                                     vector=vectors[i]) for i in range(start, min(n, start + 50_000))], "big")
    finally:
        store.close()


def notebook_cells(store_dir: str, dims: int = DIMS, max_points: int = 250_000) -> list[str]:
    return [f"""\
from vecbook import HashEmbeddingModel, LocalVectorStore
from vecbook.widgets import explore
store = LocalVectorStore(embedding_model=HashEmbeddingModel(dimensions={dims}), store_dir={store_dir!r})
ex = explore(store, "big", top_k=10, max_points={max_points}, umap_params={{"sample_size": {UMAP_SAMPLE}}})
ex"""]


def search(page, query: str) -> None:
    before = page.inner_text(".vecbook-results") if page.locator(".vecbook-results").count() else ""
    page.fill(".vecbook-query input", query)
    page.press(".vecbook-query input", "Enter")
    page.wait_for_function("(b) => { const t = document.querySelector('.vecbook-results'); return t && t.innerText !== b && t.querySelectorAll('tbody tr').length === 10; }",
                           arg=before, timeout=60_000)
    page.wait_for_function("() => document.querySelector('.vecbook-map-status').innerText.includes('10 highlighted')", timeout=30_000)


def _wait_for_points_buffer(page, nb: NotebookDriver, since: float) -> None:
    deadline = time.monotonic() + 60
    while not any(f.size > 15 * N and not f.sent for f in nb.frames_since(since)):  # the new points buffer arrived
        assert time.monotonic() < deadline, "no new points buffer"
        page.wait_for_timeout(100)  # lets Playwright deliver the recorded frames


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    reason = missing_requirement()
    if reason:
        pytest.skip(reason)
    store_dir = str(tmp_path_factory.mktemp("store200k") / "store")
    build_workspace(store_dir)
    return store_dir


def test_map_at_200k_points(workspace, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with lab_server(tmp_path / "run", "map200k.ipynb", notebook_cells(workspace), ARTIFACTS / "jupyterlab-200k.log") as lab, \
            chromium() as browser:
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        shot = lambda name: page.screenshot(path=str(ARTIFACTS / f"map200k-{name}.png"))
        errors: list[str] = []
        page.on("console", lambda m: errors.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
        nb = NotebookDriver(page, lab)
        nb.record()
        try:
            _drive(page, nb, shot)
        except BaseException:
            shot("failure")
            raise
        finally:
            sizes = sorted(((f.size, "sent" if f.sent else "received", f.head[:60]) for f in nb.frames), reverse=True)
            (ARTIFACTS / "map200k-console-errors.txt").write_text("\n".join(errors))
            (ARTIFACTS / "map200k-frames.txt").write_text("\n".join(f"{s}\t{d}\t{h!r}" for s, d, h in sizes))


def _drive(page, nb: NotebookDriver, shot) -> None:
    nb.open()
    first = page.locator(".jp-Notebook .jp-Cell").first.locator(".cm-content")
    first.click()
    page.keyboard.press("Shift+Enter")
    wait_drawn(page, 180)
    page.wait_for_function("() => (document.querySelector('.vecbook-map-status') || {innerText: ''}).innerText.includes('200,000 points')",
                           timeout=60_000)
    page.locator(".vecbook-explorer").scroll_into_view_if_needed()
    time.sleep(1.0)
    loaded = time.monotonic()  # the initial load ends here: every frame after it is an interaction
    shot("01-loaded")

    for query in QUERIES:
        search(page, query)
    shot("02-three-searches")

    canvas_box(page)
    wait_drawn(page, 30)
    target = drawn_point_near_centre(page)
    assert target is not None
    click_at(page, target["x"], target["y"])
    page.wait_for_function("() => document.querySelectorAll('.vecbook-neighbours tbody tr').length === 10", timeout=30_000)
    clicked = re.search(r"Nearest neighbours of\s+(\S+)", page.inner_text(".vecbook-neighbours-box")).group(1)
    assert nb.value("ex.map.state.clicked") == clicked
    shot("03-click-neighbours")

    box = canvas_box(page)
    before_lasso = page.evaluate(CANVAS_SUM, FIG)
    lasso(page, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, min(box["width"], box["height"]) / 4)
    page.wait_for_function("""() => { const m = /Selected on the map: ([\\d,]+) point/.exec(document.querySelector('.vecbook-explorer-selection').innerText);
                                      return m !== null && Number(m[1].replace(/,/g, '')) > 1; }""", timeout=30_000)
    text = page.inner_text(".vecbook-explorer-selection")
    n_selected = int(re.search(r"Selected on the map: ([\d,]+) point", text).group(1).replace(",", ""))
    assert n_selected > 100 and nb.value("len(ex.map.state.selected)") == n_selected
    assert nb.value("ex.selection.shape[0]") == n_selected
    canvas_box(page)
    after_lasso = page.evaluate(CANVAS_SUM, FIG)
    assert after_lasso != before_lasso
    shot("04-lasso")

    # select() from Python, over the mouse lasso: the plot redraws (the old map kept the lasso).
    nb.run("ex.map.select(list(range(0, 200_000, 1000)))")
    page.wait_for_function("() => document.querySelector('.vecbook-map-status').innerText.includes('200 selected')", timeout=30_000)
    canvas_box(page)
    time.sleep(0.5)
    by_python = page.evaluate(CANVAS_SUM, FIG)
    assert by_python not in (after_lasso, before_lasso)
    shot("05-select-from-python")
    nb.run("ex.map.select([])")
    page.wait_for_function("() => !document.querySelector('.vecbook-map-status').innerText.includes('selected')", timeout=30_000)

    # Every frame after the initial load, both ways, is under 1 MB.
    after = nb.frames_since(loaded)
    biggest = max((f.size for f in after), default=0)
    assert biggest < MB, f"a websocket frame of {biggest:,} bytes after the initial load"
    assert all(f.size < MB for f in after if f.sent)

    # A filtered search: the points the filter excluded are drawn faint, which is one points buffer to
    # the browser (16 bytes a point: the renderer keeps per-point looks in it); another search that keeps
    # the same points sends nothing big, and nothing big comes back.
    t = time.monotonic()
    page.fill(".vecbook-filter-text input", '{"topic": "web"}')
    page.press(".vecbook-filter-text input", "Enter")
    search(page, "http server")
    page.wait_for_function("() => document.querySelector('.vecbook-map-status').innerText.includes('filter keeps')", timeout=30_000)
    _wait_for_points_buffer(page, nb, t)
    filtered = nb.frames_since(t)
    assert max((f.size for f in filtered if f.sent), default=0) < 64 * 1024
    assert max(f.size for f in filtered if not f.sent) < 16 * N + 64 * 1024
    shot("05b-filtered-search")
    t = time.monotonic()
    search(page, "python parser")
    page.wait_for_timeout(1000)
    assert max(f.size for f in nb.frames_since(t)) < MB

    # A colour change: one binary buffer to the browser (16 bytes a point), nothing big back.
    t = time.monotonic()
    page.locator(".vecbook-color-by select").select_option("topic")
    _wait_for_points_buffer(page, nb, t)
    page.wait_for_function("() => document.querySelector('.vecbook-figure').innerText.includes('cloud')", timeout=30_000)
    page.wait_for_timeout(1000)
    colour = nb.frames_since(t)
    assert max((f.size for f in colour if f.sent), default=0) < 64 * 1024
    assert max(f.size for f in colour if not f.sent) < 16 * N + 64 * 1024
    shot("06-colour-legend")

    # A reload redraws the map as it was: colour, highlight and status from the kernel's models.
    nb.save()
    page.reload()
    page.wait_for_selector(".jp-Notebook", timeout=90_000)
    wait_drawn(page, 120)
    page.wait_for_function("() => document.querySelector('.vecbook-map-status').innerText.includes('10 highlighted')", timeout=60_000)
    assert "cloud" in page.inner_text(FIG)  # the legend of the colour is back
    page.locator(".vecbook-explorer").scroll_into_view_if_needed()
    shot("07-after-reload")

    # UMAP in two steps: its fitted sample (UMAP_SAMPLE points) is drawn as soon as it is laid out, the
    # other points hidden, then every point once they are placed.
    # The sample's stage can be short on a fast machine: the page itself counts the drawn pixels on
    # every animation frame while the status says the fitted sample is shown.
    status = "document.querySelector('.vecbook-map-status').innerText"
    canvas_box(page)  # in view through both stages
    page.locator(".vecbook-projection button", has_text="UMAP").click()
    sample_frames = page.evaluate(WHILE_SAMPLE_SHOWN, [FIG, DRAWN_PIXELS, f"{UMAP_SAMPLE:,} fitted points shown"])
    shot("08-umap-sample-or-after")
    page.wait_for_function(f"() => {status}.includes('UMAP 2-D') && !{status}.includes('fitted')", timeout=300_000)
    canvas_box(page)
    time.sleep(1.0)
    whole_pixels = page.evaluate(DRAWN_PIXELS, FIG)
    shot("09-umap-whole")
    # Seen here: 9 frames, the PCA layout moving away (~2,400 pixels), then the sample alone (181) against
    # 265 for every point (a layout of tight clumps); unplaced points left visible would draw thousands.
    drawn = [n for n in sample_frames if n > 0]
    assert drawn and min(drawn) < 0.8 * whole_pixels, (sample_frames[:20], len(sample_frames), whole_pixels)
