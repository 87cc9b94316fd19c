"""SPARQL evaluator processes: one pool for the whole server, each query killable.

Oxigraph cannot be interrupted from Python (pyoxigraph has no cancellation: a GROUP BY or
ORDER BY over a huge join runs inside Rust until it is done, before the first solution), so
queries are evaluated in separate processes that can be killed at the time limit:

- `lodpub serve` starts the *pool* once, in the gunicorn master before it forks its workers:
  a small supervisor program (``python -m server.evaluators``) that imports only the
  evaluation code, listens on a Unix socket, and keeps `sparql_evaluators` evaluator processes
  forked from itself. Every worker's request threads share them. Should the supervisor end
  (killed, out of memory), the master starts it again on the same socket (server/serving.py).
  A process that uses the pool without a server (the app under a test client, a script) starts
  a private one on its first query.
- A worker connects and sends the job at once. Each evaluator accepts one connection at a time
  on the shared socket (idle evaluators wait in `select`, one of them accepts a new
  connection; connections wait in the listen queue while all are busy), reads the job, says
  its pid and answers. When a job ran for half
  its time limit or more, the evaluator takes no other job until the worker has hung up, so a
  worker that kills at the limit always kills the process evaluating *its* query.
- A worker waits at most `sparql_queue_timeout` seconds for a free evaluator (ServerBusy), then
  at most `query_timeout` for the answer: when the time is up it SIGKILLs that evaluator (the
  work really stops, the CPU is free at once) and answers 503; the supervisor forks a
  replacement. Waiting in line uses no CPU, so the two are separate: a query behind others is
  answered once they are, and only its own evaluation is timed.
- An evaluator whose resident memory grew past RECYCLE_RSS_MB ends itself after answering (a
  big sort leaves its heap behind), and is replaced the same way; so does one that grew by
  IDLE_GROWTH_MB and then had no job for `sparql_evaluator_idle_seconds` (a burst of heavy
  queries leaves each evaluator its store's block cache and heap, ~100 MiB at 1M triples).
"""
from __future__ import annotations

import gc
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from .child_process import die_with_parent
from .config import from_environment

#: set by the process that started the pool (the gunicorn master) for the workers it forks
SOCKET_ENV = "LODPUB_EVALUATOR_SOCKET"
#: an evaluator whose resident memory exceeds this after a query is replaced
RECYCLE_RSS_MB = 256
#: an evaluator that grew by this much since its start, then was left idle for
#: `sparql_evaluator_idle_seconds`, is replaced
IDLE_GROWTH_MB = 32
#: seconds past the time limit after which an evaluator ends itself (if nobody killed it)
ALARM_GRACE = 5
#: how long the pool may take to start
START_TIMEOUT = 30.0
#: Oxigraph recurses over the query's structure: evaluations run on a thread with a large stack
#: (address space only; pages are used only by deep queries), one per evaluator for its life
STACK_MIB = 256
#: an evaluator that ends within this many seconds of its start is replaced only after a pause
#: (a store that cannot be opened must not make the supervisor fork in a tight loop)
RESPAWN_PAUSE = 0.5


class QueryTimeout(Exception):
    pass


class ServerBusy(Exception):
    pass


class EvaluatorFailed(Exception):
    pass


class PoolUnavailable(EvaluatorFailed):
    """Nothing listens on the pool's socket (its supervisor ended): no query can be answered."""


# --------------------------------------------------------------------------------------------
# The worker's side
# --------------------------------------------------------------------------------------------

def run(job: dict, timeout: float, pool: str | None = None, queue_timeout: float | None = None,
        on_taken: Callable[[float], None] | None = None):
    """An evaluator's answer to `job` (from the pool whose socket is `pool`, by default the
    server's); ServerBusy if none was free within `queue_timeout` seconds (by default
    `timeout`), QueryTimeout (the evaluator killed) if the evaluation took longer than
    `timeout`, EvaluatorFailed if the evaluator died (the memory cap) or the pool is gone.
    `on_taken` is told how many seconds the job waited for an evaluator, once one took it."""
    queue_timeout = timeout if queue_timeout is None else queue_timeout
    queued = time.monotonic()
    deadline = queued + queue_timeout
    conn = _connect(pool or socket_path(), queue_timeout)
    try:
        # the job goes at once, so that the evaluator never waits for this thread (and the GIL)
        # between taking the connection and starting; its pid arrives when it takes the job
        try:
            conn.send(job)
        except BlockingIOError:  # a job larger than the socket's buffer, and no evaluator took it
            raise ServerBusy() from None
        if not conn.poll(max(0.0, deadline - time.monotonic())):
            raise ServerBusy()  # hanging up withdraws the job (the evaluator sees the EOF)
        pid = conn.recv()
        if on_taken is not None:
            on_taken(time.monotonic() - queued)
        if not conn.poll(timeout):
            _kill(pid)
            raise QueryTimeout()
        return conn.recv()
    except (EOFError, OSError) as error:
        raise EvaluatorFailed(str(error)) from None
    finally:
        conn.close()


