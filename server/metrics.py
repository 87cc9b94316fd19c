"""Prometheus metrics at ``/metrics``: requests by route and status, latency, SPARQL time-outs,
the SPARQL queue, store errors and the release served.

gunicorn runs several worker processes, each counting its own requests; prometheus_client's
multiprocess mode adds them up. server/serving.py points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh
folder before the workers fork (prometheus_client reads it when first imported) and marks dead
workers. Without it (the app run in one process) the metrics are the process's own.

Every request is counted once, by the middleware of server/request_log.py, whether the app or
the response cache in front of it answered. Labels are bounded: the route is the URL rule that
matched (``/doc/<path:rest>``), never the path a client made up; requests no rule matched count
as ``unmatched``.
"""
from __future__ import annotations

import os
import threading

from flask import Blueprint, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess,
)

blueprint = Blueprint("metrics", __name__)

UNMATCHED = "unmatched"
_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}

REQUESTS = Counter("lodpub_http_requests_total", "HTTP requests answered, by URL rule, method and status.",
                   ["route", "method", "status"])
DURATION = Histogram("lodpub_http_request_duration_seconds",
                     "Time from the request read to the response made (body not yet sent), by URL rule.",
                     ["route"], buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
SPARQL_TIMEOUTS = Counter("lodpub_sparql_timeouts_total", "SPARQL queries stopped at the time limit.")
SPARQL_EVALUATIONS = Counter("lodpub_sparql_evaluations_total",
                             "SPARQL queries evaluated (result cache misses), by where: in the worker (a light "
                             "query, server/light_queries.py) or in an evaluator process.", ["where"])
SPARQL_QUEUE_WAIT = Histogram("lodpub_sparql_queue_wait_seconds",
                              "Time SPARQL queries waited for a free evaluator process, whether one took them "
                              "or the queue limit ran out first.",
                              buckets=(.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30, 60))
SPARQL_BUSY = Counter("lodpub_sparql_busy_total",
                      "SPARQL queries answered 503 Server busy: no evaluator was free within the queue limit.")
STORE_ERRORS = Counter("lodpub_store_errors_total", "Requests answered 503 because the store could not be reached.")
# livemax: a version counts while a live worker serves it (two during a switch, one after)
RELEASE = Gauge("lodpub_release_info", "The release served by live workers (1) by version.", ["version"],
                multiprocess_mode="livemax")

_served: list[str] = []  # the version this process last reported as served
_served_lock = threading.Lock()


def sparql_timeout() -> None:
    SPARQL_TIMEOUTS.inc()


def sparql_evaluated(where: str) -> None:
    SPARQL_EVALUATIONS.labels(where).inc()


def sparql_waited(seconds: float) -> None:
    """A query waited `seconds` for an evaluator, which then took it."""
    SPARQL_QUEUE_WAIT.observe(seconds)


def sparql_busy(seconds: float) -> None:
    """A query waited `seconds` for an evaluator and none took it."""
    SPARQL_QUEUE_WAIT.observe(seconds)
    SPARQL_BUSY.inc()


def store_error() -> None:
    STORE_ERRORS.inc()


def route() -> str:
    """The URL rule this request matched, or "unmatched"."""
    return request.url_rule.rule if request.url_rule is not None else UNMATCHED


def count(rule: str, method: str, status: int, seconds: float, version: str | None) -> None:
    """Count one request answered."""
    REQUESTS.labels(rule, method if method in _METHODS else "other", str(status)).inc()
    DURATION.labels(rule).observe(seconds)
    if version is not None:
        _report_release(version)


def _report_release(version: str) -> None:
    if _served and _served[0] == version:
        return
    with _served_lock:
        if _served:
            RELEASE.labels(_served[0]).set(0)
        _served[:] = [version]
        RELEASE.labels(version).set(1)


@blueprint.get("/metrics")
def exposition():
    # Not publication(): with a remote store down it would wait for the store's time-out, and
    # a scrape must answer then most of all. The release gauge comes from requests answered
    # (a load balancer's /health/ready probes are enough).
    response = Response(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"
    return response


def _registry() -> CollectorRegistry:
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry
