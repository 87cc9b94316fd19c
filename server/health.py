"""``/health/live`` and ``/health/ready`` (also ``/health``) for load balancers and orchestrators.

- live: 200 as long as the process answers HTTP (restart it when this fails);
- ready: 200 when a release is loaded, the store answers ``ASK {}`` within the health time
  limit and the SPARQL evaluator pool takes connections (send traffic here), else 503; both
  with a JSON body naming the release served, the store reached and each check with its
  duration and, when it failed, why (the 503 is an RFC 9457 problem document, as every error
  of this server).
Never cached: a cached "ready" would hide an outage.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout
from typing import Callable

from flask import Blueprint, jsonify, request

from . import evaluators
from .app import error_response, publication, settings
from .negotiation import best_match
from .stores import Endpoint

blueprint = Blueprint("health", __name__)

# A store that hangs keeps at most these threads busy; the check itself answers in time.
_probes = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lodpub-health")


@blueprint.get("/health/live")
def live():
    return _answer({"status": "pass"}, 200)


@blueprint.get("/health")
@blueprint.get("/health/ready")
def ready():
    checks: dict[str, dict] = {}
    pub = _run(checks, "release", publication)
    body: dict = {"release": None, "store": _configured_store(), "checks": checks}
    if pub is not None:
        body["release"] = {"version": pub.version, "created": pub.created.isoformat().replace("+00:00", "Z")}
        body["store"] = pub.store_label
        _run(checks, "store", lambda: _ask(pub.store))
        _run(checks, "sparql_evaluators", evaluators.check_pool)
    else:
        checks["store"] = {"status": "fail", "duration_ms": 0.0, "message": "not checked: no release loaded"}
    failed = {name: check["message"] for name, check in checks.items() if check["status"] != "pass"}
    if not failed:
        return _answer({**body, "status": "pass"}, 200)
    # an error like every other of this server: RFC 9457 problem JSON (the same members as the
    # 200 answer), or the HTML error page for a browser that asks for it
    detail = "; ".join(f"{name}: {message}" for name, message in failed.items())
    if _prefers_html():
        response = error_response(503, "Not ready", detail, **body)
    else:
        response = jsonify({"type": "about:blank", "status": 503, "title": "Not ready", "detail": detail, **body})
        response.status_code, response.mimetype = 503, "application/problem+json"
    response.headers["Cache-Control"] = "no-store"
    return response


def _prefers_html() -> bool:
    """A browser: text/html named in Accept and preferred (load balancers and */* get JSON)."""
    accept = request.accept_mimetypes
    named = any(value.split(";")[0].strip().lower() == "text/html" and q > 0 for value, q in accept)
    return named and best_match(accept, ["text/html", "application/problem+json", "application/json"]) == "text/html"


def _configured_store() -> str:
    s = settings()
    return Endpoint.from_settings(s).label if s.remote_store else "embedded pyoxigraph"


def _run(checks: dict[str, dict], name: str, check: Callable[[], object]):
    """Run one check, record its outcome and duration; its value, or None if it failed."""
    started = time.perf_counter()
    try:
        value = check()
        outcome = {"status": "pass"}
    except Exception as error:  # noqa: BLE001 — any failure of a check is the answer, not a 500
        value, outcome = None, {"status": "fail", "message": f"{type(error).__name__}: {error}"}
    checks[name] = {**outcome, "duration_ms": round((time.perf_counter() - started) * 1000, 3)}
    return value


def _ask(store) -> bool:
    limit = settings().health_timeout
    future = _probes.submit(store.query, "ASK {}", use_default_graph_as_union=True)
    try:
        answer = future.result(timeout=limit)
    except FutureTimeout:
        future.cancel()
        raise TimeoutError(f"the store did not answer ASK {{}} within {limit:g} s") from None
    if not bool(answer):
        raise RuntimeError("the store answered ASK {} with false")
    return True


def _answer(body: dict, status: int):
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response
