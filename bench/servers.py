"""The servers under test: ours and the anchors, each on 127.0.0.1, each in its own process group.

Every server is a context manager: on exit its whole process group is terminated (then
killed), whatever happened. Sampler threads record the peak of the summed RSS of the server's
process tree while it runs (every 0.2 s), and the peak of its summed PSS (every second: RSS
counts the pages that forked processes share once per process; PSS splits them among them).
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil

PYTHON = sys.executable
BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def tree_measures(pid: int, measure) -> list[tuple[psutil.Process, int]]:
    """`measure(process)` of the process `pid` and each of its descendants (none if it is gone;
    a process that ends meanwhile is left out)."""
    try:
        root = psutil.Process(pid)
        processes = [root] + root.children(recursive=True)
    except psutil.Error:
        return []
    measured = []
    for process in processes:
        try:
            measured.append((process, measure(process)))
        except psutil.Error:
            pass
    return measured


def tree_sum(pid: int, measure) -> float:
    """`measure(process)` summed over the process `pid` and all its descendants."""
    return sum(size for _, size in tree_measures(pid, measure))


def process_role(process: psutil.Process) -> str:
    """A short name for a process of a server's tree, for the report of its peak."""
    try:
        words = [Path(word).name for word in process.cmdline()[:4]]
    except psutil.Error:
        return "?"
    return " ".join(words)[:60]


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak, self._stop_event = pid, interval, 0, threading.Event()
        #: each process of the tree at the peak: (its role, MiB), largest first
        self.peak_processes: list[tuple[str, float]] = []

    def tree_rss(self) -> int:
        """The tree's summed measure now; a new peak is recorded with its processes."""
        measured = tree_measures(self.pid, self.measure)
        total = sum(size for _, size in measured)
        if total > self.peak:
            self.peak = total
            self.peak_processes = sorted(((process_role(process), round(size / 2**20, 1))
                                          for process, size in measured), key=lambda row: -row[1])
        return total

    @staticmethod
    def measure(process: psutil.Process) -> int:
        """The bytes of one process that count (resident set size)."""
        return process.memory_info().rss

    def run(self):
        while not self._stop_event.is_set():
            self.tree_rss()
            self._stop_event.wait(self.interval)

    def stop(self):
        self._stop_event.set()


class PssSampler(RssSampler):
    """The peak of the tree's summed PSS (proportional set size)."""

    def __init__(self, pid: int, interval: float = 1.0):
        super().__init__(pid, interval)

    @staticmethod
    def measure(process: psutil.Process) -> int:
        return process.memory_full_info().pss


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _stop_servers_on_sigterm() -> None:
    """A benchmark stopped with SIGTERM (kill, timeout) unwinds like one stopped with Ctrl-C, so
    that every server's `with` block stops its process group instead of leaving it running."""
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _exit_on_sigterm)


def wait_idle(group: list["Server"], busy: float = 0.1, window: float = 0.2, limit: float = 30.0) -> float:
    """Wait (at most `limit` seconds) until each server of `group` uses less than `busy` of a core
    over `window` seconds: work left over from requests the driver gave up on must not run into
    another server's measurement. The seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = [server.cpu_seconds() for server in group]
        time.sleep(window)
        if all(server.cpu_seconds() - used < busy * window for server, used in zip(group, before)):
            break
    return round(time.monotonic() - started, 2)


class Server:
    """A process started in a new session (own process group), stopped with the whole group."""

    name = "server"
    kind = "sparql"  # or "documents" (serves the documents' bytes only)

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.sampler: RssSampler | None = None
        self.pss_sampler: PssSampler | None = None
        self.load_seconds: float | None = None   # loading the data into this server's store
        self.start_seconds: float | None = None  # process start until it answers
        self.rest_mb: dict[str, float] = {}      # the tree's summed RSS and PSS once ready, before any request
        self.log = workdir / f"{self.name}.log"

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def spawn(self, argv: list[str], env: dict | None = None, cwd: Path | None = None) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                        env={**os.environ, **(env or {})}, start_new_session=True)
        self._start_samplers()

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server's processes (0 before it started)."""
        if self.process is None:
            return 0.0
        return tree_sum(self.process.pid, lambda process: sum(process.cpu_times()[:2]))

    def wait_http(self, path: str, seconds: float = 120.0) -> None:
        started = time.perf_counter()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}); see {self.log}")
            try:
                with urllib.request.urlopen(self.base_url + path, timeout=2) as r:
                    r.read()
                break
            except OSError as error:
                if getattr(error, "code", None):  # an HTTP error status: it is up
                    break
                time.sleep(0.1)
        else:
            raise RuntimeError(f"{self.name} did not answer in {seconds}s; see {self.log}")
        self.start_seconds = (self.start_seconds or 0) + time.perf_counter() - started

    def start(self) -> None:
        raise NotImplementedError

    def _start_samplers(self) -> None:
        self.sampler, self.pss_sampler = RssSampler(self.process.pid), PssSampler(self.process.pid)
        self.sampler.start()
        self.pss_sampler.start()

    def stop(self) -> None:
        for sampler in (self.sampler, self.pss_sampler):
            if sampler:
                sampler.tree_rss()
                sampler.stop()
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(5)

    @property
    def peak_rss_mb(self) -> float | None:
        return round(self.sampler.peak / 2**20, 1) if self.sampler else None

    @property
    def peak_pss_mb(self) -> float | None:
        return round(self.pss_sampler.peak / 2**20, 1) if self.pss_sampler else None

    def memory_figures(self) -> dict:
        """The peaks for the report, with each process's RSS at the summed RSS's peak, and the
        tree's size at rest (what it takes before its first request: the floor under its peak)."""
        return {"peak_rss_mb": self.peak_rss_mb, "peak_pss_mb": self.peak_pss_mb,
                "peak_rss_processes": self.sampler.peak_processes if self.sampler else [],
                **self.rest_mb}

    def note_rest(self) -> None:
        if self.process is not None:
            for key, measure in (("rest_rss_mb", RssSampler.measure), ("rest_pss_mb", PssSampler.measure)):
                self.rest_mb[key] = round(sum(size for _, size in tree_measures(self.process.pid, measure)) / 2**20, 1)

    def __enter__(self):
        _stop_servers_on_sigterm()
        try:
            self.start()
            self.note_rest()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # how to ask a SPARQL query: (url, headers) for a query string and an Accept type
    def sparql_url(self, query: str) -> str:
        from urllib.parse import quote
        return f"{self.base_url}/sparql?query={quote(query)}"


