"""TableView's front end in Debian's chromium: one-line rows, hover text, horizontal scroll, clicks sent back.

The widget's ESM is rendered in a plain page with a small stand-in for anywidget's
model (``get``/``on``/``send``, the calls the ESM makes); the JupyterLab run of the
whole explorer is tests/e2e. Skips when chromium or playwright is missing.
"""

from __future__ import annotations

import json
import os

import pytest

from vecbook.widgets.table_view import _CSS, _ESM, table_rows

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-dev-shm-usage"]

_PAGE = """<html><body><div id="host" style="width:420px"></div><script type="module">
const esm = %(esm)s, css = %(css)s, data = %(data)s, handlers = {};
window.sent = [];
const model = { get: (k) => data[k], on: (ev, fn) => (handlers[ev] ||= []).push(fn), send: (m) => window.sent.push(m) };
window.setTrait = (k, v) => { data[k] = v; (handlers["change:" + k] || []).forEach((f) => f()); };
const style = document.createElement("style"); style.textContent = css; document.head.appendChild(style);
const mod = await import(URL.createObjectURL(new Blob([esm], { type: "text/javascript" })));
mod.default.render({ model, el: document.getElementById("host") });
window.ready = true;
</script></body></html>"""


@pytest.fixture(scope="module")
def page():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser.new_page()
        browser.close()


def test_rows_are_one_line_scroll_sideways_and_clicks_come_back(page):
    columns = ["#", "id", "score", "content", "downloads", "summary"]
    records = [{"#": i + 1, "id": f"pkg{i}", "score": 0.9 - i / 100, "content": f"package {i} " + "long text " * 60,
                "downloads": 154571315 * (i + 1), "summary": "a summary that is long enough to need room " * 3}
               for i in range(10)]
    data = {"rows": table_rows(records, columns), "columns": columns, "selected": ["pkg3"], "sort_by": "", "ascending": True,
            "empty": "No rows.", "css_class": "vecbook-results"}
    page.set_content(_PAGE % {"esm": json.dumps(_ESM), "css": json.dumps(_CSS), "data": json.dumps(data)})
    page.wait_for_function("window.ready === true", timeout=10_000)
    assert page.locator(".vecbook-results tbody tr").count() == 10
    heights = page.eval_on_selector_all(".vecbook-results tbody tr", "rows => rows.map(r => r.getBoundingClientRect().height)")
    assert max(heights) < 24  # one line each, however long the text
    scroll = page.evaluate("() => { const b = document.querySelector('.vecbook-table-scroll'); return [b.scrollWidth, b.clientWidth]; }")
    assert scroll[0] > scroll[1]  # the right columns are reached by scrolling, not clipped away
    content = page.locator(".vecbook-results tbody tr").first.locator("td").nth(3)
    assert content.get_attribute("title").startswith("package 0 long text long text")
    assert page.locator(".vecbook-results tbody tr").first.locator("td").nth(4).inner_text() == "154,571,315"
    assert page.locator("tr.vecbook-selected").get_attribute("data-id") == "pkg3"
    assert page.locator(".vecbook-results thead th").all_inner_texts() == columns

    page.locator(".vecbook-results tbody tr").nth(2).click()
    page.locator(".vecbook-results thead th", has_text="downloads").click()
    page.locator(".vecbook-results tbody tr").nth(5).click(modifiers=["Control"])
    assert page.evaluate("window.sent") == [{"event": "click", "id": "pkg2", "toggle": False},
                                            {"event": "sort", "column": "downloads"},
                                            {"event": "click", "id": "pkg5", "toggle": True}]
    page.evaluate("() => { window.setTrait('sort_by', 'downloads'); window.setTrait('ascending', false); }")
    assert page.locator("th[data-sort='desc']").inner_text() == "downloads"  # the arrow is CSS, not text
    page.evaluate("() => window.setTrait('rows', [])")
    assert page.locator(".vecbook-results.vecbook-empty").inner_text() == "No rows."
