"""Web security of the live server (issue 8; the threat model is in SECURITY.md).

- Every HTML page: a strict Content-Security-Policy whose only inline scripts are JSON-LD
  blocks, each hashed in script-src; no inline style (attribute or element) nor event handler,
  since the policy allows neither; X-Content-Type-Options, Referrer-Policy, frame-ancestors.
- HSTS only over HTTPS: behind a TLS-terminating proxy on 127.0.0.1 that sends
  X-Forwarded-Proto (gunicorn trusts it from forwarded_allow_ips, default 127.0.0.1), never
  over plain HTTP, and not when another address claims it.
- No path traversal into the file system through /dumps/ or /static/, in many encodings.
- No reflected input without escaping: <script> in paths, query parameters, headers, queries.
- Safe production defaults: no debug, request size limits, timeouts (config.py, serving.py).
"""
from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from urllib.parse import quote

import pytest
import requests

from server.app import create_app
from server.config import PROJECT_ROOT, Settings
from server.evaluators import Pool
from server.serving import LodpubServer, QuitOnceWorker

from .test_fuzz_support import RawClient

PAYLOAD = "<script>alert(1)</script>"
PAYLOADS = (PAYLOAD, '"><svg onload=alert(1)>', "'><img src=x onerror=alert(1)>", "</textarea><script>x()</script>",
            "javascript:alert(1)", "{{7*7}}", "\u2028</script>")


class _Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.scripts: list[tuple[dict, str]] = []
        self.styles = 0
        self.style_attributes: list[str] = []
        self.handlers: list[str] = []
        self.javascript_urls: list[str] = []
        self._script: dict | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name, value in attrs:
            if name == "style":
                self.style_attributes.append(f"<{tag} style={value!r}>")
            if name.startswith("on"):
                self.handlers.append(f"<{tag} {name}=...>")
            if name in ("href", "src", "action", "formaction") and value and value.strip().lower().startswith("javascript:"):
                self.javascript_urls.append(value)
        if tag == "style":
            self.styles += 1
        if tag == "script":
            self._script, self._text = attributes, []

    def handle_data(self, data):
        if self._script is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script, "".join(self._text)))
            self._script = None


def _html_pages(server) -> list[str]:
    sitemap = server.get("/sitemap.xml").text
    urls = re.findall(r"<loc>([^<]+)</loc>", sitemap)
    paths = sorted({u.replace(server.url, "") for u in urls if "lang=" not in u or "lang=ar" in u})
    return paths + ["/doc/nothing/here", "/sparql", "/sparql?query=" + quote("SELECT * WHERE { ?s ?p ?o } LIMIT 3"),
                    "/sparql?query=" + quote("SELECT * WHERE {"), "/dataset", "/dataset.html", "/ontology.html",
                    "/shapes.html", "/id/" + quote(PAYLOAD)]


@pytest.mark.parametrize("encoding", ["identity", "gzip, deflate, br"])
def test_every_html_page_has_a_strict_csp_matching_its_inline_scripts(server, encoding):
    """Browsers ask for gzip: the CSP must be there on compressed pages too (regression: the
    Linked Data pages, cached gzipped, were sent without any CSP)."""
    pages = _html_pages(server)
    assert len(pages) > 20
    missing = [p for p in pages if "Content-Security-Policy" not in
               server.get(p, headers={"Accept": "text/html", "Accept-Encoding": encoding}).headers]
    assert not missing, f"{len(missing)} of {len(pages)} HTML pages without a CSP, e.g. {missing[:5]}"
    for path in pages:
        response = server.get(path, headers={"Accept": "text/html", "Accept-Encoding": encoding})
        assert response.headers["Content-Type"].startswith("text/html"), path
        csp = response.headers["Content-Security-Policy"]
        directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";") if d.strip())
        assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, (path, csp)
        assert directives["default-src"] == "'self'" and directives["object-src"] == "'none'", csp
        assert directives["frame-ancestors"] == "'none'" and directives["base-uri"] == "'none'", csp
        assert directives["style-src"] == "'self'", csp
        page = _Page()
        page.feed(response.text)
        for attributes, text in page.scripts:
            if "src" in attributes:
                assert attributes["src"].startswith("/static/"), (path, attributes)
                continue
            assert attributes.get("type") == "application/ld+json", (path, attributes)
            digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()
            assert f"'sha256-{digest}'" in directives["script-src"].split(), (path, digest, csp)
        inline = [a for a, _ in page.scripts if "src" not in a]
        assert len(re.findall(r"'sha256-", csp)) == len(inline), (path, csp)
        assert not page.style_attributes and not page.styles, (path, page.style_attributes[:5])
        assert not page.handlers and not page.javascript_urls, (path, page.handlers, page.javascript_urls)


