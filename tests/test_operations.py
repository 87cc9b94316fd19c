"""Operations on live servers: /health, Prometheus /metrics (summed over the gunicorn workers),
the JSON access log (one line per request) and the request id."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from .conftest import LiveServer, process_group_members
from .test_sparql_limits import REMOTE_RUNAWAY, RUNAWAY

DOC = "/doc/organization/escwa.ttl"
LOG_FIELDS = {"ts", "method", "path", "route", "status", "duration_ms", "bytes", "client", "release",
              "user_agent", "request_id"}


def live_server(settings, store_env: dict | None = None, **env) -> LiveServer:
    """A LiveServer on `store_env`'s store, with extra LODPUB_* settings."""
    return LiveServer(settings, env={**(store_env or {}), **{k: str(v) for k, v in env.items()}})


@pytest.fixture(scope="module")
def quiet_timed(built, settings, store_env):
    """A server with a 2 s SPARQL time limit and the access log switched off."""
    live = live_server(settings, store_env, LODPUB_QUERY_TIMEOUT=2, LODPUB_SPARQL_CACHE_BYTES=0,
                       LODPUB_SPARQL_MEMORY_MB=8192, LODPUB_ACCESS_LOG=0)
    yield live
    live.stop()


def samples(url: str) -> dict[tuple[str, tuple], float]:
    """/metrics parsed by prometheus_client's own parser: (sample name, sorted labels) → value."""
    response = requests.get(url + "/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    assert response.headers["Cache-Control"] == "no-store"
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def requests_total(values: dict, route: str, status: str, method: str = "GET") -> float:
    return values.get(("lodpub_http_requests_total",
                       (("method", method), ("route", route), ("status", status))), 0.0)


def log_lines(server: LiveServer, request_id: str, prefix: bool = False, expected: int = 1) -> list[dict]:
    """The access-log lines of a request id (or of ids starting with it), once `expected` of
    them have come through the server's pipe (the server writes each before it answers)."""
    pattern = f'"request_id":"{request_id}' + ('' if prefix else '"')
    lines: list[dict] = []
    for _ in range(100):
        lines = [json.loads(line) for line in list(server.output) if line.startswith("{") and pattern in line]
        if len(lines) >= expected:
            break
        time.sleep(0.05)
    return lines


# --------------------------------------------------------------------------------------------
# /health
# --------------------------------------------------------------------------------------------

def test_liveness_answers_and_is_never_cached(server):
    response = server.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "pass"}
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/health/ready", "/health"])
def test_readiness_names_the_release_the_store_and_timed_checks(server, built, path):
    response = server.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["status"] == "pass"
    assert body["release"]["version"] == built.version
    assert body["release"]["created"] == built.manifest["created"]
    assert isinstance(body["store"], str) and body["store"]
    assert set(body["checks"]) == {"release", "store", "sparql_evaluators"}
    for check in body["checks"].values():
        assert check["status"] == "pass" and "message" not in check
        assert isinstance(check["duration_ms"], (int, float)) and check["duration_ms"] >= 0


def test_readiness_fails_with_the_reason_when_the_store_does_not_answer(built, settings):
    with socket.socket() as closed:  # a port nothing listens on: the store is down
        closed.bind(("127.0.0.1", 0))
        store_url = f"http://127.0.0.1:{closed.getsockname()[1]}/sparql"
        live = live_server(settings, LODPUB_STORE_URL=store_url, LODPUB_STORE_TIMEOUT=5)
        try:
            assert live.get("/health/live").status_code == 200
            response = live.get("/health/ready")
            assert response.status_code == 503
            assert response.headers["Cache-Control"] == "no-store"
            assert response.headers["Content-Type"].startswith("application/problem+json")
            body = response.json()  # a problem document, with the members of the 200 answer
            assert body["status"] == 503 and body["title"] == "Not ready" and body["release"] is None
            assert body["detail"].startswith("release: StoreUnavailable") and "store: not checked" in body["detail"]
            assert store_url in body["store"]
            assert body["checks"]["release"]["status"] == "fail"
            assert "StoreUnavailable" in body["checks"]["release"]["message"]
            assert body["checks"]["store"]["status"] == "fail"
            page = live.get("/health", headers={"Accept": "text/html"})
            assert page.status_code == 503 and page.headers["Content-Type"].startswith("text/html")
            assert "Not ready" in page.text
            before = samples(live.url)[("lodpub_store_errors_total", ())]
            assert live.get("/doc/organization/escwa").status_code == 503
            assert samples(live.url)[("lodpub_store_errors_total", ())] == before + 1
        finally:
            live.stop()


# --------------------------------------------------------------------------------------------
# /metrics
# --------------------------------------------------------------------------------------------

