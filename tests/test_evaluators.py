"""The SPARQL evaluator pool (server/evaluators.py): real supervisor and evaluator processes on
the session's release; the limits as seen over HTTP are in test_sparql_limits."""
from __future__ import annotations

import json
import multiprocessing
import socket
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests

from server import evaluators
from server.release import STORE_DIR

from .conftest import LiveServer
from .test_sparql_limits import RUNAWAY

ASK = "ASK { ?s ?p ?o }"


def _job(built, query: str, timeout: float) -> dict:
    return {"store": str(built.path / STORE_DIR), "release": str(built.path), "query": query,
            "base": "https://w3id.org/un-meetings/", "default_graphs": [], "named_graphs": [], "union": True,
            "media_type": "application/sparql-results+json", "max_rows": 100, "timeout": timeout,
            "jsonld_profile": "compacted", "link": "urn:x", "base_prefixes": {}}


def _evaluators_of(supervisor_pid: int) -> list[int]:
    return [child.pid for child in psutil.Process(supervisor_pid).children()]


def _wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def pool(built):
    started = evaluators.Pool.start(2, str(built.path / STORE_DIR), keep_environment=False)
    yield started
    started.stop()


def test_an_evaluator_answers_in_the_standard_format(built, pool):
    kind, answer = evaluators.run(_job(built, ASK, 5), 5, pool=pool.path)
    assert kind == "ok"
    assert json.loads(answer["body"]) == {"head": {}, "boolean": True}


def test_at_the_time_limit_the_evaluator_is_killed_and_replaced(built, pool):
    before = _evaluators_of(pool.process.pid)
    assert len(before) == 2
    started = time.monotonic()
    with pytest.raises(evaluators.QueryTimeout):
        evaluators.run(_job(built, RUNAWAY, 1), 1, pool=pool.path)
    assert 0.9 < time.monotonic() - started < 3
    # exactly one of the two was killed (the one running the query), and it was replaced
    assert _wait_for(lambda: len(set(_evaluators_of(pool.process.pid)) - set(before)) == 1
                     and len(_evaluators_of(pool.process.pid)) == 2)
    assert evaluators.run(_job(built, ASK, 5), 5, pool=pool.path)[0] == "ok"


def test_a_query_that_finds_every_evaluator_busy_is_refused_and_withdrawn(built):
    one = evaluators.Pool.start(1, str(built.path / STORE_DIR), keep_environment=False)
    try:
        outcome = {}
        runaway = threading.Thread(target=lambda: outcome.setdefault("runaway", _outcome(
            lambda: evaluators.run(_job(built, RUNAWAY, 3), 3, pool=one.path))))
        runaway.start()
        time.sleep(0.5)
        started = time.monotonic()
        with pytest.raises(evaluators.ServerBusy):  # a query that would run for 3 s, were it taken
            evaluators.run(_job(built, RUNAWAY, 3), 3, pool=one.path, queue_timeout=0.5)
        assert time.monotonic() - started < 1.5
        runaway.join()
        assert outcome["runaway"] == "QueryTimeout"
        # the withdrawn query is never evaluated: the replacement evaluator answers at once
        assert _wait_for(lambda: len(_evaluators_of(one.process.pid)) == 1)
        started = time.monotonic()
        assert evaluators.run(_job(built, ASK, 5), 5, pool=one.path)[0] == "ok"
        assert time.monotonic() - started < 1.0
    finally:
        one.stop()


def _outcome(call) -> str:
    try:
        call()
    except Exception as error:
        return type(error).__name__
    return "answered"


def _evaluator_on(listener: socket.socket, idle_seconds: float, growth_mb: int) -> multiprocessing.Process:
    """An evaluator process serving `listener`, its store opened by its first job (so that a job
    always grows it), replaced once it grew by `growth_mb` and then idled for `idle_seconds`."""
    def serve():
        evaluators.IDLE_GROWTH_MB = growth_mb
        evaluators._serve_jobs(listener, {}, idle_seconds)
    process = multiprocessing.get_context("fork").Process(target=serve, daemon=True)
    process.start()
    return process