def test_shared_security_headers_on_every_kind_of_answer(server):
    for path, accept in [("/", "text/html"), ("/doc/organization/escwa", "text/turtle"), ("/sparql?query=ASK%7B%7D", "*/*"),
                         ("/dumps/dataset.nq.gz", "*/*"), ("/nothing", "application/json"), ("/nothing", "text/html"),
                         ("/static/style.css", "*/*"), ("/openapi.json", "*/*"), ("/dataset", "image/png")]:
        response = server.get(path, headers={"Accept": accept})
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin", path
        assert "Access-Control-Allow-Credentials" not in response.headers, path
        assert "Strict-Transport-Security" not in response.headers, path  # plain HTTP
        if response.headers["Content-Type"].startswith("text/html"):
            assert "Content-Security-Policy" in response.headers, path


def test_hsts_only_over_https(server):
    """Behind a TLS-terminating proxy on 127.0.0.1 (X-Forwarded-Proto: https, trusted by
    gunicorn's forwarded_allow_ips default), HSTS is sent; links then use https."""
    secure = server.get("/", headers={"X-Forwarded-Proto": "https", "Accept": "text/html"})
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert 'href="https://' in secure.text
    plain = server.get("/", headers={"X-Forwarded-Proto": "http"})
    assert "Strict-Transport-Security" not in plain.headers


TRAVERSALS = [
    "/dumps/../manifest.json", "/dumps/..%2fmanifest.json", "/dumps/..%2Fmanifest.json", "/dumps/%2e%2e/manifest.json",
    "/dumps/%2e%2e%2fmanifest.json", "/dumps/%252e%252e%252fmanifest.json", "/dumps/..%5cmanifest.json",
    "/dumps/..\\manifest.json", "/dumps/manifest.json", "/dumps/store/CURRENT", "/dumps/store%2fCURRENT",
    "/dumps/./manifest.json", "/dumps/%2fetc%2fpasswd", "/dumps//etc/passwd", "/dumps/..%00/manifest.json",
    "/dumps/dataset.ttl%00.txt", "/dumps/%c0%ae%c0%ae/manifest.json", "/dumps/..%c0%afmanifest.json",
    "/dumps/..;/manifest.json", "/dumps/%2e%2e%5c%2e%2e%5cserver%5capp.py", "/dumps/....//manifest.json",
    "/static/../server/app.py", "/static/..%2fapp.py", "/static/..%2f..%2fserver%2fapp.py", "/static/%2e%2e/app.py",
    "/static/%2e%2e%2f%2e%2e%2fpyproject.toml", "/static/..%5capp.py", "/static/..\\app.py",
    "/static/%252e%252e%252fapp.py", "/static//etc/passwd", "/static/%2fetc%2fpasswd", "/static/..%00/app.py",
    "/static/%c0%ae%c0%ae%c0%afapp.py", "/static/....//....//app.py", "/static/style.css/../../app.py",
    "/static/templates/../../app.py", "/static/C:%5cWindows%5cwin.ini", "/static/file:///etc/passwd",
    "/doc/../../../etc/passwd", "/doc/..%2f..%2fserver%2fapp.py", "/id/..%2f..%2fetc%2fpasswd",
    "/context/..%2f..%2fserver%2fapp.py.jsonld", "/dataset/..%2f..%2fmanifest.json", "/dataset/../../etc/passwd",
    "/graph/..%2f..%2fetc%2fpasswd", "/ontology.%2e%2e%2fapp.py", "/shapes.%2e%2e", "/%2e%2e/%2e%2e/etc/passwd",
    "/..%2f..%2fetc%2fpasswd", "//etc/passwd", "/.git/config", "/releases/current/manifest.json",
]
SECRETS = [b"def create_app", b"root:x:0:0", b"[core]", b"\"quads\":", b"[build-system]", b"[fonts]"]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_no_path_traversal(server, built, target):
    client = RawClient(server.port)
    try:
        for method in ("GET", "HEAD"):
            status, headers, body = client.request(method, target.encode("latin-1"), {"Accept": "*/*"})
            assert status in (400, 404, 308, 301), (target, status, body[:200])
            if status in (301, 308):  # a merged-slashes redirect stays on this site, and leads nowhere secret
                location = headers["location"]
                assert location.startswith("/") or location.startswith(server.url), location
                follow = requests.get(server.url + location if location.startswith("/") else location,
                                      allow_redirects=False, timeout=30)
                assert follow.status_code in (404, 400), (target, location, follow.status_code)
                body = follow.content
            assert not any(secret in body for secret in SECRETS), (target, body[:300])
    finally:
        client.close()


