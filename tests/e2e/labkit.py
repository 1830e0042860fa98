"""A real JupyterLab and a notebook driven in Debian's chromium: shared by the map test and bench/bench_widgets.py.

- :func:`lab_server` starts ``jupyter lab`` on a free loopback port in a run folder
  prepared as the demo prepares it (no news prompt, no update check), with a
  notebook of the caller's cells, and stops it (and its kernels) afterwards.
- :class:`NotebookDriver` opens that notebook in a page, runs cells (typed into the
  last, empty cell), reads what they print, and records the size of every
  websocket frame in both directions (the kernel's comm messages travel there).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from vecbook.widgets.lab import LabRun, prepare_lab_run

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def chromium():
    """Debian's headless chromium through Playwright (never a downloaded browser), closed on the way out."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_notebook(path: Path, cells: list[str]) -> None:
    """A notebook of code cells, and an empty one at the end for :meth:`NotebookDriver.run`."""
    nb = {"cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None, "outputs": [],
                     "source": src} for i, src in enumerate([*cells, ""])],
          "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")


@dataclass
class Lab:
    url: str
    token: str
    run: LabRun
    log: Path

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(f"{self.url}{path}", method=method, data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else {}


@contextlib.contextmanager
def lab_server(run_dir: Path, name: str, cells: list[str], log: Path, env: dict[str, str] | None = None):
    """JupyterLab serving ``run_dir`` with notebook ``name`` of ``cells``; yields a :class:`Lab`."""
    base = prepare_lab_run(run_dir)
    run = LabRun(base.root, base.root / name)
    write_notebook(run.notebook, cells)
    with serve_lab(run, run_dir / "home", log, env) as lab:
        yield lab


@contextlib.contextmanager
def serve_lab(run: LabRun, home: Path, log: Path, env: dict[str, str] | None = None):
    """JupyterLab for a prepared ``run`` with an empty ``home`` (no user settings), its log in ``log``;
    yields a :class:`Lab` once it answers, stops it (and its kernels) after."""
    full_env = dict(os.environ)
    full_env.update({
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), full_env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "IPYTHONDIR": str(home / "ipython"), "VECBOOK_CACHE_DIR": str(home / "cache"),
    })
    full_env.update(env or {})
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [*run.command(port=port, allow_root=True, quiet=False), "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=full_env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=run.root, start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, run, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                lab.api("GET", "/api/status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not answer within 90 s:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.5)
        yield lab
    finally:
        proc.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this function started
            proc.wait(timeout=10)


@dataclass
class Frame:
    t: float
    sent: bool  # browser -> server
    size: int
    head: str