class Ours(Server):
    name = "lodpub"

    def __init__(self, workdir: Path, root: Path, releases: Path, workers: int = 2, name: str = "lodpub",
                 env: dict | None = None):
        self.name = name
        super().__init__(workdir)
        self.root, self.releases, self.workers = root, releases, workers
        # the driver is many clients behind one address: lift the per-client query limit (default 4)
        self.env = {"LODPUB_MAX_CONCURRENT_QUERIES_PER_CLIENT": "1000", **(env or {})}

    def start(self):
        started = time.perf_counter()
        self.spawn([str(BIN / "lodpub"), "serve", "--no-build", "--root", str(self.root), "--releases",
                    str(self.releases), "--host", LOOPBACK, "--port", str(self.port), "--workers", str(self.workers)],
                   env=self.env)
        self.wait_http("/robots.txt")
        self.start_seconds = time.perf_counter() - started
        self.wait_every_worker()

    def wait_every_worker(self, seconds: float = 60.0) -> None:
        """Until every worker has answered (their pids in the access log), not counted in the
        start-up time: a cell's connections opened while one worker is still booting all land on
        the other, and that cell measures half the server (seen: describe 583 against 1,360 req/s)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for _ in range(8):
                with urllib.request.urlopen(self.base_url + "/robots.txt", timeout=5) as r:
                    r.read()
            pids = {json.loads(line)["pid"] for line in self.log.read_text(encoding="utf-8").splitlines()
                    if line.startswith('{"ts"')}
            if len(pids) >= self.workers:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: not every worker answered in {seconds}s; see {self.log}")


class Oxigraph(Server):
    name = "oxigraph"

    def __init__(self, workdir: Path, nquads: Path):
        super().__init__(workdir)
        self.nquads = nquads

    def start(self):
        location = self.workdir / "oxigraph-store"
        shutil.rmtree(location, ignore_errors=True)
        started = time.perf_counter()
        with self.log.open("ab") as out:
            subprocess.run([str(BIN / "oxigraph"), "load", "--location", str(location), "--file", str(self.nquads)],
                           check=True, stdout=out, stderr=subprocess.STDOUT, timeout=900)
            # compact, as `lodpub build` does for our store (Store.optimize)
            subprocess.run([str(BIN / "oxigraph"), "optimize", "--location", str(location)],
                           check=True, stdout=out, stderr=subprocess.STDOUT, timeout=900)
        self.load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        self.spawn([str(BIN / "oxigraph"), "serve-read-only", "--location", str(location), "--bind",
                    f"{LOOPBACK}:{self.port}", "--union-default-graph"])
        self.wait_http("/query?query=ASK%7B%7D")
        self.start_seconds = time.perf_counter() - started

    def sparql_url(self, query: str) -> str:
        from urllib.parse import quote
        return f"{self.base_url}/query?query={quote(query)}"


class Virtuoso(Server):
    """Virtuoso (tests/virtuoso.py: the same ini and start as the tests), with the N-Quads dump
    bulk-loaded (``ld_dir`` + ``rdf_loader_run``) when one is given, else empty (for ``lodpub
    publish``). ``query_url`` can name a dataset in the protocol (default-graph-uri /
    named-graph-uri), as our front end does on a remote store."""
    name = "virtuoso"
    #: the page buffers of the earlier bench ini (NumberOfBuffers 340000, 8 KiB pages, ⅔ of the budget)
    MEMORY_MB = 4000

    def __init__(self, workdir: Path, nquads: Path | None = None, name: str = "virtuoso"):
        self.name = name
        super().__init__(workdir)
        self.nquads = nquads
        self.store = None  # a tests.virtuoso.Virtuoso, once started

    def start(self):
        from tests.virtuoso import Virtuoso as Store
        d = self.workdir / self.name
        shutil.rmtree(d, ignore_errors=True)
        self.store = Store(d, memory_mb=self.MEMORY_MB)
        self.port, self.log = self.store.http_port, d / "stdout.log"
        started = time.perf_counter()
        try:
            self.store.start()
        finally:  # stopped with its process group by Server.stop, even if it never answered
            self.process = self.store.process
        self._start_samplers()
        self.start_seconds = time.perf_counter() - started
        if self.nquads is not None:
            self.bulk_load(d / "load")

    def bulk_load(self, data: Path) -> None:
        data.mkdir()
        # Virtuoso's bulk loader reads N-Quads (graph per quad), plain
        with gzip.open(self.nquads, "rb") as src, (data / "dataset.nq").open("wb") as dst:
            shutil.copyfileobj(src, dst)
        started = time.perf_counter()
        self.store.isql(f"ld_dir('{data}', 'dataset.nq', 'urn:bench:default');\nrdf_loader_run();\ncheckpoint;\n")
        self.load_seconds = time.perf_counter() - started
        loaded = self.store.isql("SELECT ll_file, ll_state, ll_error FROM DB.DBA.LOAD_LIST;")
        if "NULL" not in loaded.split("dataset.nq", 1)[-1]:
            raise RuntimeError(f"virtuoso load error: {loaded}")

    @property
    def settings_env(self) -> dict[str, str]:
        return self.store.settings_env

    def sparql_url(self, query: str) -> str:
        return self.query_url(query, None)

    def query_url(self, query: str, dataset: tuple[list[str], list[str]] | None) -> str:
        from urllib.parse import quote, urlencode
        params = [("query", query)]
        if dataset is not None:
            defaults, named = dataset
            params += [("default-graph-uri", g) for g in defaults] + [("named-graph-uri", g) for g in named]
        return f"{self.base_url}/sparql?{urlencode(params, quote_via=quote)}"


class RdflibEndpoint(Server):
    name = "rdflib-endpoint"

    def __init__(self, workdir: Path, nquads: Path):
        super().__init__(workdir)
        self.nquads = nquads

    def start(self):
        started = time.perf_counter()
        self.spawn([PYTHON, str(HERE / "rdflib_peer.py"), str(self.nquads), LOOPBACK, str(self.port)])
        self.wait_http("/?query=ASK%7B%7D", seconds=900)
        self.load_seconds = time.perf_counter() - started  # parsing is the load

    def sparql_url(self, query: str) -> str:
        from urllib.parse import quote
        return f"{self.base_url}/?query={quote(query)}"


class BareFlask(Server):
    """Flask + gunicorn with our server's settings (gthread, 2 workers x 8 threads, keep-alive 5,
    access log), answering fixed bytes from a folder: the framework's limit."""
    name = "bare-flask"
    kind = "documents"

    def __init__(self, workdir: Path, files: Path, workers: int = 2, access_log: bool = True):
        super().__init__(workdir)
        self.files, self.workers, self.access_log = files, workers, access_log

    def start(self):
        started = time.perf_counter()
        self.spawn([str(BIN / "gunicorn"), "--worker-class", "gthread", "--workers", str(self.workers),
                    "--threads", "8", "--keep-alive", "5", "--timeout", "60",
                    *(["--access-logfile", "-"] if self.access_log else []), "--bind", f"{LOOPBACK}:{self.port}", "bench.bare_app:app"],
                   env={"BENCH_FILES": str(self.files), "PYTHONPATH": str(HERE.parent)}, cwd=HERE.parent)
        self.wait_http("/robots.txt")
        self.start_seconds = time.perf_counter() - started


