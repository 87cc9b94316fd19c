"""The Flask application: one factory, three blueprints, and what every response shares."""
from __future__ import annotations

import base64
import hashlib
import logging
import re
from functools import lru_cache

from flask import Flask, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.sansio.utils import get_current_url

from . import i18n, preconditions, request_log
from .config import Settings, from_environment
from .negotiation import best_match
from .publication import Publication, Publisher
from .release import ReleaseError
from .stores import StoreUnavailable
from .templating import ViewModelEnvironment

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, open_release: bool = True) -> Flask:
    """The app. `open_release=False` leaves the release's store closed, for `open_release_of()` to
    open in each process that serves: gunicorn's master builds the app once for the workers it
    forks (server/serving.py), and a store handle must not cross a fork."""
    settings = settings or from_environment()
    app = Flask(__name__)
    app.jinja_environment = ViewModelEnvironment
    app.config.update(MAX_CONTENT_LENGTH=settings.max_request_bytes, JSON_AS_ASCII=False)
    app.json.ensure_ascii = False
    app.extensions["lodpub.settings"] = settings
    app.extensions["lodpub.publisher"] = Publisher(settings)

    from . import catalog, health, linked_data, metrics, openapi, sparql
    for module in (linked_data, sparql, catalog, openapi, health):
        app.register_blueprint(module.blueprint)
    from . import search  # /search, and the search box of every page's header
    app.register_blueprint(search.blueprint)
    app.register_blueprint(metrics.blueprint)
    app.before_request(_before_the_view)
    from . import html_pages
    app.jinja_env.globals["site_words"] = i18n.words_by_language("page")  # every page's header and footer
    app.jinja_env.globals["plural"] = i18n.plural
    app.jinja_env.filters["arabic_marked"] = i18n.arabic_marked
    html_pages.warm_up(app, settings.base)
    if open_release:
        open_release_of(app)

    app.after_request(_shared_headers)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(StoreUnavailable, _store_unavailable)
    app.register_error_handler(ReleaseError, _no_release)
    app.register_error_handler(UnicodeDecodeError, _undecodable_query_string)
    app.register_error_handler(Exception, _unexpected_error)
    from .response_cache import ResponseCache
    app.wsgi_app = ResponseCache(app.wsgi_app, app.extensions["lodpub.publisher"], settings.response_cache_bytes)
    app.wsgi_app = request_log.RequestLog(app.wsgi_app, settings.access_log)
    if settings.trusted_proxies:  # outside the response cache, which keys on the host and scheme it fixes
        from werkzeug.middleware.proxy_fix import ProxyFix
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    return app


def open_release_of(app: Flask) -> None:
    """Open the embedded release as the worker starts rather than on its first request (at 1M
    triples ~11 ms of CPU, 35 ms wall), in the worker itself (rocksdb's threads and locks stay in
    the process that opened the store). Not a remote store: one that is slow or down must not
    hold up the start; nor a missing release: the requests answer 503 until there is one."""
    if app.extensions["lodpub.settings"].remote_store:
        return
    try:
        app.extensions["lodpub.publisher"].current()
    except (ReleaseError, OSError) as error:
        log.info("no release opened at start: %s", error)


def settings() -> Settings:
    return current_app.extensions["lodpub.settings"]


def publication() -> Publication:
    """The release this request is answered from (fixed for the whole request)."""
    from flask import g
    if "publication" not in g:
        g.publication = current_app.extensions["lodpub.publisher"].current()
        request.environ[request_log.RELEASE_KEY] = g.publication.version  # for the access log
    return g.publication


def host_url() -> str:
    """`request.host_url`, kept per scheme and host: werkzeug rebuilds it (as an IRI) every time."""
    return _host_url(request.scheme, request.host)


@lru_cache(maxsize=64)  # the Host header is the client's to choose: bounded
def _host_url(scheme: str, host: str) -> str:
    return get_current_url(scheme, host)


