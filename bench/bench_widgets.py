"""Speed of the notebook explorer (vecbook.widgets), with the targets of issue 4.

    python bench/bench_widgets.py [--map-n 50000] [--umap-n 20000] [--search-n 100000] [--skip-umap] [--no-browser]

1. Map: an ``EmbeddingMap`` of 50k nodes (384-d) built with PCA (read the points,
   project, build the WebGL figure); then, if /usr/bin/chromium and playwright
   are there, the same figure drawn in headless chromium. Target: visible in < 2 s.
2. UMAP: a 20k-node map switched to UMAP after a warm-up fit (the first fit in a
   process compiles numba code and is reported apart). Target: warm < 30 s.
3. Search panel: query -> store search (memory backend, 100k nodes, with and
   without a filter) -> results table HTML, as a user's Enter does. Target: < 200 ms.

Vectors are synthetic (clustered Gaussian, unit length) so the figures do not
depend on an embedding model; queries use HashEmbeddingModel(384).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import vecbook  # noqa: E402
from vecbook import HashEmbeddingModel, VectorNode  # noqa: E402

DIMS = 384
results: list[tuple[str, str, str, str]] = []


def report(name: str, value: float, target: float | None, unit: str = "s") -> None:
    shown = f"{value * 1000:.0f} ms" if unit == "ms" else f"{value:.2f} s"
    goal = "" if target is None else (f"< {target * 1000:.0f} ms" if unit == "ms" else f"< {target:.0f} s")
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


def bench_map(n: int, browser: bool) -> None:
    from vecbook.widgets import EmbeddingMap
    from vecbook.widgets.projection import ProjectionCache

    print(f"\n1. Map of {n:,} nodes (PCA)")
    store = make_store(n)
    t = time.perf_counter()
    import plotly.graph_objects as go  # noqa: F401

    go.FigureWidget()  # plotly's one-time set-up in a process (validators, widget bundle)
    report("plotly set-up, once per kernel", time.perf_counter() - t, None)
    ProjectionCache.clear_memory()
    EmbeddingMap(make_store(2000, seed=9), "bench", cache_dir=False)  # a kernel's first map warms BLAS threads
    ProjectionCache.clear_memory()
    t = time.perf_counter()
    m = EmbeddingMap(store, "bench", cache_dir=False)
    built = time.perf_counter() - t
    report(f"EmbeddingMap({n:,}): read + PCA + figure, cold cache", built, None)
    t = time.perf_counter()
    EmbeddingMap(store, "bench", cache_dir=False)
    report("the same map reopened (projection cached)", time.perf_counter() - t, 2.0)
    t = time.perf_counter()
    m.state.set_color("topic")
    report("colour by a field", time.perf_counter() - t, None)
    if browser:
        draws = [d for d in (browser_draw_time(m.fig) for _ in range(3)) if d is not None]
        if draws:
            draw = statistics.median(draws)
            report(f"the figure drawn in headless chromium (software WebGL, {n:,} points), median of 3", draw, None)
            report(f"map of {n:,} visible: Python build + drawing", built + draw, 2.0)
    else:
        report(f"map of {n:,} built in Python (drawing not measured)", built, 2.0)


def browser_draw_time(fig) -> float | None:
    """Load the figure's JSON into a page with plotly.js and time Plotly.newPlot until drawn."""
    if not os.path.exists("/usr/bin/chromium"):
        print("  (no /usr/bin/chromium: browser timing skipped; scripts/e2e_setup.sh installs it)")
        return None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("  (playwright not installed: browser timing skipped)")
        return None
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "plotly.js").write_text(get_plotlyjs())
        Path(tmp, "fig.json").write_text(pio.to_json(go_figure(fig)))
        Path(tmp, "index.html").write_text(
            "<html><body><div id='g' style='width:900px;height:600px'></div><script src='plotly.js'></script></body></html>")
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-dev-shm-usage", "--allow-file-access-from-files"]
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", args=args, headless=True)
            try:
                page = b.new_page()
                page.goto(Path(tmp, "index.html").as_uri())
                page.wait_for_function("() => window.Plotly !== undefined")
                return page.evaluate("""async () => {
                    const fig = await (await fetch('fig.json')).json();
                    const t = performance.now();
                    await Plotly.newPlot('g', fig.data, fig.layout);
                    await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
                    return (performance.now() - t) / 1000; }""")
            finally:
                b.close()


def go_figure(fig):
    import plotly.graph_objects as go

    return go.Figure(fig.to_dict())


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
    parser.add_argument("--map-n", type=int, default=50_000)
    parser.add_argument("--umap-n", type=int, default=20_000)
    parser.add_argument("--search-n", type=int, default=100_000)
    parser.add_argument("--skip-umap", action="store_true")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv)
    print(f"vecbook.widgets benchmark ({os.cpu_count()} cores)")
    bench_map(args.map_n, browser=not args.no_browser)
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