def test_dumps_serve_only_the_manifests_files(server, built):
    listed = set(built.manifest["files"])
    for name in ("manifest.json", "store", "current", ".building-x", "description.ttl"):
        status = server.get(f"/dumps/{name}").status_code
        assert status == (200 if name in listed else 404), (name, status)


def _reflections(response: requests.Response) -> list[str]:
    """The payloads that come back unescaped in an HTML answer (markup-free ones are harmless)."""
    if not response.headers.get("Content-Type", "").startswith("text/html"):
        return []
    return [p for p in PAYLOADS if p in response.text and p not in ("javascript:alert(1)", "{{7*7}}")]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_no_reflected_input_unescaped(server, payload):
    q = quote(payload, safe="")
    requests_to_make = [
        ("GET", f"/id/{q}", {}), ("GET", f"/doc/{q}", {}), ("GET", f"/doc/organization/{q}.ttl", {}),
        ("GET", f"/dumps/{q}", {}), ("GET", f"/dataset/{q}", {}), ("GET", f"/dataset.{q}", {}),
        ("GET", f"/context/{q}.jsonld", {}), ("GET", f"/ontology.{q}", {}), ("GET", f"/static/{q}", {}),
        ("GET", f"/?lang={q}", {}), ("GET", f"/doc/organization/escwa?lang={q}&profile={q}", {}),
        ("GET", f"/sparql?query={q}", {}), ("GET", f"/sparql?query=SELECT%20*%20WHERE%20%7B%7D&format={q}", {}),
        ("GET", "/sparql?query=" + quote(f'SELECT ("{payload}" AS ?x) WHERE {{}}'), {}),
        ("GET", "/sparql?query=" + quote(f'SELECT * WHERE {{ ?s ?p "{payload}" ; }}'), {}),
        ("GET", "/sparql?query=" + quote(f"# {payload}\nSELECT * WHERE {{ ?s ?p ?o }} LIMIT 1"), {}),
        ("GET", f"/sparql?default-graph-uri={q}&query=ASK%7B%7D", {}),
        ("GET", "/doc/organization/escwa", {"Accept": payload}), ("GET", "/dataset", {"Accept": payload}),
        ("GET", "/sparql?query=ASK%7B%7D", {"Accept": payload}),
        ("GET", "/", {"Accept-Language": payload}),
        ("POST", "/sparql", {"Content-Type": payload}),
    ]
    found = []
    for method, path, headers in requests_to_make:
        for accept in ("text/html", None):
            h = dict(headers)
            if accept and "Accept" not in h:
                h["Accept"] = accept
            h = {k: v.encode("utf-8").decode("latin-1") for k, v in h.items()}  # any bytes, as sent on the wire
            response = requests.request(method, server.url + path, headers=h, allow_redirects=False, timeout=30,
                                        data=b"query=ASK{}" if method == "POST" else None)
            assert response.status_code < 500, (path, response.status_code)
            if response.headers.get("Content-Type", "").startswith("text/html"):
                assert "Content-Security-Policy" in response.headers, path
            hits = _reflections(response)
            if hits:
                found.append(f"{method} {path} {h}: {hits}")
            location = response.headers.get("Location", "")
            assert "\r" not in location and "\n" not in location and "<" not in location, location
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", ["/sparql", "/search", "/"])
@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_a_raw_byte_in_the_query_string_is_the_clients_error_under_any_wsgi_server(built, settings, path, accept):
    """gunicorn refuses a request line with a raw non-UTF-8 byte itself; other WSGI servers hand
    it to the app (as a latin-1 `QUERY_STRING`), where werkzeug cannot read it as UTF-8."""
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    app = create_app(settings)
    environ = EnvironBuilder(path=path, headers={"Accept": accept}).get_environ()
    environ["QUERY_STRING"] = "query=ASK%7B%7D&q=caf\xe9"
    body, status, headers = run_wsgi_app(app, environ, buffered=True)
    assert status == "400 BAD REQUEST"
    assert "not UTF-8" in b"".join(body).decode()
    assert app.test_client().get(path, query_string={"q": "café"}).status_code < 500  # and nothing broke