def test_an_evaluator_that_grew_and_then_idled_ends_and_one_that_did_not_stays(built, tmp_path):
    listeners, processes = [], []
    for name, growth_mb, job in (("grew", 0, True), ("grew-little", 10_000, True), ("unused", 0, False)):
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(tmp_path / name))
        listener.listen(8)
        listener.setblocking(False)  # as the supervisor's
        listeners.append(listener)
        processes.append(_evaluator_on(listener, 0.5, growth_mb))
        if job:
            kind, answer = evaluators.run(_job(built, ASK, 5), 5, pool=str(tmp_path / name))
            assert kind == "ok" and json.loads(answer["body"])["boolean"] is True
    try:
        grew, grew_little, unused = processes
        grew.join(5)
        assert grew.exitcode == 0, "an evaluator that grew and idled for 0.5 s ends by itself"
        time.sleep(1.5)
        assert grew_little.is_alive(), "one that grew less than IDLE_GROWTH_MB stays"
        assert unused.is_alive(), "one that answered nothing stays"
    finally:
        for process in processes:
            process.kill()
        for listener in listeners:
            listener.close()


def test_stopping_the_pool_ends_every_evaluator_and_removes_its_socket(built):
    started = evaluators.Pool.start(2, str(built.path / STORE_DIR), keep_environment=False)
    processes = [psutil.Process(started.process.pid)] + [psutil.Process(p) for p in _evaluators_of(started.process.pid)]
    started.stop()
    assert _wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes))
    assert not Path(started.folder).exists()


def test_a_server_has_one_pool_for_all_its_workers(built, settings):
    server = LiveServer(settings, workers=3)
    try:
        tree = psutil.Process(server.process.pid).children(recursive=True)
        supervisors = [p for p in tree if "server.evaluators" in " ".join(p.cmdline())
                       and p.parent().pid not in {q.pid for q in tree if "server.evaluators" in " ".join(q.cmdline())}]
        assert len(supervisors) == 1
        assert len(_evaluators_of(supervisors[0].pid)) == settings.sparql_evaluators
        answers = [requests.get(server.url + "/sparql", params={"query": f"{ASK} # {i}"}, timeout=30) for i in range(6)]
        assert [a.json()["boolean"] for a in answers] == [True] * 6
        command = supervisors[0].cmdline()  # python -m server.evaluators SOCKET SIZE STORE
        folder = Path(command[command.index("server.evaluators") + 1]).parent
        assert folder.exists()
    finally:
        server.stop()
    assert _wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in tree))
    assert not folder.exists()


def _supervisor_of(server: LiveServer) -> psutil.Process:
    [supervisor] = [p for p in psutil.Process(server.process.pid).children()
                    if "server.evaluators" in " ".join(p.cmdline())]
    return supervisor


def test_without_its_evaluators_a_server_is_not_ready_and_says_why_until_its_master_restarts_them(built, settings):
    server = LiveServer(settings)
    master = psutil.Process(server.process.pid)
    try:
        assert server.get("/health/ready").json()["checks"]["sparql_evaluators"]["status"] == "pass"
        killed = _supervisor_of(server)
        ended_evaluators = _evaluators_of(killed.pid)
        master.suspend()  # the master would start the pool again within a second: hold it while we look
        try:
            killed.kill()  # its evaluators end with it
            assert _wait_for(lambda: server.get("/health/ready").status_code == 503)
            check = server.get("/health/ready").json()["checks"]["sparql_evaluators"]
            assert check["status"] == "fail" and "PoolUnavailable" in check["message"]
            response = server.get("/sparql", params={"query": ASK + " # after"})
            assert response.status_code == 503 and response.headers["Retry-After"] == "5"
            assert response.json()["title"] == "Query evaluators unavailable"
            assert server.get("/health/live").status_code == 200  # the rest of the site still answers
        finally:
            master.resume()
        assert _wait_for(lambda: server.get("/health/ready").status_code == 200)
        supervisor = _supervisor_of(server)
        assert supervisor.pid != killed.pid
        assert len(_evaluators_of(supervisor.pid)) == settings.sparql_evaluators
        assert _wait_for(lambda: not any(psutil.pid_exists(pid) for pid in ended_evaluators))
        answers = [server.get("/sparql", params={"query": f"{ASK} # again {i}"}) for i in range(4)]
        assert [(a.status_code, a.json()["boolean"]) for a in answers] == [(200, True)] * 4
        pool = [supervisor] + [psutil.Process(pid) for pid in _evaluators_of(supervisor.pid)]
    finally:
        server.stop()
    assert _wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in pool))
