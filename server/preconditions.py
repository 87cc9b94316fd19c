"""If-Match and If-Unmodified-Since on every GET and HEAD (RFC 9110 §13.1.1, §13.1.4, §13.2.2).

werkzeug evaluates If-None-Match, If-Modified-Since and If-Range for the views (304, 206), and
If-Match only in part, wrongly: a Range request was answered 206 whatever its If-Match said, so a
download resumed on an ETag of the previous release got the rest of another file; "If-Match: *"
got 412, with the whole file as its body. If-Unmodified-Since it ignores. So If-Match is held back
from the views (werkzeug never sees it), and both are evaluated here on the answer the view made,
in RFC 9110's order: If-Match first (strong comparison: a weak ETag never matches), then
If-Unmodified-Since only without it. Either one false is 412 Precondition Failed; an answer other
than 2xx or 304 (a 404, a failed query) ignores them.
"""
from __future__ import annotations

from flask import Response, after_this_request, request
from werkzeug.http import parse_etags

_HELD = "lodpub.if_match"


def hold_if_match() -> None:
    """Before the view: If-Match out of werkzeug's sight, and the answer checked after the view
    when the request states a precondition (per request: a hook for all would cost every one)."""
    environ = request.environ
    value = environ.pop("HTTP_IF_MATCH", None)
    if value is not None:
        environ[_HELD] = value
    if value is not None or "HTTP_IF_UNMODIFIED_SINCE" in environ:
        after_this_request(refuse_failed_preconditions)


def refuse_failed_preconditions(response: Response) -> Response:
    if request.method not in ("GET", "HEAD") or not (200 <= response.status_code < 300 or response.status_code == 304):
        return response
    if _HELD in request.environ:
        if_match = parse_etags(request.environ[_HELD])
        etag, weak = response.get_etag()
        if if_match.star_tag or (etag is not None and not weak and if_match.contains(etag)):
            return response
        return _failed("If-Match", "the current ETag is " + (response.headers.get("ETag") or "none"))
    since, modified = request.if_unmodified_since, response.last_modified
    if since is not None and modified is not None and modified > since:
        return _failed("If-Unmodified-Since", "it was last modified " + response.headers["Last-Modified"])
    return response


def _failed(header: str, why: str) -> Response:
    from .app import error_response  # (app.py imports this module)
    failed = error_response(412, "Precondition Failed", f"The {header} condition is false: {why}.")
    failed.headers["Cache-Control"] = "no-store"
    return failed
