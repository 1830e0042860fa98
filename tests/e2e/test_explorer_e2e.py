"""The explorer in real JupyterLab, driven by Playwright with Debian's chromium.

Opens the tour notebook as the demo opens it (a fresh copy in a run folder, trusted,
with the demo's settings: no news prompt; sample dataset, hashing embeddings), runs
it, searches, filters, colours, lasso-selects and clicks a point, and checks what is
visible against the same operations run here on a memory store. Screenshots go to
artifacts/e2e/.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from vecbook.widgets.tour import TOUR_NAME, tour_notebook

from .conftest import ARTIFACTS
from .labkit import (
    CANVAS_MASK,
    CANVAS_SUM,
    FIG,
    canvas_box,
    chromium,
    click_at,
    drawn_point_near_centre,
    lasso,
    overlap,
    point_at,
    save_notebook,
    wait_drawn,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

QUERY = "http client"
FILTER = {"rank": {"lte": 100}}
# Console errors that do not come from our widgets (none are expected today; add with a reason).
BENIGN = (re.compile(r"favicon"),)


@pytest.fixture(scope="module")
def expected():
    """What the notebook's store answers, computed here on a memory store with the same model and data."""
    import vecbook
    from vecbook.datasets import build_sample_workspace

    store = vecbook.MemoryVectorStore(embedding_model=vecbook.HashEmbeddingModel(dimensions=384))
    build_sample_workspace(store)
    plain = store.search(QUERY, "pypi", top_k=10)
    filtered = store.search(QUERY, "pypi", top_k=10, filter_dict=FILTER)
    columns = store.read_columns("pypi", columns=["ids", "contents"])
    contents = dict(zip(columns.ids, columns.contents))
    return {"plain": plain, "filtered": filtered, "contents": contents}


def _scores(nodes):
    return pytest.approx(sorted(n.score for n in nodes), abs=1e-3)


def _table_rows(page, selector):
    return page.evaluate(
        """(sel) => Array.from(document.querySelectorAll(sel + ' tbody tr')).map(tr => {
               const head = Array.from(tr.closest('table').querySelectorAll('thead th')).map(th => th.textContent);
               const cells = Array.from(tr.querySelectorAll('td')).map(td => td.textContent);
               return Object.fromEntries(head.map((h, i) => [h, cells[i]])); })""",
        selector,
    )


def _wait_text(page, selector: str, text: str, timeout: int = 15_000) -> None:
    """Wait until ``selector``'s text contains ``text`` (widget updates arrive as separate messages)."""
    page.wait_for_function("([sel, text]) => { const e = document.querySelector(sel); return e !== null && e.innerText.includes(text); }",
                           arg=[selector, text], timeout=timeout)


def _run_all(page, timeout: float = 150.0) -> None:
    """Run > Run All Cells until the explorer shows.

    Lab sometimes swaps the kernel just after opening a notebook, dropping the
    cells queued on the first one: when the kernel is idle with cells left
    unrun, run them all again.
    """
    stalled = """() => {
        const idle = document.querySelector(".jp-Notebook-ExecutionIndicator[data-status='idle']") !== null;
        const prompts = Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')).map(p => p.textContent.trim());
        return idle && prompts.some(p => p === '[ ]:' || p === '[ ]');
    }"""
    deadline = time.monotonic() + timeout
    since = None
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    while time.monotonic() < deadline:
        if page.locator(".vecbook-explorer").count():
            return
        if page.evaluate(stalled):
            since = since or time.monotonic()
            if time.monotonic() - since > 5:
                page.keyboard.press("Escape")
                page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
                page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
                since = None
        else:
            since = None
        time.sleep(0.5)
    raise AssertionError(f"the explorer did not appear within {timeout:.0f} s of Run All Cells")


def test_explorer_in_jupyterlab(lab, expected):
    # Lab serves the generated tour, never the tracked notebook as a user's Lab may have saved it.
    assert json.loads(lab.run.notebook.read_text(encoding="utf-8")) == tour_notebook()
    # Start the kernel session before the page opens: Lab then attaches to it instead of racing to start two.
    lab.api("POST", "/api/sessions", {"path": TOUR_NAME, "name": TOUR_NAME, "type": "notebook", "kernel": {"name": "python3"}})
    errors: list[str] = []
    timings: dict[str, float] = {}
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
        shot = lambda name: page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
        start = time.monotonic()
        try:
            _drive(lab, page, shot, expected, timings, start)
        except BaseException:
            shot("failure")
            raise
    ours = [e for e in errors if not any(b.search(e) for b in BENIGN)]
    (ARTIFACTS / "console-errors.txt").write_text("\n".join(errors))
    assert not ours, f"JavaScript errors in the page: {ours}"
    print("e2e timings:", {k: round(v, 1) for k, v in timings.items()})