@dataclass
class NotebookDriver:
    """A notebook open in a chromium page, with every websocket frame recorded."""

    page: object
    lab: Lab
    frames: list[Frame] = field(default_factory=list)
    _n: int = 0

    def record(self) -> None:
        def on_ws(ws):
            def add(payload, sent):
                data = payload if isinstance(payload, (bytes, bytearray)) else payload.encode("utf-8", "surrogatepass")
                self.frames.append(Frame(time.monotonic(), sent, len(data), data[:120].decode("utf-8", "replace")))

            ws.on("framesent", lambda p: add(p, True))
            ws.on("framereceived", lambda p: add(p, False))

        self.page.on("websocket", on_ws)

    def open(self) -> None:
        page, lab = self.page, self.lab
        lab.api("POST", "/api/sessions", {"path": lab.run.notebook.name, "name": lab.run.notebook.name, "type": "notebook",
                                          "kernel": {"name": "python3"}})
        page.goto(f"{lab.url}{lab.run.url_path}?token={lab.token}")
        page.wait_for_selector(".jp-Notebook", timeout=90_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
        time.sleep(1.5)  # Lab settles on its kernel
        left = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
        if left.count():
            left.first.click()  # more room for the widgets

    def run(self, code: str, timeout: float = 120.0, wait: bool = True) -> str:
        """Type ``code`` into the last cell, run it (Shift+Enter), and return what it printed after the marker."""
        return self._run(code, timeout, wait)[0]

    def answer_time(self, code: str, timeout: float = 120.0) -> float:
        """Seconds from Shift+Enter on ``code`` (typed beforehand) to its output shown: the kernel's answer as a user sees it."""
        return self._run(code, timeout, True)[1]

    def _run(self, code: str, timeout: float, wait: bool) -> tuple[str, float]:
        self._n += 1
        marker = f"@@done{self._n}@@"
        source = f"{code}\nprint({marker!r})" if wait else code
        page = self.page
        editor = page.locator(".jp-Notebook .jp-Cell").last.locator(".cm-content")
        editor.click()
        page.keyboard.press("Control+a")
        page.keyboard.press("Delete")
        page.keyboard.insert_text(source)
        t = time.perf_counter()
        page.keyboard.press("Shift+Enter")
        if not wait:
            return "", 0.0
        page.wait_for_function("(m) => Array.from(document.querySelectorAll('.jp-OutputArea-output')).some(e => e.innerText.includes(m))",
                               arg=marker, timeout=timeout * 1000, polling=10)
        answered = time.perf_counter() - t
        return page.evaluate("""(m) => { const out = Array.from(document.querySelectorAll('.jp-OutputArea-output'))
                                 .filter(e => e.innerText.includes(m)).pop(); return out.innerText.split(m)[0]; }""", marker), answered

    def save(self) -> None:
        save_notebook(self.page, self.lab.run.notebook)

    def value(self, expr: str, timeout: float = 120.0):
        """The JSON value of a Python expression, evaluated in the notebook's kernel."""
        text = self.run(f"import json as _json\nprint('@@json@@' + _json.dumps({expr}))", timeout)
        return json.loads(text.split("@@json@@", 1)[1].strip())

    def frames_since(self, t: float) -> list[Frame]:
        return [f for f in self.frames if f.t >= t]


# JavaScript: how many pixels of the map's canvas are drawn (not background), sampled on a grid.
DRAWN_PIXELS = """(sel) => {
    const root = document.querySelector(sel);
    if (!root) return -1;
    let best = -1;
    for (const c of root.querySelectorAll('canvas')) {
        if (c.width < 50 || c.height < 50) continue;
        let ctx = null;
        try { ctx = c.getContext('2d'); } catch (e) { ctx = null; }
        if (!ctx) continue;
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4 * 7) if (d[i + 3] > 0 && (d[i] < 235 || d[i + 1] < 235 || d[i + 2] < 235)) n++;
        best = Math.max(best, n);
    }
    return best;
}"""


FIG = ".vecbook-explorer .vecbook-figure"

# A canvas checksum (what the user sees of the map changes when this does).
CANVAS_SUM = """(sel) => { const root = document.querySelector(sel); let s = 0;
    for (const c of root.querySelectorAll('canvas')) { if (c.width < 50) continue;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 0; i < d.length; i += 4 * 3) s = (s * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) % 1000000007; }
    return s; }"""

# JavaScript, started before an action: the times (ms) at which the map's canvas changed in the next
# ``ms`` milliseconds, checked every animation frame (the last one is when the action's result was drawn;
# more than one means intermediate frames, e.g. new colours drawn over old values).
CANVAS_CHANGES = f"""async ([sel, ms]) => {{ const sum = {CANVAS_SUM};
    const t0 = performance.now(), out = []; let last = sum(sel);
    while (performance.now() - t0 < ms) {{ await new Promise((r) => requestAnimationFrame(r));
        const now = sum(sel); if (now !== last) {{ out.push(Math.round(performance.now() - t0)); last = now; }} }}
    return out; }}"""

# Where the map's canvas is drawn on (any pixel not near-white), on a 48 x 48 grid: the layout's shape,
# whatever the points' colours (compare two with ``overlap``).
CANVAS_MASK = """(sel) => { const n = 48, out = new Array(n * n).fill(0);
    for (const c of document.querySelector(sel).querySelectorAll('canvas')) { if (c.width < 50) continue;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let y = 0; y < c.height; y += 2) for (let x = 0; x < c.width; x += 2) { const i = 4 * (y * c.width + x);
            if (d[i + 3] > 0 && d[i] + d[i + 1] + d[i + 2] < 700) out[Math.floor(y * n / c.height) * n + Math.floor(x * n / c.width)] = 1; } }
    return out; }"""


def overlap(a: list[int], b: list[int]) -> float:
    """Intersection over union of two ``CANVAS_MASK`` grids."""
    both = sum(x and y for x, y in zip(a, b))
    either = sum(x or y for x, y in zip(a, b))
    return both / either if either else 1.0


def save_notebook(page, notebook: Path, timeout: float = 30.0) -> None:
    """Save the open notebook from Lab's File menu, and wait until the file holds the cells' outputs.

    Not Ctrl+S: focus in a widget's input keeps Lab's shortcuts from Lab, and a click on the
    notebook does not take the focus from it."""
    page.locator(".lm-MenuBar-itemLabel", has_text="File").click()
    page.locator(".lm-Menu-itemLabel", has_text="Save Notebook").first.click()
    deadline = time.monotonic() + timeout
    while True:
        try:
            cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        except ValueError:  # read while Lab writes it
            cells = []
        if any(c.get("outputs") for c in cells):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the notebook was not saved with its outputs ({len(cells)} cells on disk)")
        time.sleep(0.2)


def wait_drawn(page, timeout: float = 120.0) -> float:
    """Seconds until the map's canvas shows points."""
    start = time.monotonic()
    page.wait_for_selector(FIG, timeout=timeout * 1000)
    while time.monotonic() - start < timeout:
        if page.evaluate(DRAWN_PIXELS, FIG) > 200:
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError("the map drew no points")


def canvas_box(page):
    """The map's canvas on screen (scrolled to the middle of the page first: running a cell scrolls away)."""
    page.evaluate("(sel) => document.querySelector(sel).scrollIntoView({block: 'center'})", FIG)
    time.sleep(0.3)
    boxes = [c.bounding_box() for c in page.locator(f"{FIG} canvas").all()]
    return max((b for b in boxes if b), key=lambda b: b["width"] * b["height"])


def drawn_point_near_centre(page, dx: float = 0.0, dy: float = 0.0):
    """Page coordinates of a drawn (non-background) pixel closest to the canvas centre moved by (dx, dy) CSS pixels."""
    return page.evaluate("""([sel, dx, dy]) => { const c = Array.from(document.querySelector(sel).querySelectorAll('canvas'))
            .sort((a, b) => b.width * b.height - a.width * a.height)[0];
        const r = c.getBoundingClientRect(), ctx = c.getContext('2d'), sx = c.width / r.width, sy = c.height / r.height;
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let best = null, bestD = 1e18;
        for (let y = 0; y < c.height; y += 2) for (let x = 0; x < c.width; x += 2) {
            const i = 4 * (y * c.width + x);
            if (d[i + 3] > 0 && d[i] < 200 && d[i + 1] < 200) {
                const dd = (x - c.width / 2 - dx * sx) ** 2 + (y - c.height / 2 - dy * sy) ** 2;
                if (dd < bestD) { bestD = dd; best = [x, y]; } } }
        return best && {x: r.left + best[0] / sx, y: r.top + best[1] / sy}; }""", [FIG, dx, dy])


# JavaScript: resolves once the page has drawn two more animation frames.
NEXT_FRAMES = "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"


def point_at(page, x: float, y: float) -> None:
    """Move the pointer to (x, y) as a hand does (a few steps), and return once the map has drawn a frame with it there.

    Why before every press on the map: its pan & zoom camera (dom-2d-camera in jupyter-scatter)
    reads the pointer once per animation frame. A pointer that jumps and presses within one frame
    (``page.mouse.click`` when the page is slow, e.g. 200k points drawn by software WebGL under
    load) is taken as a drag from where the pointer was last seen: the view pans away (a blank
    canvas), and the long redraw of that pan holds the button down past regl-scatterplot's
    500 ms long-click limit, so the click selects nothing.
    """
    page.mouse.move(x, y, steps=5)
    page.evaluate(NEXT_FRAMES)


def click_at(page, x: float, y: float) -> None:
    """A user's click at (x, y): the pointer gets there first (:func:`point_at`), then the button goes down and up."""
    point_at(page, x, y)
    page.mouse.down()
    page.mouse.up()


def lasso(page, cx: float, cy: float, r: float, back_to_pan: bool = True) -> None:
    """The toolbar's lasso button, then a circle drawn with the mouse, then (``back_to_pan``) pan & zoom again."""
    page.locator(f"{FIG} [title='Activate lasso selection']").click()
    point_at(page, cx + r, cy)
    page.mouse.down()
    for i in range(1, 41):
        a = 2 * math.pi * i / 40
        page.mouse.move(cx + r * math.cos(a), cy + r * math.sin(a), steps=2)
    page.mouse.up()
    if back_to_pan:
        page.locator(f"{FIG} [title='Activate pan & zoom']").click()
