"""Speed of the notebook explorer (vecbook.widgets), with the targets of issue 14.

    python bench/bench_widgets.py [--sizes 3000,50000,200000,1000000] [--dims 384] [--browser-umap]
                                  [--compare-plotly] [--umap-n 20000] [--search-n 100000] [--skip-umap] [--no-browser]
                                  [--stores DIR] [--js-profiles DIR]

1. The explorer in real JupyterLab + headless chromium (Debian's, software WebGL),
   one fresh server and kernel per size, on a ``local`` workspace of pre-embedded
   clustered vectors: map visible after the call; search -> highlight visible;
   click -> neighbours; lasso -> selection table and ``ex.selection`` DataFrame;
   colour change; with ``--browser-umap``, a cell's round trip while UMAP runs.
   ``--compare-plotly`` times plotly's FigureWidget (the map's former renderer);
   ``--js-profiles DIR`` keeps the page's CPU profile of the open, a search and a
   colour change at each size (Chrome DevTools' .cpuprofile) and prints where it went.
2. UMAP in a worker thread (MapState). 3. Search panel round trip.

Figures are wall-clock, from the Playwright side (what a user waits for), and
print the machine's load beside them: the machine is shared.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.e2e.labkit: the JupyterLab + chromium driver

import vecbook  # noqa: E402
from js_profile import js_profile  # noqa: E402
from vecbook import HashEmbeddingModel, VectorNode  # noqa: E402

DIMS = 384
results: list[tuple[str, str, str, str]] = []


def report(name: str, value: float, target: float | None, unit: str = "s") -> None:
    shown = f"{value * 1000:.0f} ms" if unit == "ms" else f"{value:.2f} s"
    goal = "" if target is None else (f"< {target * 1000:.0f} ms" if unit == "ms" else f"< {target:g} s")
    verdict = "" if target is None else ("ok" if value < target else "SLOW")
    results.append((name, shown, goal, verdict))
    print(f"  {name:<58} {shown:>10}  {goal:>9} {verdict}", flush=True)


def clustered(n: int, seed: int = 0, clusters: int = 30) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, DIMS)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.6 * rng.normal(size=(n, DIMS)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_store(n: int, seed: int = 0, workspace: str = "bench"):
    store = vecbook.MemoryVectorStore(embedding_model=HashEmbeddingModel(dimensions=DIMS))
    store.create_workspace(workspace, dimensions=DIMS)
    vectors = clustered(n, seed)
    topics = ["ai", "web", "data", "cli", "cloud", "test", "db", "ui"]
    words = ["fast", "python", "client", "library", "tool", "async", "http", "plot", "server", "parser"]
    rng = np.random.default_rng(seed + 1)
    for start in range(0, n, 20_000):
        store.insert([
            VectorNode(unique_id=f"node{i:07d}", content=" ".join(rng.choice(words, 6)),
                       metadata={"topic": topics[i % 8], "rank": i, "month": f"20{10 + i % 16}-{1 + i % 12:02d}"}, vector=vectors[i])
            for i in range(start, min(n, start + 20_000))
        ], workspace)
    return store


def bench_browser(sizes: list[int], dims: int, umap: bool, compare_plotly: bool, stores: str | None = None,
                  profiles: Path | None = None) -> None:
    """The explorer in real JupyterLab + headless chromium (software WebGL), one fresh server and kernel per size."""
    if not os.path.exists("/usr/bin/chromium"):
        print("  (no /usr/bin/chromium: browser figures skipped; scripts/e2e_setup.sh installs it)")
        return
    from tests.e2e.labkit import chromium, lab_server
    from tests.e2e.test_map_200k_e2e import build_workspace

    with chromium() as browser:
        for n in sizes:
            print(f"\n1. Explorer of {n:,} points x {dims} on local, in JupyterLab + headless chromium  (load {load()})")
            with tempfile.TemporaryDirectory() as tmp:
                store = Path(stores) / f"big-{n}x{dims}" if stores else Path(tmp) / "store"
                if not (store / "big").exists():  # built once per size with --stores (the bench only reads it)
                    t = time.perf_counter()
                    build_workspace(str(store), n=n, dims=dims)
                    print(f"  (workspace built in {time.perf_counter() - t:.1f} s)")
                cells = [f"""\
