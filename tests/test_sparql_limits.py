"""Limits of /sparql on live servers started with low limits: the time limit (a runaway query is
stopped while others are answered), the row cap, request sizes, per-client concurrency."""
from __future__ import annotations

import multiprocessing
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from .test_sparql_support import SparqlServer, csv_rows, parse_graph, parse_results

#: 1626^3 solutions before the first answer: runs for minutes unless stopped
RUNAWAY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
#: a property-path runaway, as ORDER BY must see every solution before the first
RUNAWAY_PATH = "SELECT ?a ?d WHERE { ?a (<urn:x>|!<urn:x>)* ?b . ?c (<urn:x>|!<urn:x>)* ?d } ORDER BY ?a ?d"
SIMPLE = "ASK { ?s ?p ?o }"


#: a runaway for a remote store: Virtuoso refuses the two above up front (the cartesian COUNT from
#: its cost estimate, the path as unsupported), so they would not keep an evaluator busy
REMOTE_RUNAWAY = 'SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f FILTER(REGEX(CONCAT(STR(?c), STR(?f)), "zz+y")) }'


def _runaway(server, query: str = RUNAWAY) -> str:
    """A query that really runs until it is stopped, on this server's store."""
    return REMOTE_RUNAWAY if server.remote else query


def _live(settings, store_env=None, **env) -> SparqlServer:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update({k: str(v) for k, v in env.items()})
    try:
        return SparqlServer(settings, env=store_env)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def timed(built, settings, store_env):
    """A server with a 2 s time limit (and room enough in memory that the time limit, not the
    memory cap, is what stops the runaway queries)."""
    live = _live(settings, store_env, LODPUB_QUERY_TIMEOUT=2, LODPUB_SPARQL_CACHE_BYTES=0, LODPUB_SPARQL_MEMORY_MB=8192,
                 LODPUB_MAX_CONCURRENT_QUERIES_PER_CLIENT=4)  # the tests run four runaways at once
    yield live
    live.stop()


@pytest.fixture(scope="module")
def limited(built, settings, store_env):
    """A server with 5 result rows and 4 kB requests (and a generous time limit: a loaded
    machine must not turn these tests into timeouts)."""
    live = _live(settings, store_env, LODPUB_QUERY_TIMEOUT=60, LODPUB_MAX_RESULT_ROWS=5, LODPUB_MAX_REQUEST_BYTES=4096,
                 LODPUB_SPARQL_CACHE_BYTES=0)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def one_at_a_time(built, settings, store_env):
    """A server allowing one query at a time per client, with a 2 s time limit."""
    live = _live(settings, store_env, LODPUB_QUERY_TIMEOUT=2, LODPUB_MAX_CONCURRENT_QUERIES_PER_CLIENT=1,
                 LODPUB_SPARQL_CACHE_BYTES=0)
    yield live
    live.stop()


@pytest.mark.parametrize("runaway", [RUNAWAY, RUNAWAY_PATH], ids=["cartesian-count", "path-order-by"])
def test_runaway_query_is_stopped_while_a_simple_query_answers_quickly(timed, runaway):
    url = timed.url + "/sparql"
    requests.get(url, params={"query": SIMPLE})  # warm up the evaluators
    outcome = {}

    def slow():
        started = time.monotonic()
        outcome["response"] = requests.get(url, params={"query": _runaway(timed, runaway)}, timeout=30)
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.2)
    quick = []
    for _ in range(3):  # every simple query during the runaway one answers fast
        started = time.monotonic()
        response = requests.get(url, params={"query": SIMPLE}, timeout=30)
        quick.append(time.monotonic() - started)
        assert response.status_code == 200 and response.json()["boolean"] is True
    thread.join()
    assert max(quick) < 1.0, quick
    response = outcome["response"]
    assert response.status_code == 503
    problem = response.json()
    assert problem["title"] == "Query timed out"
    assert problem["time_limit_seconds"] == 2.0
    assert "time limit of 2 seconds" in problem["detail"]
    assert 1.9 < outcome["seconds"] < 6.0, outcome["seconds"]


@pytest.fixture(scope="module")
def one_evaluator(built, settings):
    """One evaluator, a 1 s time limit and a 6 s queue; every query goes to the evaluator."""
    live = _live(settings, None, LODPUB_SPARQL_EVALUATORS=1, LODPUB_QUERY_TIMEOUT=1, LODPUB_SPARQL_QUEUE_TIMEOUT=6,
                 LODPUB_SPARQL_CACHE_BYTES=0, LODPUB_INLINE_QUERY_MAX_BINDINGS=0,
                 LODPUB_MAX_CONCURRENT_QUERIES_PER_CLIENT=16)
    yield live
    live.stop()


