"""Run the app under gunicorn, embedded, with a reload that never publishes invalid data.

SIGHUP (gunicorn's reload) first re-validates and rebuilds from the sources: if they do not
conform, the report is logged, ``releases/current`` is left alone, and the reloaded workers
keep serving the last good release.
"""
from __future__ import annotations

import atexit
import ctypes
import gc
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.workers.base import Worker as BaseWorker
from gunicorn.workers.gthread import ThreadWorker

from . import query_limits
from .config import Settings
from .evaluators import EvaluatorFailed, Pool
from .orphans import fresh_folder
from .release import STORE_DIR

log = logging.getLogger("lodpub")


#: seconds between two attempts at starting again an evaluator pool that would not start
POOL_RETRY_SECONDS = 5.0


class QuitOnceWorker(ThreadWorker):
    """gunicorn's gthread worker, which quits on the first SIGINT or SIGQUIT (Ctrl-C reaches every
    process of the group, then the master sends its workers SIGQUIT) without shutting its thread
    pool down inside the signal handler, as gthread's own handler does. That handler runs in the
    main thread, which may be inside the pool's `submit()` holding the lock `shutdown()` takes, or
    inside the first signal's handler, in `shutdown()` itself, when the second signal comes: the
    worker then waited for ever, until the master killed it at the graceful timeout (seen in 1
    stop of 12 while serving, and in 1 of 80 when Ctrl-C came while the workers loaded the app).
    The pool's threads end with the process (_end_worker)."""

    _quitting = False

    def handle_quit(self, sig, frame) -> None:
        if self._quitting:
            return
        self._quitting = True
        BaseWorker.handle_quit(self, sig, frame)


class LodpubServer(BaseApplication):
    def __init__(self, settings: Settings, evaluators: Pool):
        self.settings, self.evaluators = settings, evaluators
        self._next_pool_start = 0.0
        super().__init__()

    def run(self) -> None:
        try:
            _Arbiter(self).run()
        except RuntimeError as error:  # as BaseApplication.run, which starts gunicorn's own arbiter
            print(f"\nError: {error}\n", file=sys.stderr)
            sys.exit(1)

    def keep_evaluators(self) -> None:
        """Start the SPARQL evaluator pool again if its supervisor ended (killed, or chosen by the
        kernel when memory ran out); meanwhile queries answer 503 and /health/ready fails."""
        if self.evaluators.alive() or time.monotonic() < self._next_pool_start:
            return
        # (no exit status: gunicorn's master reaps every child it has, this one included)
        log.warning("the SPARQL evaluator pool's supervisor ended: starting it again")
        try:
            self.evaluators.restart(_pool_store(self.settings))
        except EvaluatorFailed as error:
            self._next_pool_start = time.monotonic() + POOL_RETRY_SECONDS
            log.error("%s; trying again in %g s", error, POOL_RETRY_SECONDS)

    def load_config(self) -> None:
        s = self.settings
        for key, value in {
            "bind": f"{s.host}:{s.port}",
            "workers": s.workers,
            "worker_class": QuitOnceWorker,
            "threads": 8,
            # the master builds the app once: its modules, templates and locale data are pages
            # the workers share copy-on-write (PSS −34 MiB at rest; docs/performance.md, "The app
            # built once, in the master"); each worker opens the store itself (_init_worker)
            "preload_app": True,
            "timeout": 60,
            "graceful_timeout": 10,
            "keepalive": 5,
            "limit_request_line": 8190,
            "limit_request_fields": 100,
            "limit_request_field_size": 16380,
            "accesslog": None,  # the app writes one JSON line per request (server/request_log.py)
            "control_socket_disable": True,  # several servers may run side by side
            "on_reload": self._rebuild_on_reload,
            "pre_fork": _freeze_before_fork,
            "post_worker_init": _init_worker,
            "child_exit": _forget_worker_metrics,
            "worker_exit": _end_worker,
            "on_exit": _remove_metrics_dir,
        }.items():
            self.cfg.set(key, value)

    def load(self):
        from .app import create_app
        return create_app(self.settings, open_release=False)

    def _rebuild_on_reload(self, arbiter) -> None:
        from .child_process import run_in_child
        from .cli import rebuild
        try:  # in a child, as at start (server/cli.py): the master keeps none of the build's memory
            published = run_in_child(rebuild, self.settings)
        except Exception:  # the master must outlive any failed rebuild
            log.exception("reload: the rebuild failed; still serving the last good release")
            return
        if not published:
            log.error("reload: the sources are not publishable; still serving the last good release")


_METRICS_PREFIX = "lodpub-metrics-"