import time
cell_started, _t0 = time.time(), time.perf_counter()
from vecbook import HashEmbeddingModel, LocalVectorStore
from vecbook.widgets import explore
store = LocalVectorStore(embedding_model=HashEmbeddingModel(dimensions={dims}), store_dir={str(store)!r})
_t = time.perf_counter()
ex = explore(store, "big", top_k=10, max_points={max(n, 200_000)})
explore_s = time.perf_counter() - _t
imports_s, explore_returned = _t - _t0, time.time()
ex"""]
                with lab_server(Path(tmp) / "run", "bench.ipynb", cells, Path(tmp) / "lab.log") as lab, \
                        _notebook(browser, lab) as (page, nb):
                    _browser_round(page, nb, n, umap, profiles)
        if compare_plotly:
            bench_plotly(sizes, browser)


@contextlib.contextmanager
def _notebook(browser, lab):
    """The server's notebook open in a fresh browser context (empty cache: every size loads
    JupyterLab and the widget bundles as a first visit does), every comm frame recorded."""
    from tests.e2e.labkit import NotebookDriver

    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    try:
        page = context.new_page()
        nb = NotebookDriver(page, lab)
        nb.record()
        nb.open()
        yield page, nb
    finally:
        context.close()


def _until(page, js: str, arg=None, timeout: float = 120.0) -> float:
    t = time.perf_counter()
    page.wait_for_function(js, arg=arg, timeout=timeout * 1000, polling=20)
    return time.perf_counter() - t


@contextlib.contextmanager
def _profiled(page, profiles: Path | None, name: str):
    """With ``--js-profiles DIR``: the page's CPU profile of the block in DIR/name.cpuprofile, summed up after it."""
    if profiles is None:
        yield
        return
    with js_profile(page, profiles / f"{name}.cpuprofile") as summary:
        yield
    print(f"    page profile {name}: {summary.text}")