def _connect(path: str, timeout: float) -> Connection:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)  # connect() waits while the listen queue is full
    try:
        sock.connect(path)
    except socket.timeout:
        sock.close()
        raise ServerBusy() from None
    except OSError as error:
        sock.close()
        raise PoolUnavailable(f"the SPARQL evaluator pool is not reachable: {error}") from None
    sock.setblocking(True)
    # a job larger than the socket's buffer waits for an evaluator to read it: at most `timeout`
    seconds, micros = int(timeout), int((timeout % 1) * 1e6)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", seconds, micros))
    return Connection(sock.detach())


def check_pool(timeout: float = 2.0) -> None:
    """For readiness: PoolUnavailable unless the pool's socket takes a connection (an evaluator
    that takes it reads no job and goes back to waiting)."""
    _connect(socket_path(), timeout).close()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


_private: "Pool | None" = None
_private_lock = threading.Lock()


def socket_path() -> str:
    """The pool's socket: the server's, or a private pool started on first use."""
    path = os.environ.get(SOCKET_ENV)
    if path:
        return path
    global _private
    with _private_lock:
        if _private is None or _private.pid != os.getpid():
            _private = Pool.start(from_environment().sparql_evaluators, keep_environment=False)
        return _private.path


class Pool:
    """The supervisor process and its socket, as seen from the process that started it."""

    def __init__(self, process: subprocess.Popen, path: str, folder: str, size: int):
        self.process, self.path, self.folder, self.size, self.pid = process, path, folder, size, os.getpid()

    @classmethod
    def start(cls, size: int, store: str | None = None, keep_environment: bool = True) -> "Pool":
        """Start the supervisor and wait until its evaluators listen; with keep_environment, the
        processes forked from this one afterwards (gunicorn's workers) find it by SOCKET_ENV."""
        folder = tempfile.mkdtemp(prefix="lodpub-evaluators-")
        path = os.path.join(folder, "socket")
        pool = cls(_start_supervisor(path, size, store), path, folder, size)
        if keep_environment:
            os.environ[SOCKET_ENV] = path
        return pool

    def alive(self) -> bool:
        return self.process.poll() is None

    def restart(self, store: str | None = None) -> None:
        """Start the supervisor again on the same socket, after it ended (killed, out of memory):
        the processes that found the last one by SOCKET_ENV find the new one there."""
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        try:
            os.unlink(self.path)  # the ended supervisor's socket, which nobody listens on
        except FileNotFoundError:
            pass
        self.process = _start_supervisor(self.path, self.size, store)

    def stop(self) -> None:
        self.process.stdin.close()  # the supervisor ends its evaluators, then itself
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


def _start_supervisor(path: str, size: int, store: str | None) -> subprocess.Popen:
    command = [sys.executable, "-m", "server.evaluators", path, str(max(1, size)), store or ""]
    # stdin is the lifeline: the supervisor ends its evaluators and itself when it closes
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               cwd=Path(__file__).resolve().parent.parent)
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
    if not ready or process.stdout.readline().strip() != b"ready":
        process.kill()
        process.wait()
        raise EvaluatorFailed("the SPARQL evaluator pool did not start")
    return process


# --------------------------------------------------------------------------------------------
# The supervisor (python -m server.evaluators SOCKET SIZE [STORE])
# --------------------------------------------------------------------------------------------

def supervise(path: str, size: int, store: str | None) -> None:
    """Keep `size` evaluators forked from this process serving `path`, until stdin closes."""
    from . import sparql_results  # noqa: F401  (imported once here, shared by every fork)
    gc.freeze()  # what every evaluator inherits stays out of its collections (and its pages shared)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(128)
    listener.setblocking(False)  # evaluators wait in select (to notice idleness); one accepts
    children: dict[int, float] = {}
    for _ in range(size):
        _fork_evaluator(listener, store, children)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    _quiet_stdout()
    try:
        while _parent_alive(0.2):
            for pid in _ended(children):
                started = children.pop(pid)
                if time.monotonic() - started < RESPAWN_PAUSE:
                    time.sleep(RESPAWN_PAUSE)
                _fork_evaluator(listener, store, children)
    finally:
        for pid in children:
            _kill(pid)
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)  # our private folder


