"""Whole responses, kept per release and per worker, answered without entering Flask.

A document, the 303 that leads to it and a SPARQL answer are the same for every request that
asks the same thing within one release (their ETags say so). A view marks such a response with
`keep()`; this WSGI middleware then keeps its status, headers and body, keyed by everything the
answer depends on (method, scheme, host, path and query string, and the Accept,
Accept-Language and Accept-Encoding headers), and answers the next identical request itself.
What belongs to each request (the request id, the access-log line and the metrics) is added
around both by server/request_log.py. Flask's routing, negotiation and hooks are skipped, and
they are most of the cost of a small answer.

Conditional and range requests, and requests with credentials or cookies, always go to the app.
The cache of a release is memoised on its publication, so a new release starts empty. Its size
is `LODPUB_RESPONSE_CACHE_BYTES` per worker (0: off). An answer is kept from the second time its
key is asked (server/lru.py): a crawl of every page once neither fills it nor evicts the rest.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import request

from . import metrics
from .lru import LRU
from .publication import Publisher
from .request_log import CACHED_KEY, RELEASE_KEY, ROUTE_KEY

KEEP = "lodpub.keep"
_CACHEABLE_STATUS = ("200 ", "303 ")
#: requests whose answer is not the same for everyone, or not the whole representation
_BYPASS = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_MATCH", "HTTP_IF_UNMODIFIED_SINCE",
           "HTTP_IF_RANGE", "HTTP_RANGE", "HTTP_AUTHORIZATION", "HTTP_COOKIE")
_KEYED = ("wsgi.url_scheme", "HTTP_HOST", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING",
          "HTTP_ACCEPT", "HTTP_ACCEPT_LANGUAGE", "HTTP_ACCEPT_ENCODING")


def keep() -> None:
    """Mark this request's response as the same for every identical request in this release."""
    request.environ[KEEP] = True


class _Kept:
    __slots__ = ("status", "headers", "body", "route")

    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes, route: str):
        self.status, self.headers, self.body, self.route = status, headers, body, route


class ResponseCache:
    """WSGI middleware in front of the Flask app (inside any ProxyFix, which fixes the host and
    scheme it keys on)."""

    def __init__(self, app: Callable, publisher: Publisher, max_bytes: int):
        self.app, self.publisher, self.max_bytes = app, publisher, max_bytes

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if self.max_bytes <= 0 or method not in ("GET", "HEAD") or any(h in environ for h in _BYPASS) \
                or "HTTP_HOST" not in environ:  # (the app refuses an HTTP/1.1 request without one)
            return self.app(environ, start_response)
        try:
            publication = self.publisher.current()
        except Exception:  # no release, store down: the app answers that
            return self.app(environ, start_response)
        cache = publication.memo(("lru", "responses"),
                                 lambda: LRU(self.max_bytes, lambda kept: len(kept.body) + 512, second_request=True))
        key = (method, *(environ.get(name) for name in _KEYED))
        kept = cache.get(key, lambda: None)
        if kept is not None:
            return self._replay(kept, environ, start_response, publication.version)
        return self._answer_and_keep(environ, start_response, cache, key)

    def _answer_and_keep(self, environ, start_response, cache: LRU, key: tuple):
        answered: list = []

        def capture(status, headers, exc_info=None):
            answered[:] = [status, headers, exc_info]
            return _no_write

        body = self.app(environ, capture)
        status, headers, exc_info = answered
        if not environ.get(KEEP) or not status.startswith(_CACHEABLE_STATUS) or exc_info is not None:
            start_response(status, headers, exc_info)
            return body
        try:
            content = b"".join(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        cache.put(key, _Kept(status, headers, content, environ.get(ROUTE_KEY, metrics.UNMATCHED)))
        start_response(status, headers)
        return [content]

    @staticmethod
    def _replay(kept: _Kept, environ: dict, start_response: Callable, version: str):
        environ.update({ROUTE_KEY: kept.route, RELEASE_KEY: version, CACHED_KEY: True})
        start_response(kept.status, kept.headers)
        return [kept.body] if environ["REQUEST_METHOD"] == "GET" else []


def _no_write(data: bytes) -> None:
    raise RuntimeError("write() is not supported behind the response cache")
