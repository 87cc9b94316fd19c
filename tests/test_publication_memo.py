"""A release's memo computes each value once, even when many requests ask for it at once."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from server.publication import Publication


def test_concurrent_first_requests_share_one_computation(built, settings):
    publication = Publication(settings, built, built.open_store())
    calls = []
    started = threading.Barrier(8)

    def compute():
        calls.append(threading.get_ident())
        time.sleep(0.2)  # long enough for every other thread to arrive meanwhile
        return object()

    def ask(_):
        started.wait()
        return publication.memo(("document", "x"), compute)

    with ThreadPoolExecutor(8) as pool:
        values = list(pool.map(ask, range(8)))
    assert len(calls) == 1
    assert all(v is values[0] for v in values)
    # another key is computed on its own, and a value once computed is not computed again
    assert publication.memo(("document", "y"), lambda: 2) == 2
    assert publication.memo(("document", "x"), compute) is values[0] and len(calls) == 1