def _quiet_stdout() -> None:
    """Nobody reads the pipe to the starter after "ready": nothing may ever block on it."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _parent_alive(wait: float) -> bool:
    readable, _, _ = select.select([sys.stdin], [], [], wait)
    return not readable or bool(os.read(sys.stdin.fileno(), 4096))


def _ended(children: dict[int, float]) -> list[int]:
    ended = []
    for pid in list(children):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            ended.append(pid)
    return ended


def _fork_evaluator(listener: socket.socket, store: str | None, children: dict[int, float]) -> None:
    pid = os.fork()
    if pid:
        children[pid] = time.monotonic()
        return
    try:
        _evaluator_main(listener, store)
    finally:
        os._exit(0)


# --------------------------------------------------------------------------------------------
# An evaluator
# --------------------------------------------------------------------------------------------

def _evaluator_main(listener: socket.socket, store: str | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    die_with_parent(signal.SIGKILL)  # even in the middle of a long query
    _quiet_stdout()
    settings = from_environment()
    memory_mb = settings.sparql_memory_mb
    if memory_mb > 0:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    from .sparql_results import open_store
    stores: dict = {}
    if store:
        try:
            open_store(store, stores)
        except OSError as error:
            print(f"SPARQL evaluator: cannot open {store}: {error}", file=sys.stderr)
    _in_big_stack(_serve_jobs, listener, stores, settings.sparql_evaluator_idle_seconds)


def _serve_jobs(listener: socket.socket, stores: dict, idle_seconds: float = 0) -> None:
    """One connection at a time: the job in, the pid out, the answer out; end when memory has
    grown too much, or has grown and no job came for `idle_seconds` (the supervisor forks a
    fresh one)."""
    at_rest, answered = _rss_mb(), False
    while True:
        if not _job_within(listener, idle_seconds):
            if answered and _rss_mb() > at_rest + IDLE_GROWTH_MB:
                return
            continue
        try:
            sock, _ = listener.accept()
        except BlockingIOError:  # another idle evaluator took it
            continue
        sock.setblocking(True)
        conn = Connection(sock.detach())
        try:
            job = conn.recv()
            conn.send(os.getpid())
        except (EOFError, OSError):  # the worker gave up waiting for a free evaluator and hung up
            conn.close()
            continue
        # backstop: should the worker die mid-query (nobody left to kill us), the kernel ends
        # this process a little after the time limit (nothing in Python could stop the Rust
        # evaluation short of ending the process, which the alarm's default action does)
        limit = job.get("timeout") or 0
        if limit > 0:
            signal.alarm(int(limit) + ALARM_GRACE)
        started, answered = time.monotonic(), True
        answer = answer_job(job, stores)
        signal.alarm(0)
        try:
            conn.send(answer)
            if limit and time.monotonic() - started >= limit / 2:
                # near the limit the worker may be about to kill us for this job: take no other
                # job until it has the answer and hangs up (a fast job can never be mistaken)
                conn.recv_bytes()
        except (EOFError, OSError):
            pass
        conn.close()
        if _rss_mb() > RECYCLE_RSS_MB:
            return


def _job_within(listener: socket.socket, seconds: float) -> bool:
    """Whether a connection is waiting, or arrives within `seconds` (0: wait as long as it takes)."""
    readable, _, _ = select.select([listener], [], [], seconds if seconds > 0 else None)
    return bool(readable)


def answer_job(job: dict, stores: dict) -> tuple:
    """("ok", the evaluation) or ("error", status, title, detail, extra): what an evaluator sends
    back (and what the worker computes itself for a light query: server/light_queries.py)."""
    from .sparql_results import EvaluationError, evaluate
    try:
        return ("ok", evaluate(job, stores))
    except EvaluationError as error:
        return ("error", error.status, error.title, error.detail, error.extra)
    except Exception as error:  # never let one query end the evaluator silently
        return ("error", 400, "Query evaluation failed", f"The query could not be evaluated: {error}", {})


def _in_big_stack(function, *args) -> None:
    previous = threading.stack_size(STACK_MIB << 20)
    try:
        thread = threading.Thread(target=function, args=args, name="sparql-evaluation")
        thread.start()
    finally:
        threading.stack_size(previous)
    thread.join()


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the server ends us
    supervise(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None)
