"""The page's JavaScript CPU profile around one action (Chrome DevTools protocol), for the benches.

    with js_profile(page, Path("open-1000000.cpuprofile")) as summary:
        ...  # the action
    print(summary.text)

The file opens in Chrome DevTools (Performance tab, "Load profile"); ``summary.text`` names
the functions that took the main thread's time, by self time, and how long it was busy.
"""

from __future__ import annotations

import collections
import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

_NOT_WORK = {"(idle)", "(root)"}


@dataclass
class Summary:
    text: str = ""


@contextlib.contextmanager
def js_profile(page, path: Path, interval_us: int = 500, top: int = 8):
    """Profile the page's main thread while the block runs; write ``path``; fill the yielded summary."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Profiler.enable")
    cdp.send("Profiler.setSamplingInterval", {"interval": interval_us})
    cdp.send("Profiler.start")
    summary = Summary()
    try:
        yield summary
    finally:
        profile = cdp.send("Profiler.stop")["profile"]
        cdp.detach()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(profile))
        summary.text = summarize(profile, top)


def summarize(profile: dict, top: int = 8) -> str:
    """'busy N ms of M ms: f (file) a ms, ...': self time per function, the idle time left out."""
    nodes = {node["id"]: node["callFrame"] for node in profile["nodes"]}
    deltas = profile["timeDeltas"][1:] + [0]  # a sample's time is the gap to the next one
    spent: collections.Counter = collections.Counter()
    for node_id, delta in zip(profile["samples"], deltas):
        frame = nodes[node_id]
        if frame["functionName"] not in _NOT_WORK:
            url = frame["url"]  # an anywidget's module (jupyter-scatter's) is loaded from a blob: URL
            where = "widget module" if url.startswith("blob:") else url.rsplit("/", 1)[-1].split("?")[0][:24]
            spent[f"{frame['functionName'] or '(anonymous)'}{f' ({where})' if where else ''}"] += delta / 1000
    total = (profile["endTime"] - profile["startTime"]) / 1000
    busy = sum(spent.values())
    return f"busy {busy:.0f} ms of {total:.0f} ms: " + ", ".join(f"{name} {ms:.0f} ms" for name, ms in spent.most_common(top))
