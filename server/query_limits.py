"""Limits that keep one client's query from hurting anyone else.

Time limit: Oxigraph cannot be interrupted from Python (a GROUP BY or ORDER BY over a huge
join blocks inside Rust before the first solution), so queries are evaluated in *evaluator
processes*: each gunicorn worker keeps a small pool of them (started from a forkserver, each
opening the release's store read-only). The request thread sends the job over a pipe and waits
at most `query_timeout` seconds; when the time is up it kills that evaluator (SIGKILL: the work
really stops, the CPU is freed at once), answers 503 naming the limit, and a fresh evaluator
takes its place on the next query. Other requests are served meanwhile by the other threads
and evaluators.

Row cap: the evaluator reads at most `max_result_rows` + 1 solutions; see sparql_results.

Per-client concurrency: a client (its IP address) may have at most
`max_concurrent_queries_per_client` queries in evaluation at once, counted across all the
gunicorn workers of one server with lock files (flock: released by the kernel even if a worker
dies). One more answers 429 with Retry-After.

Result cache: answers are kept per release, per worker, in an LRU bounded by bytes
(LODPUB_SPARQL_CACHE_BYTES, default 32 MiB; 0 switches it off).
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import multiprocessing
import os
import signal
import tempfile
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

from .config import from_environment

log = logging.getLogger(__name__)

_SETTINGS = from_environment()
#: evaluator processes per gunicorn worker (each worker has 8 threads)
EVALUATORS = _SETTINGS.sparql_evaluators
#: result cache size per worker process, bytes; 0 = no cache
CACHE_BYTES = _SETTINGS.sparql_cache_bytes
#: address-space limit of each evaluator process, MiB (a query that needs more is stopped); 0 = none
MEMORY_MB = _SETTINGS.sparql_memory_mb
#: evaluators kept started and idle ahead of demand: when a query takes the last idle one,
#: another starts in the background (within the pool's size), so that a query arriving while
#: the others are busy (a runaway one) does not wait for a process to start
SPARE = 1
#: an idle evaluator beyond the spare is stopped after this many seconds: each one holds its
#: own store handle and caches (~60–110 MiB at 1M triples), and a burst of queries should not
#: leave them all resident for the rest of the server's life
IDLE_SECONDS = 60.0
#: an evaluator whose resident memory exceeds this after a query is replaced: a big GROUP BY
#: or sort leaves its heap to the process, which would keep it until it ends
RECYCLE_RSS_MB = 256


class QueryTimeout(Exception):
    pass


class ServerBusy(Exception):
    pass


class EvaluatorFailed(Exception):
    pass


# --------------------------------------------------------------------------------------------
# Evaluator processes
# --------------------------------------------------------------------------------------------

def _evaluator_main(conn, store: str | None) -> None:
    """The loop of one evaluator process: open the store, say "ready"; then a job in, an answer
    out, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    _die_with_parent()
    if MEMORY_MB > 0:
        import resource
        limit = MEMORY_MB << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from .sparql_results import EvaluationError, evaluate, open_store
    stores: dict = {}
    if store:
        try:
            open_store(store, stores)
        except OSError as error:
            log.error("SPARQL evaluator: cannot open %s: %s", store, error)
    try:
        conn.send("ready")
    except OSError:
        return
    _in_big_stack(_serve_jobs, conn, stores, evaluate, EvaluationError)


def _serve_jobs(conn, stores: dict, evaluate, evaluation_error) -> None:
    """A job in, an answer out, until the pipe closes (on the evaluator's big-stack thread)."""
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        # backstop: should the worker die mid-query (nobody left to kill us), the kernel ends
        # this process a little after the time limit (SIGALRM's default action; Oxigraph holds
        # the GIL while it computes, so no Python-level watchdog could run)
        limit = job.get("timeout") or 0
        if limit > 0:
            signal.alarm(int(limit) + ALARM_GRACE)
        answer = _answer(evaluate, job, stores, evaluation_error)
        signal.alarm(0)
        try:
            conn.send(answer)
        except (BrokenPipeError, OSError):
            return


def _answer(evaluate, job, stores, evaluation_error) -> tuple:
    try:
        return ("ok", evaluate(job, stores))
    except evaluation_error as error:
        return ("error", error.status, error.title, error.detail, error.extra)
    except Exception as error:  # never let one query end the evaluator's loop silently
        return ("error", 400, "Query evaluation failed", f"The query could not be evaluated: {error}", {})


