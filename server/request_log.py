"""What every request leaves behind: its id echoed, its metrics counted, its access-log line.

One WSGI middleware (`RequestLog`, just inside any ProxyFix) does it for every answer, whether
Flask made it or the response cache in front of Flask replayed it. What only the app knows comes
in the WSGI environ: the URL rule matched (`ROUTE_KEY`), the release that answered
(`RELEASE_KEY`) and whether the answer was replayed (`CACHED_KEY`).

The id is the client's (or the proxy's) ``X-Request-Id`` when it is a sane token, else a new
one; it is echoed in the response's ``X-Request-Id`` so that a user's report, the proxy's log
and this log can be matched. The log line (one JSON object on the ``lodpub.access`` logger,
stderr) can be switched off (``LODPUB_ACCESS_LOG=0``); the id is always echoed.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from flask import request
from werkzeug.wsgi import get_path_info

from . import metrics

log = logging.getLogger("lodpub.access")

HEADER = "X-Request-Id"
ROUTE_KEY = "lodpub.route"
RELEASE_KEY = "lodpub.release"
CACHED_KEY = "lodpub.cached"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
_LINE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class RequestLog:
    """WSGI middleware: the request id, the metrics and the access-log line of every request."""

    def __init__(self, app: Callable, log_lines: bool):
        self.app, self.log_lines = app, log_lines
        if log_lines:
            _configure_logger()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID", ""))
        answered: list = []

        def start_with_id(status: str, headers: list, exc_info=None):
            answered[:] = (status, headers)
            return start_response(status, [*headers, (HEADER, request_id)], exc_info)

        body = self.app(environ, start_with_id)
        if answered:  # the app answers before it returns (Flask and the response cache do)
            self._record(environ, *answered, time.perf_counter() - started, request_id)
        return body

    def _record(self, environ: dict, status: str, headers: list, seconds: float, request_id: str) -> None:
        route, release, code = environ.get(ROUTE_KEY, metrics.UNMATCHED), environ.get(RELEASE_KEY), int(status[:3])
        metrics.count(route, environ.get("REQUEST_METHOD", ""), code, seconds, release)
        if self.log_lines:
            length = next((value for name, value in headers if name.lower() == "content-length"), None)
            write(environ, route=route, status=code, seconds=seconds,
                  nbytes=int(length) if length is not None else None, release=release, request_id=request_id,
                  **({"cached": True} if environ.get(CACHED_KEY) else {}))


def note_route() -> None:
    """The URL rule this request matched, left for the middleware (before the view)."""
    request.environ[ROUTE_KEY] = metrics.route()


def request_id_from(given: str) -> str:
    return given if _SANE_ID.match(given) else uuid.uuid4().hex


def write(environ: dict, *, route: str, status: int, seconds: float, nbytes: int | None,
          release: str | None, request_id: str, **extra) -> None:
    """The log line of one request (`extra`: e.g. cached=True)."""
    line = {
        "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "method": environ.get("REQUEST_METHOD"),
        "path": "/" + get_path_info(environ).lstrip("/"),
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "bytes": nbytes,
        "client": environ.get("REMOTE_ADDR"),
        "release": release,
        "user_agent": environ.get("HTTP_USER_AGENT"),
        "request_id": request_id,
        **extra,
        "pid": os.getpid(),  # the gunicorn worker that answered
    }
    log.info(_LINE.encode(line))


def _configure_logger() -> None:
    # Our own handler, not propagated: the line is the message alone, once, whatever the
    # root logger or gunicorn's error log are set up to do.
    if not any(getattr(h, "lodpub_access", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.lodpub_access = True
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