def _browser_round(page, nb, n: int, umap: bool, profiles: Path | None = None) -> None:
    from tests.e2e.labkit import CANVAS_CHANGES, DRAWN_PIXELS, FIG, canvas_box, drawn_point_near_centre, lasso, point_at

    page.locator(".jp-Notebook .jp-Cell").first.locator(".cm-content").click()
    with _profiled(page, profiles, f"{n}-open"):
        t, pressed = time.perf_counter(), time.time()
        page.keyboard.press("Shift+Enter")
        page.wait_for_function("(s) => document.querySelector(s) !== null", arg=FIG, timeout=300_000, polling=20)
        shown_at = time.time()
        shown = time.perf_counter() - t  # the explorer's view exists: the kernel answered, the points are on their way
        page.wait_for_function(f"(s) => ({DRAWN_PIXELS})(s) > 200", arg=FIG, timeout=300_000, polling=20)
        visible = time.perf_counter() - t
    report(f"{n:,}: map visible after the call (Shift+Enter -> points drawn)", visible, 3.0 if n >= 1_000_000 else 1.5 if n <= 3000 else None)
    report(f"{n:,}:   Shift+Enter -> the cell runs in the kernel", nb.value("cell_started") - pressed, None)
    report(f"{n:,}:   the cell's imports (vecbook, vecbook.widgets)", nb.value("imports_s"), None)
    report(f"{n:,}:   explore() in the kernel", nb.value("explore_s"), None)
    report(f"{n:,}:   explore() returned -> the map's view in the page", shown_at - nb.value("explore_returned"), None)
    report(f"{n:,}:   Shift+Enter -> the map's view in the page", shown, None)
    report(f"{n:,}:   the view -> points drawn (buffer, decode, WebGL)", visible - shown, None)
    report(f"{n:,}:   search panel's schema, read in a thread after explore() returned",
           nb.value("(ex.search.state.wait_schema(), ex.search.state.schema_elapsed)[1]"), None)
    page.locator(".vecbook-explorer").scroll_into_view_if_needed()
    window = 4000 + n // 200  # ms: long enough for a frame of a million points in software WebGL

    def watched(act, wait_done) -> tuple[float, float, int]:
        """Seconds until ``wait_done`` (the page's text) and until the map's canvas last changed, and how many times it did."""
        page.evaluate(f"() => {{ window.__changes = ({CANVAS_CHANGES})(['{FIG}', {window}]); return 1; }}")
        t = time.perf_counter()
        act()
        wait_done()
        text = time.perf_counter() - t
        changes = page.evaluate("() => window.__changes")  # waits for the window's end
        return text, (changes or [window])[-1] / 1000, len(changes)

    def median_report(name: str, runs: list[tuple[float, float, int]], text_name: str) -> None:
        frames = sorted({c for _, _, c in runs})
        report(f"{n:,}: {name} (median of {len(runs)}; canvas changes {'/'.join(map(str, frames))})",
               statistics.median(d for _, d, _ in runs), 0.3, unit="ms")
        report(f"{n:,}:   {text_name}", statistics.median(t for t, _, _ in runs), None, unit="ms")

    runs = []
    for q in ["fast http client", "vector search server", "plot data tool", "async parser library"]:
        before = page.inner_text(".vecbook-results") if page.locator(".vecbook-results").count() else ""
        page.fill(".vecbook-query input", q)
        runs.append(watched(lambda: page.press(".vecbook-query input", "Enter"), lambda: page.wait_for_function(
            """(b) => { const t = document.querySelector('.vecbook-results');
            return t && t.innerText !== b && document.querySelector('.vecbook-map-status').innerText.includes('10 highlighted'); }""",
            arg=before, timeout=60_000, polling=10)))
    median_report("search -> hits ringed and the rest dimmed on the map", runs, "the results table and the status line")
    if profiles is not None:  # one more, not timed: without the canvas watcher, whose reads of every frame would fill the profile
        page.fill(".vecbook-query input", "database driver")
        with _profiled(page, profiles, f"{n}-search"):
            page.press(".vecbook-query input", "Enter")
            page.wait_for_timeout(window)
    runs = []
    for i in range(3):
        canvas_box(page)
        target = drawn_point_near_centre(page, 40 * (i - 1), 30 * (i - 1))  # a different point each time
        old = page.inner_text(".vecbook-neighbours-box")
        point_at(page, target["x"], target["y"])  # the pointer on the point first, as a hand puts it (see labkit)
        runs.append(watched(lambda: (page.mouse.down(), page.mouse.up()), lambda: page.wait_for_function(
            """(o) => { const b = document.querySelector('.vecbook-neighbours-box');
            return b.innerText !== o && b.querySelectorAll('tbody tr').length === 10; }""", arg=old, timeout=60_000, polling=10)))
    median_report("click -> neighbours ringed on the map", runs, "the neighbours listed")
    box = canvas_box(page)
    radius = min(box["width"], box["height"]) / 4 * min(1.0, (350_000 / n) ** 0.5)  # about 100k points at 200k and above (the target's lasso)
    lasso(page, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, radius, back_to_pan=False)
    t = time.perf_counter()  # from the mouse-up
    page.wait_for_function("""() => { const m = /Selected on the map: ([\\d,]+) point/.exec(document.querySelector('.vecbook-explorer-selection').innerText);
                                      return m !== null && Number(m[1].replace(/,/g, '')) > 1; }""", timeout=120_000, polling=20)
    lassoed = time.perf_counter() - t
    page.locator(f"{FIG} [title='Activate pan & zoom']").click()
    selected = nb.value("len(ex.map.state.selected)")
    report(f"{n:,}: lasso of {selected:,} -> selection table shown", lassoed, None)
    frame_s = nb.value("(lambda t: (ex.selection, time.perf_counter() - t)[1])(time.perf_counter())")
    report(f"{n:,}: lasso of {selected:,} -> ex.selection DataFrame", frame_s, 1.0 if selected >= 100_000 else None)
    for field, label in (("topic", "cloud"), ("cluster", "cluster"), ("topic", "cloud")):
        _, drawn, changes = watched(lambda: page.locator(".vecbook-color-by select").select_option(field), lambda: page.wait_for_function(
            "(l) => document.querySelector('.vecbook-figure').innerText.includes(l)", arg=label, timeout=60_000, polling=10))
        report(f"{n:,}: colour by {field}: recoloured points drawn (canvas changes: {changes})", drawn, 0.3, unit="ms")
    if profiles is not None:  # as for the search: one more change, not timed, without the watcher
        with _profiled(page, profiles, f"{n}-colour"):
            page.locator(".vecbook-color-by select").select_option("cluster")
            page.wait_for_timeout(window)
    sent = max((f.size for f in nb.frames if f.sent), default=0)
    print(f"  largest browser->kernel frame: {sent:,} bytes; largest kernel->browser: {max(f.size for f in nb.frames if not f.sent):,} bytes")
    if umap:
        idle = [nb.answer_time("1 + 1") for _ in range(3)]  # the reference: the kernel idle
        report(f"{n:,}: another cell answered, kernel idle (Shift+Enter -> output shown, reference, median of 3)",
               statistics.median(idle), None, unit="ms")
        page.locator(".vecbook-projection button", has_text="UMAP").click()
        time.sleep(1.0)
        times, running = [], []
        for _ in range(5):
            times.append(nb.answer_time("1 + 1"))
            running.append(nb.value("bool(ex.map.state.job and ex.map.state.job.running)"))
            time.sleep(0.5)
        during = [t for t, r in zip(times, running) if r] or times
        report(f"{n:,}: another cell answered while UMAP runs (median of {len(during)} answered with UMAP still running"
               f"{'' if any(running) else ': NONE, UMAP had finished'})", statistics.median(during), 0.2, unit="ms")
        print(f"    each answer (ms), UMAP running after it: {[(round(t * 1000), r) for t, r in zip(times, running)]}")