#: seconds past the time limit after which an evaluator ends itself (if its worker could not)
ALARM_GRACE = 5
#: how long a new evaluator may take to start and open the store
START_TIMEOUT = 30.0


def _die_with_parent() -> None:
    """Linux: be killed when the forkserver (which ends with its worker) ends, even in the middle
    of a long query, when nobody reads the pipe any more."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


#: Oxigraph recurses over the query's structure: evaluations run on a thread with a large stack
#: (address space only; pages are used only by deep queries), one per evaluator process for its
#: whole life (starting a thread with such a stack per query cost ~0.3 ms)
STACK_MIB = 256


def _in_big_stack(function, *args) -> None:
    previous = threading.stack_size(STACK_MIB << 20)
    try:
        thread = threading.Thread(target=function, args=args, name="sparql-evaluation")
        thread.start()
    finally:
        threading.stack_size(previous)
    thread.join()


class _Evaluator:
    def __init__(self, context, store: str | None):
        parent, child = context.Pipe(duplex=True)
        self.conn = parent
        self.idle_since = time.monotonic()
        self.process = context.Process(target=_evaluator_main, args=(child, store), daemon=True,
                                       name="lodpub-sparql-evaluator")
        self.process.start()
        child.close()
        # not counted in any query's time: wait until it has started and opened the store
        try:
            ready = parent.poll(START_TIMEOUT) and parent.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.kill()
            log.error("a SPARQL evaluator failed to start (exit code %s)", self.process.exitcode)
            raise EvaluatorFailed("the evaluator did not start")

    def kill(self) -> None:
        try:
            os.kill(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, TypeError):
            pass
        self.process.join(5)
        self.conn.close()

    def rss_mb(self) -> float:
        """Resident memory (Linux /proc; 0 where unknown)."""
        try:
            with open(f"/proc/{self.process.pid}/statm", "rb") as statm:
                return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError, IndexError):
            return 0.0


class EvaluatorPool:
    """At most `size` evaluator processes, started on demand and replaced when killed."""

    def __init__(self, size: int = EVALUATORS):
        self.size = max(1, size)
        self._idle: list[_Evaluator] = []
        self._count = 0
        self._cond = threading.Condition()
        self._context = None
        self._pid = os.getpid()
        self._store: str | None = None  # the store the last query used (for replacements)
        self._reaper: threading.Thread | None = None

    def _ctx(self):
        if self._context is None:
            context = multiprocessing.get_context("forkserver")
            # not server.jsonld (pyld, 13 MiB in every evaluator): imported by the first JSON-LD graph answer
            context.set_forkserver_preload(["server.sparql_results", "pyoxigraph"])
            self._context = context
        return self._context

    def _acquire(self, deadline: float, store: str | None) -> _Evaluator:
        with self._cond:
            while True:
                if self._idle:
                    evaluator = self._idle.pop()  # the most recently used: the others age out
                    if not self._idle and self._count < self.size:
                        self._in_background(SPARE)
                    return evaluator
                if self._count < self.size:
                    self._count += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ServerBusy()
                self._cond.wait(remaining)
        try:
            return _Evaluator(self._ctx(), store)
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def _release(self, evaluator: _Evaluator) -> None:
        evaluator.idle_since = time.monotonic()
        with self._cond:
            self._idle.append(evaluator)
            self._cond.notify()
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap, daemon=True, name="sparql-reaper")
                self._reaper.start()

    def _in_background(self, idle: int) -> None:
        threading.Thread(target=self.warm, args=(idle,), daemon=True, name="sparql-spare").start()

    def _reap(self) -> None:
        """Stop the evaluators idle for more than IDLE_SECONDS, but the SPARE most recently used."""
        while True:
            time.sleep(IDLE_SECONDS / 4)
            now = time.monotonic()
            with self._cond:
                candidates = self._idle[:max(0, len(self._idle) - SPARE)]  # oldest first
                stale = [e for e in candidates if now - e.idle_since > IDLE_SECONDS]
                self._idle = [e for e in self._idle if e not in stale]
                self._count -= len(stale)
            for evaluator in stale:
                evaluator.kill()

    def _discard(self, evaluator: _Evaluator) -> None:
        """Kill an evaluator, and start its replacement in the background at once."""
        evaluator.kill()
        with self._cond:
            self._count -= 1
            self._cond.notify()
        self._in_background(SPARE)

    def run(self, job: dict, timeout: float):
        """The evaluator's answer to `job`, or QueryTimeout after `timeout` seconds of evaluation
        (the evaluator is then killed), ServerBusy if no evaluator was free within `timeout`."""
        self._store = job["store"]
        evaluator = self._acquire(time.monotonic() + timeout, job["store"])
        deadline = time.monotonic() + timeout
        try:
            evaluator.conn.send(job)
            if evaluator.conn.poll(max(0.0, deadline - time.monotonic())):
                answer = evaluator.conn.recv()
            else:
                self._discard(evaluator)
                raise QueryTimeout()
        except QueryTimeout:
            raise
        except (EOFError, OSError) as error:
            self._discard(evaluator)
            log.error("SPARQL evaluator %s stopped (exit code %s) on a query: %s", evaluator.process.pid,
                      evaluator.process.exitcode, error)
            raise EvaluatorFailed(str(error)) from None
        except BaseException:
            self._discard(evaluator)
            raise
        if evaluator.rss_mb() > RECYCLE_RSS_MB:
            self._discard(evaluator)
        else:
            self._release(evaluator)
        return answer

    def warm(self, idle: int, store: str | None = None) -> None:
        """Start evaluators now until `idle` of them wait for work (within the pool's size), so
        that no query waits for a process to start."""
        while True:
            with self._cond:
                if len(self._idle) >= idle or self._count >= self.size:
                    return
                self._count += 1
            try:
                evaluator = _Evaluator(self._ctx(), store or self._store)
            except Exception:
                log.exception("could not start a SPARQL evaluator")
                with self._cond:
                    self._count -= 1
                return
            self._release(evaluator)

    def close(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for evaluator in idle:
            evaluator.kill()


_pool: EvaluatorPool | None = None
_pool_lock = threading.Lock()


_warmed: set = set()


def warm_up_once(store: str) -> None:
    """In the background, once per process: start the evaluators before the first query."""
    if os.getpid() in _warmed:
        return
    _warmed.add(os.getpid())
    threading.Thread(target=pool().warm, args=(SPARE, store), daemon=True, name="sparql-warm-up").start()


def pool() -> EvaluatorPool:
    """This process's evaluator pool (a forked worker gets its own)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool._pid != os.getpid():
            _pool = EvaluatorPool()
        return _pool


# --------------------------------------------------------------------------------------------
# Per-client concurrency, across worker processes
# --------------------------------------------------------------------------------------------

class ClientLimiter:
    """At most `limit` slots per client key, each slot a lock file held with flock."""

    def __init__(self, folder: Path, limit: int):
        self.folder, self.limit = folder, limit
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    @contextmanager
    def slot(self, client: str):
        if self.limit <= 0:
            yield
            return
        key = hashlib.sha256(client.encode()).hexdigest()[:20]
        for n in range(self.limit):
            fd = os.open(self.folder / f"{key}.{n}", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            return
        raise TooManyQueries()


class TooManyQueries(Exception):
    pass


_limiters: dict = {}


def client_limiter(releases: Path, address: str, limit: int) -> ClientLimiter:
    """One limiter per server: the workers of one server (same releases folder, same listening
    address) share its lock files; another server on another port counts apart."""
    key = (str(releases.resolve()), address, limit)
    if key not in _limiters:
        name = hashlib.sha256(f"{key[0]}\x1f{address}\x1f{limit}".encode()).hexdigest()[:12]
        folder = Path(tempfile.gettempdir()) / f"lodpub-sparql-clients-{os.getuid()}-{name}"
        _limiters[key] = ClientLimiter(folder, limit)
    return _limiters[key]


# --------------------------------------------------------------------------------------------
# Result cache
# --------------------------------------------------------------------------------------------

class ResultCache:
    """An LRU of answers bounded by their total size in bytes."""

    def __init__(self, max_bytes: int = CACHE_BYTES):
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[bytes, dict]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str):
        if self.max_bytes <= 0:
            return None
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: str, body: bytes, meta: dict) -> None:
        size = len(body)
        if self.max_bytes <= 0 or size > self.max_bytes // 8:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = (body, meta)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (old, _) = self._items.popitem(last=False)
                self._bytes -= len(old)
