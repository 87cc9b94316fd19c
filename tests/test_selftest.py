"""`lodpub selftest URL` against the live server (passes) and against the same server behind a
small proxy that breaks one thing (fails, naming the check)."""
from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import pytest
import requests

from .conftest import run_cli

#: every kind of check the self-test makes (one line each, several for examples and dumps)
CHECKS = ("landing page", "dataset description", "303 /id/", "Turtle /id/", "N-Triples /id/", "RDF/XML /id/",
          "JSON-LD /id/", "JSON-LD context /id/", "SPARQL SELECT (JSON)", "SPARQL SELECT (XML)", "SPARQL ASK",
          "SPARQL CONSTRUCT (Turtle)", "SPARQL UPDATE refused", "SPARQL service description", "dump /dumps/",
          "sitemap", "health")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}

#: (method, path, request headers, status, response headers, body) → the same, changed or not
Breakage = Callable[[str, str, dict, int, dict, bytes], tuple[int, dict, bytes]]


class BreakingProxy:
    """A reverse proxy on loopback in front of the real server, that alters one kind of answer."""

    def __init__(self, upstream: str, breakage: Breakage):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self._forward()

            def do_POST(self):
                self._forward()

            def do_HEAD(self):
                self._forward()

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["Accept-Encoding"] = "identity"
                answer = requests.request(self.command, upstream + self.path, headers=headers,
                                          data=self.rfile.read(length) if length else None,
                                          allow_redirects=False, timeout=60)
                out = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
                status, out, body = breakage(self.command, self.path, dict(self.headers), answer.status_code,
                                             out, answer.content)
                self.send_response(status)
                for key, value in out.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _ntriples_lose_a_line(method, path, headers, status, out, body):
    if path.startswith("/doc/") and out.get("Content-Type", "").startswith("application/n-triples"):
        body = b"".join(body.splitlines(keepends=True)[1:])
    return status, out, body


def _dump_altered(method, path, headers, status, out, body):
    if path == "/dumps/dataset.ttl" and body:
        body = body.replace(b"@prefix", b"@PREFIX", 1)
    return status, out, body


def _found_not_see_other(method, path, headers, status, out, body):
    return (302 if status == 303 else status), out, body


def _update_accepted(method, path, headers, status, out, body):
    if status == 403 and path.startswith("/sparql"):
        return 204, {}, b""
    return status, out, body


def _context_missing(method, path, headers, status, out, body):
    if path.startswith("/context"):
        return 404, {"Content-Type": "text/plain"}, b"gone"
    return status, out, body


def _jsonld_as_plain_json(method, path, headers, status, out, body):
    if path.startswith("/doc/") and out.get("Content-Type", "").startswith("application/ld+json"):
        out = {**out, "Content-Type": "application/json"}
    return status, out, body


def _checksums_not_stated(method, path, headers, status, out, body):
    if path.startswith("/dataset") and out.get("Content-Type", "").startswith("text/turtle"):
        body = b"".join(line for line in body.splitlines(keepends=True) if b"spdx:checksum " not in line)
    return status, out, body


BROKEN = {
    # what needs the description is skipped; only the description fails
    "checksums-not-stated": (_checksums_not_stated, "FAIL  dataset description", "no SHA-256 checksum"),
    "n-triples-loses-a-triple": (_ntriples_lose_a_line, "FAIL  N-Triples /id/", "not the same graph as the Turtle"),
    "dump-altered": (_dump_altered, "FAIL  dump /dumps/dataset.ttl", "SHA-256"),
    "302-instead-of-303": (_found_not_see_other, "FAIL  303 /id/", "expected 303 See Other, got 302"),
    "update-accepted": (_update_accepted, "FAIL  SPARQL UPDATE refused", "accepted an update"),
    # the documents' JSON-LD cannot be expanded either: both JSON-LD checks fail
    "context-missing": (_context_missing, "FAIL  JSON-LD ", "404"),
    "json-ld-mislabelled": (_jsonld_as_plain_json, "FAIL  JSON-LD ", "expected application/ld+json"),
}


def test_selftest_passes_against_the_live_server(server):
    result = run_cli("selftest", server.url + "/", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert not [line for line in lines if not line.startswith("PASS")], result.stdout
    for check in CHECKS:
        assert any(line.startswith(f"PASS  {check}") for line in lines), f"no {check!r} check:\n{result.stdout}"
    assert sum(line.startswith("PASS  dump /dumps/") for line in lines) == 4


def test_selftest_sees_the_proxy_as_a_faithful_deployment(server):
    proxy = BreakingProxy(server.url, lambda method, path, headers, status, out, body: (status, out, body))
    try:
        result = run_cli("selftest", proxy.url, timeout=300)
    finally:
        proxy.stop()
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", list(BROKEN))
def test_selftest_fails_and_names_what_is_broken(server, case):
    breakage, failing, reason = BROKEN[case]
    proxy = BreakingProxy(server.url, breakage)
    try:
        result = run_cli("selftest", proxy.url, timeout=300)
    finally:
        proxy.stop()
    assert result.returncode == 1, result.stdout
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL  ")]
    assert failed and all(line.startswith(failing) for line in failed), result.stdout
    assert all(reason in line for line in failed), result.stdout
    assert result.stdout.rstrip().endswith(f"{len(failed)} check(s) failed at {proxy.url}")
    skipped = [line for line in result.stdout.splitlines() if line.startswith("SKIP  ")]
    assert all(re.match(r"SKIP  (Turtle|N-Triples|RDF/XML|JSON-LD|JSON-LD context) /id/|SKIP  SPARQL", line)
               for line in skipped), result.stdout