def bench_plotly(sizes: list[int], browser=None) -> None:
    """The renderer the map had: plotly's FigureWidget (scattergl), for the choice in docs/explorer.md."""
    from tests.e2e.labkit import chromium, lab_server

    if browser is None:
        with chromium() as browser:
            return bench_plotly(sizes, browser)
    for n in sizes:
        print(f"\n1b. plotly FigureWidget (scattergl) of {n:,} points  (load {load()})")
        cells = [f"""\
import numpy as np, plotly.graph_objects as go
rng = np.random.default_rng(0)
xy = rng.normal(size=({n}, 2)).astype(np.float32)
fig = go.FigureWidget(go.Scattergl(x=xy[:, 0], y=xy[:, 1], mode="markers", marker={{"size": 3}}), layout={{"dragmode": "lasso", "height": 480}})
fig"""]
        with tempfile.TemporaryDirectory() as tmp, lab_server(Path(tmp) / "run", "p.ipynb", cells, Path(tmp) / "lab.log") as lab, \
                _notebook(browser, lab) as (page, nb):
            page.locator(".jp-Notebook .jp-Cell").first.locator(".cm-content").click()
            t = time.perf_counter()
            page.keyboard.press("Shift+Enter")
            page.wait_for_function("() => { const g = document.querySelector('.js-plotly-plot'); return g && g._fullData && g._fullData[0] && g.querySelector('canvas'); }",
                                   timeout=300_000, polling=50)
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            report(f"plotly {n:,}: figure visible after the call", time.perf_counter() - t, None)
            mark = time.monotonic()
            box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
            cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.move(cx - 60, cy - 60)
            page.mouse.down()
            for x, y in ((cx + 60, cy - 60), (cx + 60, cy + 60), (cx - 60, cy + 60), (cx - 60, cy - 60)):
                page.mouse.move(x, y, steps=5)
            page.mouse.up()
            time.sleep(3.0)
            sent = [f.size for f in nb.frames_since(mark) if f.sent]
            print(f"  a lasso: the browser sent {len(sent)} frame(s), largest {max(sent, default=0):,} bytes ({max(sent, default=0) / n:.0f} B/point)")


def load() -> str:
    return open("/proc/loadavg").read().split(" ")[0] if os.path.exists("/proc/loadavg") else "?"