def test_a_query_waits_in_line_longer_than_the_time_limit_and_is_answered(one_evaluator):
    """Waiting for an evaluator is bounded by the queue limit, not by the time limit: behind two
    runaways (each stopped at 1 s) a simple query waits about 2 s and is answered."""
    from .test_operations import samples
    url = one_evaluator.url + "/sparql"
    assert requests.get(url, params={"query": SIMPLE}, timeout=30).status_code == 200
    before = samples(one_evaluator.url)
    with ThreadPoolExecutor(3) as pool:
        runaways = []
        for _ in range(2):
            runaways.append(pool.submit(requests.post, url, data={"query": RUNAWAY}, timeout=30))
            time.sleep(0.15)  # in line in this order
        started = time.monotonic()
        simple = pool.submit(requests.post, url, data={"query": SIMPLE}, timeout=30).result()
        waited = time.monotonic() - started
        assert [r.result().json()["title"] for r in runaways] == ["Query timed out"] * 2
    assert simple.status_code == 200, simple.text
    assert simple.json()["boolean"] is True
    assert 1.3 < waited < 6, waited
    after = samples(one_evaluator.url)  # the three waits are in the queue's histogram
    count, total = ("lodpub_sparql_queue_wait_seconds_count", ()), ("lodpub_sparql_queue_wait_seconds_sum", ())
    assert after[count] - before[count] == 3
    assert after[total] - before[total] > 1.3 + 0.7  # the simple query's wait, and the second runaway's
    assert after[("lodpub_sparql_busy_total", ())] == 0


def test_a_query_that_waits_past_the_queue_limit_is_told_the_server_is_busy(built, settings):
    """The queue limit may also be shorter than the time limit: behind a runaway that holds the
    one evaluator for 3 s, a query waits 0.5 s and is told so."""
    live = _live(settings, None, LODPUB_SPARQL_EVALUATORS=1, LODPUB_QUERY_TIMEOUT=3, LODPUB_SPARQL_QUEUE_TIMEOUT=0.5,
                 LODPUB_SPARQL_CACHE_BYTES=0, LODPUB_INLINE_QUERY_MAX_BINDINGS=0,
                 LODPUB_MAX_CONCURRENT_QUERIES_PER_CLIENT=4)
    try:
        url = live.url + "/sparql"
        assert requests.get(url, params={"query": SIMPLE}, timeout=30).status_code == 200
        with ThreadPoolExecutor(1) as pool:
            runaway = pool.submit(requests.post, url, data={"query": RUNAWAY}, timeout=30)
            time.sleep(0.3)
            started = time.monotonic()
            busy = requests.post(url, data={"query": SIMPLE}, timeout=30)
            waited = time.monotonic() - started
            assert runaway.result().json()["title"] == "Query timed out"
        from .test_operations import samples
        counted = samples(live.url)[("lodpub_sparql_busy_total", ())]
    finally:
        live.stop()
    assert counted == 1
    assert busy.status_code == 503
    problem = busy.json()
    assert problem["title"] == "Server busy"
    assert problem["queue_limit_seconds"] == 0.5
    assert "0.5 seconds" in problem["detail"]
    assert busy.headers["Retry-After"] == "2"
    assert 0.4 < waited < 2.5, waited


def test_after_timeouts_the_server_still_answers(timed):
    url = timed.url + "/sparql"
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda _: requests.post(url, data={"query": _runaway(timed)}, timeout=30).status_code,
                                 range(4)))
    assert statuses == [503] * 4
    started = time.monotonic()
    for _ in range(20):
        assert requests.get(url, params={"query": SIMPLE}).status_code == 200
    assert time.monotonic() - started < 5


