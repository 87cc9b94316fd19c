"""The soak benchmark's short form (issue 8): bench/soak.py for 20 s against its own live server.

Measures the peak for 3 s, then holds 80 % of it with the mixed load (documents in every format,
catalogue, SPARQL examples by GET and POST, dumps, hostile requests) and a runaway query every
8 s (stopped at the 2 s time limit: the documented 503). Requires: no wrong answer, no
connection error, the load held, RSS of the server's process tree flat, nothing in the server's
log. The p99 drift and the load actually sent are printed, not asserted (20 s on a shared CI
machine is noise);
`python bench/soak.py --minutes 30` is the real measurement (SECURITY.md has its figures).
"""
from __future__ import annotations

import io
import sys

from server.config import PROJECT_ROOT

from .test_fuzz_support import WatchedServer

sys.path.insert(0, str(PROJECT_ROOT))
from bench import soak  # noqa: E402


def test_soak_short(built, settings):
    server = WatchedServer(settings, workers=2, env={"LODPUB_QUERY_TIMEOUT": "2",
                                                     "LODPUB_MAX_CONCURRENT_QUERIES_PER_CLIENT": "64"})
    log = io.StringIO()
    try:
        report = soak.run(server.url, server.process.pid, seconds=20, window=5, peak_seconds=3, concurrency=8,
                          runaway_every=8, seed=1, log=log)
    finally:
        server.stop()
    print("\n" + log.getvalue())
    print({k: v for k, v in report.items() if k != "windows"})
    statuses = {}
    for w in report["windows"]:
        for k, v in w["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    print("statuses:", dict(sorted(statuses.items())))
    assert report["errors"] == 0, [w["error_samples"] for w in report["windows"]] + report["peak"]["error_samples"]
    # Timing (p99 drift, whether the load generator kept up) is measured by bench/soak.py run by
    # hand, not asserted here: 20 s on a shared machine is noise, and pytest has no timed tests.
    timing = ("p99 drift", "load not held")
    assert not [p for p in report["problems"] if not p.startswith(timing)], report["problems"]
    assert report["answers"] > 500
    assert any(w["runaway_s"] for w in report["windows"]), "the runaway queries were answered (503)"
    assert not server.errors, "\n".join(server.errors[:60])