def bench_umap(n: int) -> None:
    from vecbook.widgets import MapState

    print(f"\n2. UMAP of {n:,} nodes (in a worker thread)")
    with tempfile.TemporaryDirectory() as cache:
        warm = MapState(make_store(5000, seed=7), "bench", cache_dir=cache)
        t = time.perf_counter()
        warm.show("umap")
        warm.wait_for_umap()
        if warm.error:
            print(f"  UMAP failed: {warm.error}")
            return
        report("warm-up fit of 5,000 (includes numba compilation if cold)", time.perf_counter() - t, None)
        state = MapState(make_store(n, seed=3), "bench", cache_dir=cache)
        t = time.perf_counter()
        state.show("umap")
        stalls = []
        while not state.job.done:  # the caller's thread stays free while UMAP runs
            a = time.perf_counter()
            time.sleep(0.01)
            stalls.append(time.perf_counter() - a - 0.01)
        state.wait_for_umap()
        report(f"warm UMAP of {n:,}", time.perf_counter() - t, 30.0)
        report("longest stall of the caller's thread meanwhile", max(stalls), None, unit="ms")
        again = MapState(state.store, "bench", cache_dir=cache)
        t = time.perf_counter()
        again.show("umap")
        report("the UMAP map reopened (cached, no fit)", time.perf_counter() - t, None, unit="ms")


def bench_search(n: int, rounds: int = 30) -> None:
    from vecbook.widgets import SearchPanel

    print(f"\n3. Search panel round trip, memory backend, {n:,} nodes")
    store = make_store(n, seed=5)
    t = time.perf_counter()
    panel = SearchPanel(store, "bench", top_k=10)
    report("SearchPanel(...) incl. introspection (first 5,000 nodes)", time.perf_counter() - t, None)
    queries = [f"fast python {w} library" for w in ("http", "plot", "parser", "server", "async", "tool")]

    def rounds_of(label: str) -> None:
        times = []
        for i in range(rounds):
            t = time.perf_counter()
            panel.query_box.value = f"{queries[i % len(queries)]} {i}"  # what Enter in the query box does
            times.append(time.perf_counter() - t)
            assert panel.state.error is None, panel.state.error
        times.sort()
        report(f"{label}: median of {rounds}", statistics.median(times), 0.2, unit="ms")
        report(f"{label}: p95", times[int(0.95 * (len(times) - 1))], 0.2, unit="ms")

    rounds_of("query")
    panel.add_condition("topic", "in", ["ai", "web"])
    panel.add_condition("rank", "between", (1000, 90_000))
    rounds_of("query + filter (topic in [..], rank between)")
    assert len(panel.state.results) == 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="3000,50000,200000", help="comma-separated map sizes (add 1000000 for the 1M figures)")
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--browser-umap", action="store_true", help="also time a cell while UMAP runs (leaves UMAP computing)")
    parser.add_argument("--compare-plotly", action="store_true", help="also time plotly's FigureWidget at the same sizes")
    parser.add_argument("--plotly-only", action="store_true", help="only plotly's FigureWidget (with --sizes), no explorer")
    parser.add_argument("--umap-n", type=int, default=20_000)
    parser.add_argument("--search-n", type=int, default=100_000)
    parser.add_argument("--skip-umap", action="store_true")
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--stores", help="keep each size's local workspace in this folder and reuse it in later runs")
    parser.add_argument("--js-profiles", type=Path, help="write the page's CPU profile of the open, a search and a colour change "
                        "at each size in this folder (.cpuprofile, for Chrome DevTools) and print where the time went; "
                        "the open is then timed under the profiler, which slows it")
    args = parser.parse_args(argv)
    print(f"vecbook.widgets benchmark ({os.cpu_count()} cores, load {load()})")
    if args.plotly_only:
        bench_plotly([int(x) for x in args.sizes.split(",")])
    elif not args.no_browser:
        bench_browser([int(x) for x in args.sizes.split(",")], args.dims, args.browser_umap, args.compare_plotly, args.stores,
                      args.js_profiles)
    if args.search_n:
        bench_search(args.search_n)
    if not args.skip_umap:
        bench_umap(args.umap_n)
    print("\nSummary")
    for name, shown, goal, verdict in results:
        if goal:
            print(f"  {name:<58} {shown:>10}  {goal:>9} {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