def _canvas_changes(page, since: int, timeout: int = 30_000) -> int:
    """Wait until the map's pixels differ from checksum ``since``, then until two frames agree; the new checksum."""
    page.wait_for_function(f"([sel, since]) => ({CANVAS_SUM})(sel) !== since", arg=[FIG, since], timeout=timeout)
    last = None
    for _ in range(50):
        time.sleep(0.2)
        now = page.evaluate(CANVAS_SUM, FIG)
        if now == last:
            return now
        last = now
    return last


def _slow_presses_still_click(page) -> None:
    """A press held 0.7 s or 1.3 s (a slow hand, or a page busy drawing between the button's down and up)
    still lists the point's neighbours: the map has no click-to-start lasso and no lasso on long press."""
    for hold, (dx, dy) in ((0.7, (60, -40)), (1.3, (-60, 40))):
        canvas_box(page)
        target = drawn_point_near_centre(page, dx, dy)
        old = page.inner_text(".vecbook-neighbours-box")
        point_at(page, target["x"], target["y"])
        page.mouse.down()
        time.sleep(hold)
        page.mouse.up()
        page.wait_for_function("""(o) => { const b = document.querySelector('.vecbook-neighbours-box');
            return b.innerText !== o && b.querySelectorAll('tbody tr').length === 10; }""", arg=old, timeout=30_000)


def _toggle_cluster_labels(page, shot) -> None:
    box = page.locator(".vecbook-cluster-labels input")
    assert not box.is_checked()
    plain = page.evaluate(CANVAS_SUM, FIG)
    box.check()
    labelled = _canvas_changes(page, plain)  # the labels are drawn on the map's canvas
    shot("01b-cluster-labels")
    box.uncheck()
    unlabelled = _canvas_changes(page, labelled)
    assert unlabelled != labelled


def _tag_the_selection(page, shot, n_selected: int) -> None:
    """Tag the lasso's points: the tag is offered at once by the colour menu and the filter builder; the
    selection becomes a filter_dict to paste."""
    actions = ".vecbook-selection-actions"
    page.locator(actions).scroll_into_view_if_needed()
    assert page.locator(f"{actions} input").nth(0).input_value() == "label"
    page.locator(f"{actions} input").nth(1).fill("e2e")
    page.locator(f"{actions} button", has_text="Tag selection").click()
    _wait_text(page, actions, f"tagged {n_selected:,} node(s) with label='e2e'", timeout=30_000)
    page.wait_for_function("() => Array.from(document.querySelectorAll('.vecbook-color-by select option')).some(o => o.textContent === 'label')",
                           timeout=30_000)
    _wait_text(page, ".vecbook-map-status", f"{n_selected:,} selected")  # the tag kept the selection
    clauses = page.locator(".vecbook-clause").count()
    page.click(".vecbook-add-condition")  # a new filter clause offers the new field
    offered = """(n) => { const c = document.querySelectorAll('.vecbook-clause');
        return c.length > n && Array.from(c[c.length - 1].querySelector('select').options).some(o => o.textContent === 'label'); }"""
    try:
        page.wait_for_function(offered, arg=clauses, timeout=30_000)
    except Exception as exc:
        fields = page.evaluate("() => Array.from(document.querySelectorAll('.vecbook-clause')).map(c => Array.from(c.querySelector('select').options).map(o => o.textContent))")
        raise AssertionError(f"the new clause does not offer 'label' ({clauses} clause(s) before the click): {fields}") from exc
    page.locator(f"{actions} button", has_text="Selection as filter").click()
    page.wait_for_function("() => { const c = document.querySelector('.vecbook-selection-code'); return c !== null && c.textContent.startsWith('filter_dict={'); }",
                           timeout=30_000)
    shot("05b-tagged")


