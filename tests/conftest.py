"""Loads each backend's conformance plugin (tests/backends/*.py); in CI, a skip is a failure.

A test skips when a part it needs is missing here (chromium, an extra, a server). On a
developer's machine that is a note; in CI (``CI=true``, set by ``.ci/run``) every part is
installed by the run itself, so a skip would hide a test that never ran: the run fails and
names it. The one accepted reason is a live suite's server URL that was not given (no
such server runs on these machines).
"""

import os

from tests.backends import modules

pytest_plugins = modules()

IN_CI = os.environ.get("CI") == "true"
LIVE_SUITE_SKIP = "to run the suite against a live"  # "set VECBOOK_ES_URL to run the suite against a live Elasticsearch"


def _reason(report) -> str:
    longrepr = report.longrepr
    return longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)


def pytest_sessionfinish(session, exitstatus):
    if not IN_CI:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    hidden = [r for r in skipped if LIVE_SUITE_SKIP not in _reason(r)]
    if not hidden:
        return
    reporter.section("skipped in CI (CI installs every part: these tests never ran)", sep="=", red=True)
    for report in hidden[:50]:
        reporter.write_line(f"{report.nodeid or report.fspath}: {_reason(report)}")
    if len(hidden) > 50:
        reporter.write_line(f"... and {len(hidden) - 50} more")
    session.exitstatus = 1