def test_requests_are_counted_by_route_and_status_over_both_workers(server):
    marker = uuid.uuid4().hex
    before = samples(server.url)

    def fetch(i: int) -> int:  # a new connection each time, so that both workers answer
        return requests.get(server.url + DOC, headers={"X-Request-Id": f"{marker}-{i}"}, timeout=30).status_code

    sent, workers = 0, set()
    with ThreadPoolExecutor(8) as pool:
        while len(workers) < 2 and sent < 400:
            assert set(pool.map(fetch, range(sent, sent + 40))) == {200}
            sent += 40
            workers = {line["pid"] for line in log_lines(server, marker, prefix=True, expected=sent)}
    assert len(workers) == 2, "every request went to one worker: nothing shows the sum over workers"
    missing = requests.get(server.url + f"/no-such-path-{marker}", timeout=30)
    assert missing.status_code == 404
    after = samples(server.url)

    route = "/doc/<path:rest>"  # the URL rule, never the path asked for
    assert requests_total(after, route, "200") - requests_total(before, route, "200") == sent
    assert requests_total(after, "unmatched", "404") - requests_total(before, "unmatched", "404") == 1
    count = ("lodpub_http_request_duration_seconds_count", (("route", route),))
    assert after[count] - before.get(count, 0) == sent
    assert marker not in requests.get(server.url + "/metrics", timeout=30).text


def test_the_release_served_is_reported(server, built):
    assert server.get("/health/ready").status_code == 200  # as a load balancer keeps asking
    values = samples(server.url)
    assert values[("lodpub_release_info", (("version", built.version),))] == 1
    assert ("lodpub_store_errors_total", ()) in values


def test_a_sparql_time_out_is_counted(quiet_timed):
    url = quiet_timed.url
    assert requests.get(url + "/sparql", params={"query": "ASK { ?s ?p ?o }"}, timeout=60).status_code == 200
    before = samples(url)[("lodpub_sparql_timeouts_total", ())]
    runaway = REMOTE_RUNAWAY if quiet_timed.remote else RUNAWAY
    response = requests.post(url + "/sparql", data={"query": runaway}, timeout=60)
    assert response.status_code == 503 and response.json()["title"] == "Query timed out"
    after = samples(url)
    assert after[("lodpub_sparql_timeouts_total", ())] == before + 1
    assert requests_total(after, "/sparql", "503", "POST") >= 1


def test_the_metrics_folders_of_killed_servers_are_removed_by_the_next_start(built, settings):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    # what a SIGKILLed master leaves (gunicorn's on_exit never ran), and the folder of a live one
    orphan = Path(tempfile.mkdtemp(prefix=f"lodpub-metrics-{int(ended.stdout)}-"))
    (orphan / "counter_1.db").write_bytes(b"")
    alive = Path(tempfile.mkdtemp(prefix=f"lodpub-metrics-{os.getpid()}-"))
    live = LiveServer(settings, workers=1)
    try:
        assert not orphan.exists()
        assert alive.is_dir()
        assert list(Path(tempfile.gettempdir()).glob(f"lodpub-metrics-{live.process.pid}-*"))
    finally:
        live.stop()
        shutil.rmtree(alive)


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _is_evaluator(pid: int) -> bool:
    return b"server.evaluators" in Path(f"/proc/{pid}/cmdline").read_bytes()


def test_a_stopped_server_leaves_no_worker_behind(built, settings):
    live = LiveServer(settings)
    try:
        master, workers = _started_workers(live, built.path / "store")  # (the second is forked up to 0.1 s later)
        pools = [pid for pid in _children(master) if _is_evaluator(pid)]
        assert len(workers) == 2 and len(pools) == 1  # the SPARQL evaluators' supervisor (server/evaluators.py)
        evaluators = _children(pools[0])
        assert len(evaluators) == settings.sparql_evaluators
    finally:
        live.stop()  # also when an assertion above failed: a server left running outlives the tests
    for pid in workers + pools + evaluators:  # rocksdb's exit handler used to hang workers (server/serving.py)
        deadline = time.monotonic() + 5
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(pid), f"process {pid} is still there"
    assert "was sent SIG" not in live.log, live.log


def test_every_server_process_keeps_few_malloc_arenas(built, settings):
    """The evaluator pool is a program of its own: it gets the arena cap through its environment
    (the master and the workers it forks get it from mallopt, tested below)."""
    live = LiveServer(settings)
    try:
        master = live.process.pid
        pool = next(pid for pid in _children(master) if _is_evaluator(pid))
        evaluators = _children(pool)
        for pid in [pool, *evaluators]:
            environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert f"MALLOC_ARENA_MAX={settings.malloc_arenas}".encode() in environment
    finally:
        live.stop()