def test_row_cap_is_explicit_never_silent(limited):
    url = limited.url + "/sparql"
    query = "SELECT ?s ?p ?o WHERE { ?s ?p ?o }"
    response = requests.get(url, params={"query": query})
    assert response.status_code == 200
    assert response.headers["X-Result-Truncated"] == "true"
    assert response.headers["X-Result-Row-Limit"] == "5"
    assert "result-row-limit" in response.headers["Link"]
    data = response.json()
    assert len(data["results"]["bindings"]) == 5
    assert data["head"]["link"] == [limited.url + "/sparql#result-row-limit"]
    described = requests.get(limited.url + "/sparql?lang=en", headers={"Accept": "text/html"}).text  # where it leads
    assert re.search(r'<p [^>]*id="result-row-limit"[^>]*>[^<]*\b5\b', described)
    response = requests.get(url, params={"query": query, "format": "xml"})
    assert response.headers["X-Result-Truncated"] == "true"
    assert b'<link href="' in response.content
    assert len(list(parse_results(response.content, "application/sparql-results+xml"))) == 5
    response = requests.get(url, params={"query": query, "format": "csv"})
    header, rows = csv_rows(response.content)
    assert header == ["s", "p", "o"] and sum(rows.values()) == 5
    response = requests.get(url, params={"query": "CONSTRUCT WHERE { ?s ?p ?o }"})
    assert response.headers["X-Result-Truncated"] == "true"
    assert len(parse_graph(response.content, "text/turtle")) == 5
    assert response.content.startswith(b"# Truncated")
    # exactly the cap, or under it: not truncated
    for limit in (5, 4):
        response = requests.get(url, params={"query": query + f" LIMIT {limit}"})
        assert "X-Result-Truncated" not in response.headers
        assert "link" not in response.json()["head"]
        assert len(response.json()["results"]["bindings"]) == limit


def test_request_size_limits(limited):
    url = limited.url + "/sparql"
    big = "ASK { ?s ?p ?o }" + " " * 5000
    response = requests.post(url, data=big.encode(), headers={"Content-Type": "application/sparql-query"})
    assert response.status_code == 413
    response = requests.post(url, data={"query": big})
    assert response.status_code == 413
    # a GET over the size limit: 414 from the endpoint; over the HTTP server's line limit: 414 too
    response = requests.get(url, params={"query": big})
    assert response.status_code == 414
    response = requests.get(url, params={"query": "ASK {}" + " " * 20000})
    assert response.status_code == 414
    # under the limit: answered
    assert requests.post(url, data=SIMPLE.encode(), headers={"Content-Type": "application/sparql-query"}).status_code == 200


def test_per_client_concurrency_limit_answers_429_with_retry_after(one_at_a_time):
    url = one_at_a_time.url + "/sparql"
    requests.get(url, params={"query": SIMPLE})
    with ThreadPoolExecutor(3) as pool:
        slow = pool.submit(requests.post, url, data={"query": _runaway(one_at_a_time)}, timeout=30)
        time.sleep(0.3)
        others = [pool.submit(requests.get, url, params={"query": SIMPLE + f" # {i}"}, timeout=30) for i in range(2)]
        responses = [f.result() for f in others]
        assert slow.result().status_code == 503
    for response in responses:
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "1"
        assert response.json()["limit"] == 1
    # once the running query is over, the client may query again
    assert requests.get(url, params={"query": SIMPLE}).status_code == 200


def test_a_query_that_needs_too_much_memory_is_stopped(built, settings):
    """The evaluators' address space is capped (LODPUB_SPARQL_MEMORY_MB): a query that sorts a
    huge join is stopped when it runs out, well before its time limit, and answered 503.
    Embedded store only: with a remote store the memory is the store's, capped by its own
    settings (Virtuoso: MaxQueryMem)."""
    live = _live(settings, LODPUB_SPARQL_MEMORY_MB=1024, LODPUB_QUERY_TIMEOUT=120, LODPUB_SPARQL_CACHE_BYTES=0)
    try:
        url = live.url + "/sparql"
        started = time.monotonic()
        response = requests.post(url, data={"query": "SELECT ?a ?d ?g WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i } "
                                                     "ORDER BY ?a ?d ?g"}, timeout=150)
        assert response.status_code == 503
        assert response.json()["memory_limit_mib"] == 1024
        assert time.monotonic() - started < 60
        assert requests.get(url, params={"query": SIMPLE}).json()["boolean"] is True
    finally:
        live.stop()


@pytest.mark.parametrize("media_type", ["application/sparql-results+json", "application/sparql-results+xml",
                                        "text/csv", "text/tab-separated-values"])
