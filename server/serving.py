"""Run the app under gunicorn, embedded, with a reload that never publishes invalid data.

SIGHUP (gunicorn's reload) first re-validates and rebuilds from the sources: if they do not
conform, the report is logged, ``releases/current`` is left alone, and the reloaded workers
keep serving the last good release.
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile

from gunicorn.app.base import BaseApplication

from .config import Settings

log = logging.getLogger("lodpub")


class LodpubServer(BaseApplication):
    def __init__(self, settings: Settings):
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        for key, value in {
            "bind": f"{s.host}:{s.port}",
            "workers": s.workers,
            "worker_class": "gthread",
            "threads": 8,
            "timeout": 60,
            "graceful_timeout": 10,
            "keepalive": 5,
            "limit_request_line": 8190,
            "limit_request_fields": 100,
            "limit_request_field_size": 16380,
            "accesslog": None,  # the app writes one JSON line per request (server/request_log.py)
            "control_socket_disable": True,  # several servers may run side by side
            "on_reload": self._rebuild_on_reload,
            "child_exit": _forget_worker_metrics,
            "on_exit": _remove_metrics_dir,
        }.items():
            self.cfg.set(key, value)

    def load(self):
        from .app import create_app
        return create_app(self.settings)

    def _rebuild_on_reload(self, arbiter) -> None:
        from .cli import rebuild
        try:
            published = rebuild(self.settings)
        except Exception:  # the master must outlive any failed rebuild
            log.exception("reload: the rebuild failed; still serving the last good release")
            return
        if not published:
            log.error("reload: the sources are not publishable; still serving the last good release")


def _fresh_metrics_dir() -> None:
    """The workers' Prometheus counters go to a new private folder per server start (set before
    anything imports prometheus_client, which reads it once): never counts of an earlier run."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="lodpub-metrics-")


def _forget_worker_metrics(server, worker) -> None:
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


def _remove_metrics_dir(server) -> None:
    shutil.rmtree(os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""), ignore_errors=True)


def serve(settings: Settings) -> int:
    _fresh_metrics_dir()
    print(f"serving on http://{settings.host}:{settings.port}/ ({settings.workers} workers)", file=sys.stderr)
    LodpubServer(settings).run()
    return 0