def test_production_settings_are_safe_by_default(tmp_path):
    app = create_app(Settings(releases=tmp_path))
    assert not app.debug and not app.testing
    assert app.config["MAX_CONTENT_LENGTH"] == Settings().max_request_bytes == 1_000_000
    assert not app.config.get("PROPAGATE_EXCEPTIONS")
    pool = Pool.start(1, keep_environment=False)  # the server's, which its master looks after
    try:
        server = LodpubServer(Settings(releases=tmp_path), pool)
    finally:
        pool.stop()
    cfg = server.cfg
    assert cfg.limit_request_line == 8190 and cfg.limit_request_fields == 100 and cfg.limit_request_field_size == 16380
    assert 0 < cfg.timeout <= 60 and 0 < cfg.graceful_timeout <= 30 and 0 < cfg.keepalive <= 10
    assert cfg.worker_class is QuitOnceWorker and cfg.threads >= 2  # gthread, quitting once
    assert cfg.bind == ["127.0.0.1:8000"], "listens on loopback only by default"
    assert not cfg.reload, "no code reloading in production"
    assert cfg.forwarded_allow_ips == ["127.0.0.1", "::1"] or cfg.forwarded_allow_ips == ["127.0.0.1"]
    assert Settings().query_timeout <= 10 and Settings().max_result_rows <= 100_000
    assert Settings().max_concurrent_queries_per_client >= 1


def test_limits_answered_live(server):
    client = RawClient(server.port)
    try:
        status, _, _ = client.request("GET", "/" + "a" * 9000)
        assert status == 414  # gunicorn: request line over limit_request_line
        client.close()
        status, _, _ = client.request("GET", "/", {"X-Big": "a" * 17000})
        assert status == 431  # gunicorn: a header field over limit_request_field_size
        client.close()
        status, _, _ = client.request("GET", "/", {f"X-H{i}": "1" for i in range(120)})
        assert status in (400, 431)  # over limit_request_fields
        client.close()
    finally:
        client.close()
    big = requests.post(server.url + "/sparql", data=b"#" * 1_000_001, timeout=30,
                        headers={"Content-Type": "application/sparql-query", "Connection": "close"})
    assert big.status_code == 413 and big.headers["Content-Type"].startswith("application/problem+json")
    long_get = requests.get(server.url + "/sparql", params={"query": "#" + "x" * 7000}, timeout=30)
    assert long_get.status_code in (200, 400)  # within the request line: answered normally
    error = requests.get(server.url + "/nothing", headers={"Accept": "text/html"}, timeout=30)
    assert "Traceback" not in error.text and "werkzeug" not in error.text.lower()
    assert "gunicorn/" not in error.headers.get("Server", ""), "no server version disclosed"


def test_static_files_are_only_the_shipped_ones(server):
    shipped = {p.name: p.read_bytes() for p in (PROJECT_ROOT / "server" / "static").iterdir() if p.is_file()}
    for name, data in shipped.items():
        response = server.get(f"/static/{name}")
        assert response.status_code == 200 and response.content == data
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_an_http_1_1_request_without_host_is_a_400(server):
    """RFC 9112 §3.2 (gunicorn passes such a request on); HTTP/1.0 has no Host to require."""
    import socket

    def status_of(request: bytes) -> int:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(request)
            answer = b""
            while b"\r\n" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        return int(answer.split(b" ", 2)[1])

    target = b"GET /id/meeting/nua-regional-commissions-2022 "
    for _ in range(3):  # (asked again: never answered from the response cache)
        assert status_of(target + b"HTTP/1.1\r\nConnection: close\r\n\r\n") == 400
    assert status_of(target + b"HTTP/1.0\r\n\r\n") == 303
    assert status_of(target + b"HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n") == 303