def test_an_evaluator_writes_an_answer_in_about_twice_its_size(media_type):
    """At the row cap an answer is megabytes (5.4 MB for example 01 at 1M triples), written in
    an evaluator while Oxigraph holds the sorted solutions: the writer keeps each row encoded
    and joins them once, instead of one structure of every row, its text and copies of it (4.6
    to 6.3 times the answer before)."""
    import tracemalloc

    import pyoxigraph as ox

    from server.sparql_results import write_solutions
    arabic = "اللجنة الاقتصادية والاجتماعية لغربي آسيا " * 5
    rows = [[ox.Literal(str(i), datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer")),
             ox.NamedNode(f"https://w3id.org/un-meetings/id/point/p{i}"), ox.Literal(arabic, language="ar"),
             None if i % 7 == 0 else ox.Literal("Economic and Social Commission for Western Asia", language="en")]
            for i in range(5000)]
    tracemalloc.start()
    try:
        body = write_solutions(["position", "point", "arabic", "english"], rows, media_type, "urn:x")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert body.count("لغربي آسيا".encode()) == 5 * 5000  # every row written
    assert peak <= 3 * len(body)


def _hold_slots(folder: str, limit: int, wanted: int, ready, release) -> None:
    from server.query_limits import ClientLimiter, TooManyQueries
    limiter = ClientLimiter(Path(folder), limit)
    taken = 0
    with ExitStack() as stack:
        for _ in range(wanted):
            try:
                stack.enter_context(limiter.slot("203.0.113.7"))
                taken += 1
            except TooManyQueries:
                break
        ready.put(taken)
        release.wait(30)


def test_client_slots_are_counted_across_processes_and_threads(tmp_path):
    """The per-client limit holds across worker processes (lock files) and among one process's
    threads (each slot given to one of them at a time), whichever slot each starts from."""
    from server.query_limits import ClientLimiter, TooManyQueries
    context = multiprocessing.get_context("fork")
    ready, release = context.Queue(), context.Event()
    other = context.Process(target=_hold_slots, args=(str(tmp_path), 5, 3, ready, release))
    other.start()
    try:
        assert ready.get(timeout=30) == 3  # another worker holds 3 of the client's 5 slots
        limiter = ClientLimiter(tmp_path, 5)
        entered, refused = [], []
        barrier = threading.Barrier(4)

        def query():
            try:
                with limiter.slot("203.0.113.7"):
                    entered.append(1)
                    barrier.wait(10)  # hold the slot until every thread has tried
            except TooManyQueries:
                refused.append(1)
                barrier.wait(10)

        threads = [threading.Thread(target=query) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)
        assert (len(entered), len(refused)) == (2, 2)
        with limiter.slot("198.51.100.1"):  # another client counts apart
            pass
    finally:
        release.set()
        other.join(10)
    with ExitStack() as stack:  # the other process is gone: its slots are free again
        for _ in range(5):
            stack.enter_context(limiter.slot("203.0.113.7"))
        with pytest.raises(TooManyQueries):
            stack.enter_context(limiter.slot("203.0.113.7"))


def test_a_server_leaves_no_lock_files_behind(built, settings):
    """The per-client lock files live in a folder of the server's own, named after its master:
    removed when the server stops, and by the next server when one was killed outright."""
    import shutil
    import tempfile
    tmp = Path(tempfile.mkdtemp(prefix="lp-", dir="/tmp"))  # short: evaluator sockets are made there too
    counted = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"  # an evaluator's query: it takes a slot

    def folders() -> list[str]:
        return sorted(p.name for p in tmp.glob("lodpub-sparql-clients-*"))

    started = []

    def start() -> SparqlServer:
        server = SparqlServer(settings, env={"TMPDIR": str(tmp)})
        started.append(server)
        assert requests.get(server.url + "/sparql", params={"query": counted}, timeout=30).status_code == 200
        [folder] = folders()
        assert folder.startswith(f"lodpub-sparql-clients-{os.getuid()}-{server.process.pid}-")
        assert list((tmp / folder).glob("*/*")), "the lock files are in it"
        return server

    try:
        start().stop()
        assert folders() == []
        killed = start()
        killed.process.kill()
        killed.process.wait(10)
        assert len(folders()) == 1
        last = start()  # removes the killed server's folder as it starts
        last.stop()
        assert folders() == []
    finally:
        for server in started:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_process_without_a_server_removes_its_lock_files_at_exit(tmp_path):
    script = ("from pathlib import Path; from server.query_limits import client_limiter\n"
              "limiter = client_limiter(Path('.'), '127.0.0.1:1', 2)\n"
              "with limiter.slot('203.0.113.7'):\n"
              "    assert any(limiter.folder.iterdir())\n"
              "print(limiter.folder)\n")
    import subprocess
    import sys
    from server.config import PROJECT_ROOT
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env={**os.environ, "TMPDIR": str(tmp_path)}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).is_relative_to(tmp_path)
    assert not list(tmp_path.glob("lodpub-sparql-clients-*"))