def _memory_kib(pid: int) -> dict[str, int]:
    fields = (line.split() for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
    return {field[0].rstrip(":"): int(field[1]) for field in fields}


def _store_files_open(pid: int, store: Path) -> int:
    return sum(os.path.realpath(f"/proc/{pid}/fd/{fd}").startswith(str(store.resolve()) + "/")
               for fd in os.listdir(f"/proc/{pid}/fd"))


def _started_workers(live: LiveServer, store: Path, count: int = 2, seconds: float = 10.0) -> tuple[int, list[int]]:
    """The gunicorn master's pid and its workers' (its children but the evaluators' supervisor)
    once `count` of them have each opened the store: the server answers as soon as one worker is
    ready, and gunicorn forks the next up to 0.1 s later."""
    master = live.process.pid
    deadline = time.monotonic() + seconds
    while True:
        workers = [pid for pid in _children(master) if not _is_evaluator(pid)]
        if len(workers) == count and all(_store_files_open(pid, store) for pid in workers):
            return master, workers
        assert time.monotonic() < deadline, f"workers {workers} did not all open {store}"
        time.sleep(0.05)


def test_the_app_is_built_once_and_its_memory_shared_by_the_workers(built, settings):
    """gunicorn's master builds the app before it forks (preload_app): its modules, templates
    and locale data are pages the workers share with it, copy-on-write, rather than one copy
    per worker. Right after start, most of a worker's anonymous memory is shared (its PSS of
    anonymous pages well under its anonymous RSS; ~80 % of it was its own when each worker built
    the app)."""
    live = LiveServer(settings)
    try:
        _, workers = _started_workers(live, built.path / "store")
        for pid in workers:
            memory = _memory_kib(pid)
            assert memory["Pss_Anon"] < 0.6 * memory["Anonymous"], (pid, memory)
    finally:
        live.stop()


def test_the_store_is_opened_by_each_worker_never_by_the_master(built, settings):
    """A store handle must not cross a fork (rocksdb's threads and locks stay in the process that
    opened it): the master builds the app without opening the release, each worker opens its own
    as it starts, before its first request."""
    live = LiveServer(settings)
    try:
        store = built.path / "store"
        master, _ = _started_workers(live, store)
        assert _store_files_open(master, store) == 0
        assert live.get(DOC).status_code == 200
    finally:
        live.stop()


ARENA_PROBE = """
import ctypes, re, sys, tempfile, threading
from server.serving import cap_malloc_arenas
if sys.argv[1] == "cap":
    assert cap_malloc_arenas(2)
kept = []
threads = [threading.Thread(target=lambda: kept.extend(bytearray(64 << 10) for _ in range(200))) for _ in range(16)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile() as report:
    stream = ctypes.c_void_p(libc.fopen(report.name.encode(), b"w"))
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    print(len(re.findall('<heap nr="', open(report.name).read())))
"""


def test_capping_malloc_arenas_holds_threads_to_that_many():
    def heaps(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", ARENA_PROBE, mode], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent.parent,
                              env={k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"})
        assert done.returncode == 0, done.stderr
        return int(done.stdout)
    assert heaps("cap") <= 2
    assert heaps("default") > 2  # the probe would show no difference otherwise


def _running(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return False


# --------------------------------------------------------------------------------------------
# The access log and the request id
# --------------------------------------------------------------------------------------------

def test_one_json_line_per_request_with_every_field(server, built):
    request_id = "ops-" + uuid.uuid4().hex
    response = server.get(DOC, headers={"X-Request-Id": request_id, "User-Agent": "ops-test/1",
                                        "Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] == request_id
    [line] = log_lines(server, request_id)
    assert LOG_FIELDS <= set(line)
    assert line["method"] == "GET" and line["path"] == DOC and line["route"] == "/doc/<path:rest>"
    assert line["status"] == 200 and line["bytes"] == len(response.content)
    assert line["client"] == "127.0.0.1" and line["user_agent"] == "ops-test/1"
    assert line["release"] == built.version
    assert line["duration_ms"] >= 0
    stamp = datetime.fromisoformat(line["ts"].replace("Z", "+00:00"))
    assert line["ts"].endswith("Z") and stamp.utcoffset().total_seconds() == 0
    # gunicorn's own access log is off: no second, plain line for the same request
    assert not [text for text in server.output if f'"GET {DOC} HTTP/1.1" 200' in text]


def test_each_request_has_its_own_line(server):
    request_id = "ops-" + uuid.uuid4().hex
    for path in ("/health/live", "/no-such-thing", "/health/live"):
        server.get(path, headers={"X-Request-Id": request_id})
    lines = log_lines(server, request_id, expected=3)
    assert [(line["path"], line["route"], line["status"]) for line in lines] == [
        ("/health/live", "/health/live", 200), ("/no-such-thing", "unmatched", 404),
        ("/health/live", "/health/live", 200)]


@pytest.mark.parametrize("given", [None, "", "x" * 200, "two words", "evil\u00e9"])
def test_a_request_id_is_generated_when_none_or_no_sane_one_is_given(server, given):
    headers = {} if given is None else {"X-Request-Id": given.encode("utf-8")}
    response = server.get("/health/live", headers=headers)
    generated = response.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    [line] = log_lines(server, generated)
    assert line["path"] == "/health/live"


def test_the_access_log_can_be_switched_off_and_the_id_is_still_echoed(quiet_timed):
    request_id = "quiet-" + uuid.uuid4().hex
    response = requests.get(quiet_timed.url + "/health/live", headers={"X-Request-Id": request_id}, timeout=30)
    assert response.headers["X-Request-Id"] == request_id
    requests.get(quiet_timed.url + "/health/ready", timeout=30)  # a later line would come after it
    time.sleep(0.5)
    assert not [line for line in quiet_timed.output if request_id in line]
    assert not [line for line in quiet_timed.output if line.startswith('{"ts"')]


class SessionServer(LiveServer):
    """A server in a session of its own, so that a Ctrl-C can reach its whole process group."""

    def _start(self, argv: list[str], **popen) -> None:
        super()._start(argv, start_new_session=True, **popen)


class BootingServer(SessionServer):
    """A server in a session of its own, handed over as soon as its evaluators are started and
    gunicorn's master is building the app (before it forks the workers)."""

    def _wait(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while "serving on http" not in self.log:
            assert time.monotonic() < deadline and self.process.poll() is None, self.log
            time.sleep(0.01)


@pytest.mark.parametrize("when", ["serving", "building the app"])
def test_ctrl_c_ends_every_process_of_the_server_within_seconds(built, settings, when):
    """Ctrl-C sends SIGINT to every process of the group; the master then sends its workers
    SIGQUIT. gunicorn's gthread worker shut its thread pool down inside that signal handler: a
    signal landing while the main thread held the pool's lock (handing over the last request, or
    in the first signal's handler when the second came, seen while the workers loaded the app)
    left the worker waiting for ever, until the master killed it at the graceful timeout (10 s).
    While the master builds the app, before gunicorn handles signals, the interrupt ends it and
    its evaluators."""
    for stop in range(5):
        live = SessionServer(settings) if when == "serving" else BootingServer(settings)
        group = live.process.pid
        try:
            if when == "serving":
                assert live.get("/health/ready").status_code == 200
                assert live.get("/sparql", params={"query": "ASK {}"}, headers={"Accept": "application/sparql-results+json"}).ok
            else:
                time.sleep(0.1 * stop)  # somewhere in the building of the app, or the workers' start
            started = time.monotonic()
            os.killpg(group, signal.SIGINT)
            while _group_alive(group) and time.monotonic() - started < 9:
                time.sleep(0.05)
            assert not _group_alive(group), "alive:\n" + "\n".join(process_group_members(group)) + "\n" + live.log
        finally:
            if _group_alive(group):
                os.killpg(group, signal.SIGKILL)
        assert "was sent SIG" not in live.log, live.log
        assert time.monotonic() - started < 6


def test_a_worker_quits_on_a_signal_that_lands_inside_its_pools_lock():
    """The signal handler of the server's workers, given the moment that made gthread's own wait
    for ever: the main thread holding the thread pool's lock (in `submit()`, or in the first
    signal's handler). It quits at once (SystemExit), and ignores the master's SIGQUIT after
    Ctrl-C's SIGINT. gthread's own handler, under the same lock, is still waiting a second later."""
    from gunicorn.config import Config
    from gunicorn.workers.gthread import ThreadWorker

    from server.serving import QuitOnceWorker

    def quit_twice(worker_class, outcome: list) -> None:
        worker = worker_class.__new__(worker_class)  # only what a signal handler uses
        worker.cfg, worker.tpool = Config(), ThreadPoolExecutor(1)
        with worker.tpool._shutdown_lock:
            try:
                worker.handle_quit(signal.SIGINT, None)
            except SystemExit:
                outcome.append("quit")
            worker.handle_quit(signal.SIGQUIT, None)
            outcome.append("second signal ignored")

    ours, gthreads = [], []
    for worker_class, outcome in ((QuitOnceWorker, ours), (ThreadWorker, gthreads)):
        thread = threading.Thread(target=quit_twice, args=(worker_class, outcome), daemon=True)
        thread.start()
        thread.join(1.0)
    assert ours == ["quit", "second signal ignored"]
    assert gthreads == []  # still waiting for the lock its own thread holds


def _group_alive(group: int) -> bool:
    return bool(process_group_members(group))
