"""The user guide as a static HTML site, built offline, its widgets drawn by a renderer served with it.

Builds ``docs/`` once per session with Sphinx + myst-nb (``docs/conf.py``; the same command as
``scripts/build_docs.sh``) into a temp folder: every page runs as a notebook and the build fails
on a cell error. Then checks that every page has its HTML, that no page points at another host,
and serves the site on a loopback port: Debian's chromium (driven by Playwright, never a
downloaded browser) opens the explorer page and the index page with every request to a
non-loopback host aborted and recorded, and the test asserts there was none, that the
explorer's ipywidgets controls and its jupyter-scatter map are really drawn (DOM made by the widget
renderer, not by Sphinx) with the state the page's cells left, and that nothing failed in the
page. Screenshots go to ``artifacts/docs-html/``.

Skips (with the reason) when a requirement is missing: the ``docs`` extra, npm (needed once,
to fetch the renderer into ``docs/.widgets-js/``) or ``/usr/bin/chromium``; in CI a skip fails
the run (``tests/conftest.py``).
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.labkit import CHROMIUM, chromium

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
ARTIFACTS = ROOT / "artifacts" / "docs-html"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

# What docs/explorer.md leaves in its explorer (its cells assert the same on the Python side).
QUERY, HITS, POINTS = "testing framework", 8, 1500
FILTER_CODE = "filter_dict={'rank': {'lte': 100}}"
SELECTED = ["boto3", "numpy", "requests"]

# Console messages that are not failures (each with its reason).
BENIGN = (
    re.compile(r"^Got invalid theme mode: \. Resetting to auto\.$"),  # pydata-sphinx-theme, first visit (no saved mode)
    re.compile(r"^Failed to load resource: "),  # says no URL: failed loads are checked by URL (Visit.failed)
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]




def _source_pages() -> list[Path]:
    skip = {"_build", "_static", "_templates", ".widgets-js"}
    return sorted(p for p in DOCS.rglob("*.md")
                  if not skip.intersection(p.relative_to(DOCS).parts) and p.name != "README.md")


def _is_notebook(path: Path) -> bool:
    head = path.read_text(encoding="utf-8")[:400]
    return head.startswith("---") and "jupytext" in head and "format_name: myst" in head


class Site:
    def __init__(self, html: Path, log: str, warnings: str, seconds: float):
        self.html, self.log, self.warnings, self.seconds = html, log, warnings, seconds


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Site:
    for module, package in (("sphinx", "sphinx"), ("myst_nb", "myst-nb"), ("sphinx_book_theme", "sphinx-book-theme")):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"the {package!r} package is not installed (pip install -e '.[all,dev,docs]')")
    js_cache = Path(os.environ.get("VECBOOK_DOCS_JS_CACHE") or DOCS / ".widgets-js")
    if shutil.which("npm") is None and not any(js_cache.glob("static-*/vecbook-widgets/anywidget/index.js")):
        pytest.skip(f"npm is missing and {js_cache} holds no widget renderer yet (install Node.js/npm once)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for stale in ARTIFACTS.glob("*"):
        if stale.is_file():
            stale.unlink()
    out = tmp_path_factory.mktemp("docs-build")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    warnings = out / "warnings.txt"
    cmd = [sys.executable, "-m", "sphinx", "-E", "-b", "html", "-w", str(warnings), str(DOCS), str(out / "html"),
           "-d", str(out / "doctrees")]
    start = time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, timeout=900)
    seconds = time.monotonic() - start
    log = result.stdout + result.stderr
    (ARTIFACTS / "build.log").write_text(log)
    assert result.returncode == 0, f"sphinx-build failed ({result.returncode}):\n{log[-6000:]}"
    print(f"docs built in {seconds:.0f} s")
    return Site(out / "html", log, warnings.read_text() if warnings.exists() else "", seconds)


# ---- the build -----------------------------------------------------------------------------------------


def test_build_has_no_warnings(site):
    assert not site.warnings.strip(), (
        "sphinx-build warned (a new page must also be listed in the toctree of docs/index.md):\n" + site.warnings)


def test_every_page_ran_and_has_html(site):
    pages = _source_pages()
    assert len(pages) >= 10, pages
    for page in pages:
        rel = page.relative_to(DOCS).with_suffix(".html")
        html_file = site.html / rel
        assert html_file.exists(), f"{rel} was not produced"
        html = html_file.read_text(encoding="utf-8")
        source = page.read_text(encoding="utf-8")
        title = next(line[2:].strip() for line in source.splitlines() if line.startswith("# "))
        assert "<h1>" in html and title.split()[0] in html, f"{rel}: the page's title is missing"
        if _is_notebook(page):
            blocks = source.split("```{code-cell}")[1:]
            shown = [b for b in blocks if "remove-cell" not in b.split("```")[0][:300]]
            assert html.count('class="cell docutils container"') == len(shown), f"{rel}: not every code cell is in the page"
            assert f"{page}: Executed notebook in" in site.log, f"{rel}: myst-nb did not report executing it"
            assert 'class="output traceback' not in html and 'class="output error' not in html, f"{rel}: a cell failed"


def test_no_page_refers_to_another_host_for_what_it_loads(site):
    """Scripts, styles, images, fonts and frames come from the site itself (links to read elsewhere are fine)."""
    loads = re.compile(r"<(script|img|iframe|source|embed)\b[^>]*\bsrc=\"([^\"]+)\"|<link\b[^>]*\bhref=\"([^\"]+)\"[^>]*>", re.I)
    offenders = []
    for page in site.html.rglob("*.html"):
        for match in loads.finditer(page.read_text(encoding="utf-8")):
            url = match.group(2) or match.group(3)
            tag = match.group(0)
            if match.group(3) and not re.search(r"rel=\"(stylesheet|preload|icon|modulepreload|prefetch)", tag):
                continue  # <link rel="next"/"prev"/"index"...> is navigation, not something loaded
            if urlsplit(url).scheme in ("http", "https") or url.startswith("//"):
                offenders.append(f"{page.relative_to(site.html)}: {url}")
    assert not offenders, offenders


# ---- in the browser -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(site):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(site.html)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (run scripts/e2e_setup.sh: apt-get install -y chromium)")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("the 'playwright' Python package is not installed (pip install -e '.[dev]')")
    with chromium() as launched:
        yield launched


class Visit:
    """A page opened with every request recorded and every non-loopback one aborted."""

    def __init__(self, browser, url: str):
        self.requests: list[str] = []
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" and not any(b.search(m.text) for b in BENIGN) else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        # chromium asks for /favicon.ico by itself; the site has none
        self.page.on("response", lambda r: self.failed.append(f"{r.status} {r.url}") if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.failure} {r.url}") if self.local(r.url) else None)
        self.page.goto(url, wait_until="load")

    @staticmethod
    def local(url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme in ("data", "blob", "about") or (parts.scheme in ("http", "https", "ws") and parts.hostname in LOOPBACK)

    def _route(self, route):
        url = route.request.url
        if self.local(url):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort("blockedbyclient")

    def shot(self, name: str, selector: str | None = None) -> None:
        path = str(ARTIFACTS / f"{name}.png")
        if selector is None:
            self.page.screenshot(path=path, full_page=True)
        else:  # cut out of the full page, so the theme's sticky header does not cover the element
            box = self.page.locator(selector).first.evaluate(
                "e => { const r = e.getBoundingClientRect(); return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}; }")
            self.page.screenshot(path=path, full_page=True, clip=box)

    def check_clean(self) -> None:
        """No request left loopback (and the guard does see such a request), nothing failed in the page."""
        assert not self.outside, f"requests to other hosts: {self.outside}"
        assert all(self.local(u) for u in self.requests), [u for u in self.requests if not self.local(u)]
        assert not self.failed, f"failed loads: {self.failed}"
        assert not self.errors, f"errors in the page: {self.errors}"
        canary = "https://cdn.jsdelivr.net/npm/vecbook-canary@1/dist/index.js"
        self.page.evaluate("(url) => fetch(url).catch(() => null)", canary)
        self.page.wait_for_timeout(200)
        assert self.outside == [canary], f"the request guard did not see a CDN request: {self.outside}"

    def close(self) -> None:
        self.context.close()


def _text(page, selector: str) -> str:
    return page.locator(selector).first.inner_text()


# How many pixels of the i-th map's canvas are drawn (not background), sampled on a grid.
DRAWN_NTH = """(i) => { const fig = document.querySelectorAll('.vecbook-figure')[i]; let best = -1;
    for (const c of (fig ? fig.querySelectorAll('canvas') : [])) {
        if (c.width < 50 || c.height < 50) continue;
        const ctx = c.getContext('2d'); if (!ctx) continue;
        const d = ctx.getImageData(0, 0, c.width, c.height).data; let n = 0;
        for (let k = 0; k < d.length; k += 4 * 7) if (d[k + 3] > 0 && (d[k] < 235 || d[k + 1] < 235 || d[k + 2] < 235)) n++;
        best = Math.max(best, n);
    }
    return best; }"""


def test_explorer_page_draws_its_widgets_offline(browser, server):
    visit = Visit(browser, f"{server}/explorer.html")
    page = visit.page
    try:
        # ipywidgets: the views exist only if html-manager and the widget state loaded and rendered
        # (html-manager puts each view in a div.widget-subarea just before its widget-view script tag).
        page.wait_for_selector(".vecbook-explorer .vecbook-query input", timeout=90_000)
        page.wait_for_function("""() => Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'))
                                   .every(s => s.previousElementSibling && s.previousElementSibling.matches('.widget-subarea')
                                               && s.previousElementSibling.childElementCount > 0)""", timeout=90_000)
        views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
        assert views == 2, f"expected the explorer and the figure as widget views, found {views}"
        assert page.locator(".vecbook-explorer .vecbook-query input").input_value() == QUERY
        assert page.locator(".vecbook-explorer .vecbook-search-button").evaluate("e => e.tagName") == "BUTTON"
        assert page.locator(".vecbook-explorer .widget-dropdown select").count() >= 3
        assert FILTER_CODE in _text(page, ".vecbook-explorer .vecbook-filter-code")
        assert page.locator(".vecbook-explorer .vecbook-results-box table tbody tr").count() == HITS
        assert f"{POINTS:,} points, PCA 2-D" in _text(page, ".vecbook-explorer .vecbook-map-status")
        selected = page.locator(".vecbook-explorer-selection table tbody tr td:first-child").all_inner_texts()
        assert sorted(s.strip() for s in selected) == SELECTED

        # jupyter-scatter (an anywidget drawing with WebGL): the map in the explorer and on its own,
        # each a canvas with points drawn on it (pixels that are not background).
        page.wait_for_function("() => document.querySelectorAll('.vecbook-figure canvas').length >= 2", timeout=90_000)
        for i in range(2):
            page.locator(".vecbook-figure").nth(i).scroll_into_view_if_needed()
            page.wait_for_function(f"(i) => ({DRAWN_NTH})(i) > 50", arg=i, timeout=90_000)
        page.wait_for_timeout(500)  # let WebGL finish a frame before the screenshots
        visit.shot("explorer-page")
        visit.shot("explorer-widget", ".vecbook-explorer")
        visit.shot("explorer-figure", ".widget-subarea > .vecbook-figure")
        visit.check_clean()
        # The renderer came from this site: require.js, html-manager and anywidget from _static.
        served = [urlsplit(u).path for u in visit.requests]
        for asset in ("/_static/vecbook-widgets/require.js", "/_static/vecbook-widgets/html-manager/embed-amd.js",
                      "/_static/vecbook-widgets/anywidget/index.js"):
            assert asset in served, f"{asset} was not loaded: {served}"
    except BaseException:
        visit.shot("explorer-failure")
        raise
    finally:
        visit.close()


def test_index_page_offline(browser, server):
    visit = Visit(browser, f"{server}/index.html")
    page = visit.page
    try:
        page.wait_for_selector("nav.bd-docs-nav a.reference.internal", timeout=30_000)
        nav = [t.strip() for t in page.locator("nav.bd-docs-nav a.reference.internal").all_inner_texts()]
        assert len(nav) == len(_source_pages()) - 1, nav  # every page but this one, from the toctree
        assert "Explorer widgets" in nav
        assert "backends: memory, local, chroma, qdrant, elasticsearch" in page.locator(".cell_output").first.inner_text()
        assert page.evaluate("typeof window.requirejs") == "undefined"  # no widget renderer on a page without widgets
        assert page.evaluate("document.fonts.status") == "loaded"
        visit.shot("index-page")
        visit.check_clean()
    except BaseException:
        visit.shot("index-failure")
        raise
    finally:
        visit.close()
