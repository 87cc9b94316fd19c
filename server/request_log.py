"""One JSON line per request on the ``lodpub.access`` logger (stderr), and a request id.

The id is the client's (or the proxy's) ``X-Request-Id`` when it is a sane token, else a new
one; it is echoed in the response's ``X-Request-Id`` so that a user's report, the proxy's log
and this log can be matched. The log line can be switched off (``LODPUB_ACCESS_LOG=0``); the
id is always echoed.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid
from datetime import datetime, timezone

from flask import Flask, Response, g, request
from werkzeug.wsgi import get_path_info

from .metrics import route

log = logging.getLogger("lodpub.access")

HEADER = "X-Request-Id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")


def install(app: Flask, enabled: bool) -> None:
    app.before_request(_start)
    app.after_request(_finish_logged if enabled else _finish)
    if enabled:
        _configure_logger()


def enabled() -> bool:
    return any(getattr(h, "lodpub_access", False) for h in log.handlers)


def request_id() -> str:
    """This request's id (the client's X-Request-Id if sane, else generated)."""
    if "request_id" not in g:
        g.request_id = request_id_from(request.headers.get(HEADER, ""))
    return g.request_id


def request_id_from(given: str) -> str:
    return given if _SANE_ID.match(given) else uuid.uuid4().hex


def write(environ: dict, *, route: str, status: int, seconds: float | None, nbytes: int | None,
          release: str | None, request_id: str, **extra) -> None:
    """The log line of one request, answered by the app or by the response cache in front of it
    (`extra`: e.g. cached=True)."""
    line = {
        "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "method": environ.get("REQUEST_METHOD"),
        "path": "/" + get_path_info(environ).lstrip("/"),
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 3) if seconds is not None else None,
        "bytes": nbytes,
        "client": environ.get("REMOTE_ADDR"),
        "release": release,
        "user_agent": environ.get("HTTP_USER_AGENT"),
        "request_id": request_id,
        **extra,
        "pid": os.getpid(),  # the gunicorn worker that answered
    }
    log.info(json.dumps(line, ensure_ascii=False, separators=(",", ":")))


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


def _start() -> None:
    g.log_started = time.perf_counter()
    request_id()


def _finish(response: Response) -> Response:
    response.headers[HEADER] = request_id()
    return response


def _finish_logged(response: Response) -> Response:
    _finish(response)
    started = g.get("log_started")
    publication = g.get("publication")
    write(request.environ, route=route(), status=response.status_code,
          seconds=time.perf_counter() - started if started is not None else None,
          nbytes=response.content_length, release=publication.version if publication is not None else None,
          request_id=request_id())
    return response