def _umap_then_reload(lab, page, shot, n_selected: int) -> None:
    """UMAP from the toggle, then a reload of the page: the map comes back as the kernel has it (UMAP,
    the colour and its legend, the selection), not as the page first drew it."""
    before, pca_shape = page.evaluate(CANVAS_SUM, FIG), page.evaluate(CANVAS_MASK, FIG)
    page.locator(".vecbook-projection button", has_text="UMAP").click()
    _wait_text(page, ".vecbook-map-status", "UMAP 2-D", timeout=240_000)  # the first UMAP here may compile numba's code
    _canvas_changes(page, before)
    umap_shape = page.evaluate(CANVAS_MASK, FIG)
    shot("06b-umap")
    save_notebook(page, lab.run.notebook)
    page.reload()
    page.wait_for_selector(".jp-Notebook", timeout=90_000)
    wait_drawn(page, 120)
    page.locator(".vecbook-explorer").scroll_into_view_if_needed()
    status = page.inner_text(".vecbook-map-status")
    assert "UMAP 2-D" in status and f"{n_selected:,} selected" in status, status
    assert page.locator(".vecbook-projection button.mod-active").inner_text() == "UMAP"
    assert "month" in page.inner_text(FIG)  # the colour's legend
    _canvas_changes(page, -1)
    shape = page.evaluate(CANVAS_MASK, FIG)
    # The UMAP layout is drawn again, not the first one (its selected points may be styled otherwise:
    # jupyter-scatter draws a selection given at the start with outlines, a later one filled).
    like_umap, like_pca = overlap(shape, umap_shape), overlap(shape, pca_shape)
    assert like_umap > 0.8 and like_pca < like_umap - 0.2, (like_umap, like_pca)
    shot("06c-after-reload")