_JSON_LD_BLOCK = re.compile(rb'<script type="application/ld\+json">(.*?)</script>', re.S)
_CSP = ("default-src 'self'; script-src 'self'{hashes}; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def content_security_policy(html: bytes) -> str:
    """A strict CSP: our own files only, no inline script but the page's hashed JSON-LD blocks."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(block).digest()).decode()}'"
        for block in _JSON_LD_BLOCK.findall(html))
    return _CSP.format(hashes=hashes)


_SHARED_HEADERS = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Expose-Headers", "ETag, Last-Modified, Link, Content-Location, Content-Language, Vary"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
)


def _shared_headers(response):
    """The headers every response carries, unless the view set its own."""
    present = {name.lower() for name in response.headers.keys()}
    # Pages cached compressed set their own CSP (computed once, from the uncompressed HTML).
    if response.mimetype == "text/html" and not response.direct_passthrough \
            and "content-encoding" not in present and "content-security-policy" not in present:
        response.headers["Content-Security-Policy"] = content_security_policy(response.get_data())
    if request.is_secure and "strict-transport-security" not in present:
        response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    response.headers.extend([(name, value) for name, value in _SHARED_HEADERS if name.lower() not in present])
    return response


def _before_the_view():
    """What every request needs before its view, in one hook (each hook Flask calls costs every
    request 8–22k instructions, up to 1.5 % of an uncached ASK): its route for the access log; a Host
    header; If-Match and If-Unmodified-Since, which server/preconditions.py evaluates on the
    view's answer.

    RFC 9112 §3.2: an HTTP/1.1 request without a Host header is answered 400 (gunicorn passes it
    on; the answer would otherwise carry links to whatever host the server guessed)."""
    request_log.note_route()
    environ = request.environ
    if environ.get("SERVER_PROTOCOL") == "HTTP/1.1" and not environ.get("HTTP_HOST"):
        return error_response(400, "Bad Request", "An HTTP/1.1 request must say which host it is for "
                              "(a Host header, RFC 9112 §3.2).")
    preconditions.hold_if_match()
    return None


def wants_html() -> bool:
    best = best_match(request.accept_mimetypes, ["text/html", "application/json", "text/plain"])
    return best == "text/html"


def error_response(status: int, title: str, detail: str, **extra):
    """An error as HTML for browsers, in the reader's language, else as RFC 9457 problem JSON (in
    English, for programs); never a bare stack trace."""
    if wants_html():
        lang, negotiated = _error_page_language()
        body = render_template("error.html", status=status, title=title, detail=detail, extra=extra, lang=lang,
                               explicit=not negotiated, e=i18n.words("errors", lang))
        response = current_app.response_class(body, status=status, mimetype="text/html")
        response.headers["Content-Language"] = lang
        response.vary.update(["Accept", "Accept-Language"] if negotiated else ["Accept"])
    else:
        response = jsonify({"type": "about:blank", "status": status, "title": title, "detail": detail, **extra})
        response.status_code = status
        response.mimetype = "application/problem+json"
        response.vary.add("Accept")
    return response


def _error_page_language() -> tuple[str, bool]:
    """The page's language, and whether Accept-Language chose it (not ?lang=)."""
    try:
        return i18n.chosen_language(), i18n.language_was_negotiated()
    except UnicodeDecodeError:  # a query string that is not UTF-8 (its own error): no ?lang= to read
        return i18n.best_language(request.accept_languages), True


def _http_error(error: HTTPException):
    response = error_response(error.code or 500, error.name, error.description or error.name)
    for header in ("Allow", "Retry-After", "Content-Range"):  # (416: the length, RFC 9110 §15.5.17)
        if error.get_response().headers.get(header):
            response.headers[header] = error.get_response().headers[header]
    return response


def _store_unavailable(error: StoreUnavailable):
    from . import metrics
    metrics.store_error()
    log.warning("%s %s: %s", request.method, request.path, error)
    response = error_response(503, "Store unavailable",
                              "The triple store behind this server does not answer at the moment; "
                              "try again in a few seconds.")
    response.headers["Retry-After"] = "5"
    response.headers["Cache-Control"] = "no-store"
    return response


def _no_release(error: ReleaseError):
    log.error("%s %s: %s", request.method, request.path, error)
    response = error_response(503, "No release to serve", "This server has no release of the data to serve yet.")
    response.headers["Retry-After"] = "10"
    response.headers["Cache-Control"] = "no-store"
    return response


def _undecodable_query_string(error: UnicodeDecodeError):
    """werkzeug reads the query string as UTF-8 and raises on any other raw byte. gunicorn refuses
    such a request line itself; other WSGI servers pass it on, and it is the client's error."""
    try:
        request.query_string.decode()
    except UnicodeDecodeError:
        return error_response(400, "Bad Request", "The query string is not UTF-8: send its characters "
                              "as UTF-8, percent-encoded (RFC 3986).")
    return _unexpected_error(error)


def _unexpected_error(error: Exception):
    log.exception("unexpected error on %s %s", request.method, request.path)
    return error_response(500, "Internal Server Error", "The server failed to answer this request; it has been logged.")