def _fresh_metrics_dir() -> None:
    """The workers' Prometheus counters go to a new private folder per server start (set before
    anything imports prometheus_client, which reads it once): never counts of an earlier run.
    Its name carries the master's pid, so that the folders of killed servers can be told apart
    (a SIGKILLed master leaves its folder behind: on_exit never runs)."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(fresh_folder(Path(tempfile.gettempdir()), _METRICS_PREFIX))


def _freeze_before_fork(server, worker) -> None:
    """The master's objects, inherited by every worker, are left out of the workers' collections:
    a collection writes to each object it walks, which would copy the shared pages (Python's gc
    docs: freeze right before fork)."""
    gc.freeze()


def _init_worker(worker) -> None:
    # The app (modules, Flask, rdflib, templates: ~86,000 objects) was built in the master and
    # frozen there before the fork; what the worker made since lives as long as it too. Left in
    # the oldest generation, every full collection walked them: 36-50 ms at a time, in the middle of
    # whichever request triggered it (cold JSON-LD GETs at 1M triples took 52-83 ms instead of ~20:
    # docs/performance.md, "Garbage collection pauses").
    gc.freeze()
    from .app import open_release_of
    open_release_of(worker.wsgi)
    _touch_shared_pages(worker.wsgi)


def _touch_shared_pages(app) -> None:
    """Render one page (an error page: no data needed, nothing logged or counted) before the
    worker takes requests: its first use of the app's objects, built in the master, copies the
    pages it writes to (reference counts), which its first request would otherwise pay: a
    worker's first HTML GET at 1M took 29.6-35.2 ms without this, 19.3-26.5 with it."""
    from .app import error_response
    try:
        with app.test_request_context("/", headers={"Accept": "text/html", "Host": "localhost"}):
            error_response(404, "Not Found", "warm-up").get_data()
    except Exception:  # a worker that cannot warm up still serves
        log.exception("the worker's warm-up page failed")


def _end_worker(server, worker) -> None:
    """End a worker after Python's own exit handlers but before the C library's. Written when
    the master opened the release's store before forking: a worker inherited rocksdb's record of
    a thread pool whose threads lived only in the master, and rocksdb's exit handler joined them
    for ever (or aborted). The master no longer opens a store (the release is verified in a
    child, and each worker opens its own after the fork), but the worker's request threads are
    never joined (QuitOnceWorker), so the C library's exit handlers, rocksdb's among them, would
    still run beside threads that may be inside the store. gunicorn's exit code (a boot error
    stops the master) is kept."""
    error = sys.exc_info()[1]
    code = error.code if isinstance(error, SystemExit) else (0 if error is None else 1)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 1)


def _forget_worker_metrics(server, worker) -> None:
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


class _Arbiter(Arbiter):
    """gunicorn's master, which looks after the evaluator pool as it looks after its workers
    (every turn of its loop, at least once a second)."""

    def manage_workers(self) -> None:
        super().manage_workers()
        self.app.keep_evaluators()


def _remove_metrics_dir(server) -> None:
    shutil.rmtree(os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""), ignore_errors=True)


def serve(settings: Settings) -> int:
    _fresh_metrics_dir()
    query_limits.clients_folder()  # made here, shared by the workers, removed when the master exits
    cap_malloc_arenas(settings.malloc_arenas)
    evaluators = _start_evaluators(settings)
    print(f"serving on http://{settings.host}:{settings.port}/ ({settings.workers} workers, "
          f"{settings.sparql_evaluators} SPARQL evaluators)", file=sys.stderr)
    try:
        LodpubServer(settings, evaluators).run()
    finally:
        evaluators.stop()
    return 0


#: glibc's mallopt parameter for the number of arenas (malloc.h)
M_ARENA_MAX = -8


def cap_malloc_arenas(arenas: int) -> bool:
    """At most `arenas` malloc arenas in this process and the ones it forks (the workers), and,
    through the environment, in the programs it starts (the evaluator pool). True if glibc took
    it; elsewhere (another C library) nothing changes."""
    if arenas <= 0:
        return False
    os.environ["MALLOC_ARENA_MAX"] = str(arenas)
    try:
        return bool(ctypes.CDLL(None).mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False


def _start_evaluators(settings: Settings) -> Pool:
    """The SPARQL evaluator pool of the whole server, started before gunicorn forks its workers
    (they find it by its socket in the environment)."""
    return Pool.start(settings.sparql_evaluators, _pool_store(settings))


def _pool_store(settings: Settings) -> str | None:
    """The current embedded store, which the evaluators open at once, so that the first query
    does not wait for it."""
    current = settings.releases / "current"
    store = current.resolve() / STORE_DIR if not settings.remote_store and current.exists() else None
    return str(store) if store and store.is_dir() else None