NGINX_CONF = """\
worker_processes {workers};
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {d}/tmp;
    proxy_temp_path {d}/tmp;
    fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp;
    scgi_temp_path {d}/tmp;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    keepalive_timeout 30;
    types {{
        text/html html;
        application/ld+json jsonld;
        text/turtle ttl;
        application/sparql-results+json srj;
        text/plain txt;
    }}
    default_type application/octet-stream;
    charset utf-8;
    charset_types text/html application/ld+json text/turtle application/sparql-results+json;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


class Nginx(Server):
    """nginx serving the same bytes as static files: the machine's limit."""
    name = "nginx"
    kind = "documents"

    def __init__(self, workdir: Path, files: Path, workers: int = 2):
        super().__init__(workdir)
        self.files, self.workers = files, workers

    def start(self):
        d = self.workdir / "nginx"
        shutil.rmtree(d, ignore_errors=True)
        (d / "tmp").mkdir(parents=True)
        (d / "nginx.conf").write_text(NGINX_CONF.format(d=d, port=self.port, root=self.files, workers=self.workers))
        started = time.perf_counter()
        self.spawn(["nginx", "-p", str(d), "-e", str(d / "error.log"), "-c", str(d / "nginx.conf")])
        self.wait_http("/robots.txt")
        self.start_seconds = time.perf_counter() - started