def _drive(lab, page, shot, expected, timings, start):
    """Open the notebook, run it and use every part of the explorer, checking what the page shows."""
    page.goto(f"{lab.url}{lab.run.url_path}?token={lab.token}")
    page.wait_for_selector(".jp-Notebook", timeout=90_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
    time.sleep(2.0)  # let Lab finish restoring its layout and settle on a kernel
    # The demo's run folder: the notebook is trusted, and no "Jupyter news?" prompt covers the widgets
    # (the empty Lab home of this test answers nothing: the run's settings overrides do it).
    page.wait_for_selector("[title^='Notebook trusted: 3 of 3 code cells trusted']", timeout=15_000)
    assert "official Jupyter news" not in page.inner_text("body")
    left = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if left.count():
        left.first.click()  # more room for the widgets
    _run_all(page)
    wait_drawn(page, 60)
    timings["explorer visible"] = time.monotonic() - start
    page.locator(".vecbook-explorer").scroll_into_view_if_needed()
    _wait_text(page, ".vecbook-map-status", "3,000 points, PCA 2-D")
    assert page.locator(f"{FIG} canvas").count() > 0  # drawn with WebGL (regl-scatterplot)
    assert page.locator("text=Share chart").count() == 0 and page.locator("[data-title*='Chart Studio']").count() == 0
    shot("01-explorer")

    # Cluster labels: the box draws a label at each cluster's centre on the map; unticking removes them.
    _toggle_cluster_labels(page, shot)

    # Type a query: results with scores, highlighted on the map, the rest dimmed.
    page.fill(".vecbook-query input", QUERY)
    page.press(".vecbook-query input", "Enter")
    page.wait_for_function("document.querySelectorAll('.vecbook-results tbody tr').length === 10", timeout=30_000)
    rows = _table_rows(page, ".vecbook-results")
    assert sorted(float(r["score"]) for r in rows) == _scores(expected["plain"])
    best = max(n.score for n in expected["plain"])
    assert rows[0]["id"] in {n.unique_id for n in expected["plain"] if abs(n.score - best) < 1e-6}
    _wait_text(page, ".vecbook-map-status", "10 highlighted")
    shot("02-search")

    # Apply a filter with the builder: rank <= 100.
    page.click(".vecbook-add-condition")
    page.wait_for_selector(".vecbook-clause select", timeout=10_000)
    page.locator(".vecbook-clause select").nth(0).select_option("rank")
    page.wait_for_function("() => Array.from(document.querySelectorAll('.vecbook-clause select')[1].options).some(o => o.textContent === '≤')")
    page.locator(".vecbook-clause select").nth(1).select_option(label="≤")
    # The editors are rebuilt for the new operator: wait for the single "≤" box (not the two "between" boxes).
    value_box = ".vecbook-clause .vecbook-filter-value input"
    page.wait_for_function(f"() => document.querySelectorAll('{value_box}').length === 1", timeout=10_000)
    page.fill(value_box, "100")
    page.press(value_box, "Enter")
    page.wait_for_function("() => document.querySelector('.vecbook-filter-code').textContent.includes(\"{'rank': {'lte': 100}}\")", timeout=10_000)
    page.click(".vecbook-search-button")
    n_filtered = len(expected["filtered"])
    page.wait_for_function(  # the rows shown all have rank <= 100: the filtered results are in
        f"""() => {{ const t = document.querySelector('.vecbook-results'); if (!t) return false;
             const col = Array.from(t.querySelectorAll('thead th')).findIndex(th => th.textContent === 'rank');
             const rows = Array.from(t.querySelectorAll('tbody tr'));
             return col >= 0 && rows.length === {n_filtered} && rows.every(tr => Number(tr.children[col].textContent) <= 100); }}""",
        timeout=30_000)
    rows = _table_rows(page, ".vecbook-results")
    assert all(int(r["rank"]) <= 100 for r in rows)
    assert sorted(float(r["score"]) for r in rows) == _scores(expected["filtered"])
    _wait_text(page, ".vecbook-map-status", f"{n_filtered} highlighted")
    _wait_text(page, ".vecbook-map-status", "filter keeps")  # the points the filter excluded are drawn faint
    assert not page.inner_text(".vecbook-search-error").strip()
    shot("03-filter")

    # Click a point on the map: its nearest neighbours are listed with scores.
    canvas_box(page)
    target = drawn_point_near_centre(page)
    click_at(page, target["x"], target["y"])
    page.wait_for_function("document.querySelectorAll('.vecbook-neighbours tbody tr').length === 10", timeout=30_000)
    clicked_id = re.search(r"Nearest neighbours of\s+(\S+)", page.inner_text(".vecbook-neighbours-box")).group(1)
    neighbours = _table_rows(page, ".vecbook-neighbours")
    scores = [float(n["score"]) for n in neighbours]
    assert scores == sorted(scores, reverse=True)
    assert clicked_id not in {n["id"] for n in neighbours}
    # The pointer rests on the clicked point: its tooltip shows its content, asked of the kernel (the map keeps none).
    point_at(page, target["x"] + 1, target["y"])
    point_at(page, target["x"], target["y"])
    head = expected["contents"][clicked_id][:40]
    page.wait_for_function("([fig, head]) => document.querySelector(fig).textContent.includes(head)", arg=[FIG, head], timeout=30_000)
    shot("04-neighbours")
    _slow_presses_still_click(page)

    # Lasso-select points: the selection appears in the table below the map.
    box = canvas_box(page)
    lasso(page, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, min(box["width"], box["height"]) / 3)
    page.wait_for_function("""() => { const m = /Selected on the map: ([\\d,]+) point/.exec(document.querySelector('.vecbook-explorer-selection').innerText);
                                      return m !== null && Number(m[1].replace(/,/g, '')) > 1; }""", timeout=30_000)
    text = page.inner_text(".vecbook-explorer-selection")
    n_selected = int(re.search(r"Selected on the map: ([\d,]+) point", text).group(1).replace(",", ""))
    assert page.locator(".vecbook-explorer-selection tbody tr").count() == min(n_selected, 500)
    _wait_text(page, ".vecbook-map-status", f"{n_selected:,} selected")
    shot("05-selection")
    page.locator(".vecbook-explorer-selection").scroll_into_view_if_needed()
    shot("05-selection-table")
    _tag_the_selection(page, shot, n_selected)

    # Colour by a metadata field.
    page.locator(".vecbook-explorer").scroll_into_view_if_needed()
    page.evaluate("() => document.querySelector('.vecbook-explorer').scrollIntoView()")
    page.locator(".vecbook-color-by select").select_option("month")
    page.wait_for_function(f"() => document.querySelector('{FIG}').innerText.includes('month')", timeout=30_000)  # its legend
    shot("06-colour")
    _umap_then_reload(lab, page, shot, n_selected)

    # The workspace browser, below: the first page of the workspace as a table.
    page.locator(".vecbook-explorer").get_by_text("Workspace browser", exact=True).click()
    page.wait_for_function("document.querySelectorAll('.vecbook-page tbody tr').length === 20", timeout=30_000)
    page.locator(".vecbook-browser").scroll_into_view_if_needed()
    _wait_text(page, ".vecbook-browser", "page 1 of 150")
    shot("07-browser")
    timings["whole run"] = time.monotonic() - start
