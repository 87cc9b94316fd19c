"""`lodpub export-static` and its nginx rules: the static site answers as the app does.

The export of the session's build is served by a real nginx (tests/static_site.py) and compared
with the app under gunicorn serving the same release from its embedded store (the site's SPARQL
upstream), request by request: every response the export
recorded, then negotiation with awkward Accept and Accept-Language headers, the 404s and 406s,
conditional requests, and the SPARQL endpoint proxied elsewhere. (tests/test_linked_data.py and
tests/test_linked_data_html.py also run whole against the static site.)
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from rdflib import Graph
from rdflib.compare import isomorphic

from tests.conftest import run_cli
from tests.static_site import NGINX, require_nginx, static_site  # noqa: F401 - static_site is a fixture
from tests.test_linked_data_helpers import MEETING

#: Headers the app sets that the static site must send alike (ETag and Last-Modified are nginx's).
COMPARED = ("Content-Type", "Content-Language", "Content-Location", "Link", "Cache-Control",
            "Content-Security-Policy", "Access-Control-Allow-Origin", "Location")
JSONLD = "http://www.w3.org/ns/json-ld#"
NEGOTIATED_PATHS = (f"/doc/{MEETING}", "/doc/organization/escwa", "/doc/graph/meeting/translation", "/ontology",
                    "/shapes", "/dataset", "/dataset/quality", "/openapi.json", "/", f"/doc/{MEETING}.html",
                    f"/doc/{MEETING}.jsonld", "/dataset.html")
ACCEPTS = (
    None, "", "*/*", "*", "text/html", "TEXT/Turtle", "application/json", "application/*", "text/plain", "image/png",
    "text/turtle;q=0.5, application/ld+json", "application/ld+json;q=0.4, text/turtle;q=0.8",
    "text/*;q=0.3, text/html;q=0", "application/n-triples;q=1, */*;q=0.1",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "application/json;q=0.5, text/turtle", "application/*;q=0.9, text/turtle;q=0.9",
    "application/rdf+xml;q=0.9, text/turtle;q=0.9", "application/n-triples, text/turtle",
    "text/turtle;q=abc, application/n-triples", "text/turtle;q=1.5, application/rdf+xml;q=0.2",
    "text/html;level=1, text/turtle;q=0.9", "text/html;q=0", "*/*;q=0", "application/sparql-results+json",
    f'application/ld+json;profile="{JSONLD}expanded"', "application/ld+json; profile=framed",
    f'application/ld+json;profile="{JSONLD}framed {JSONLD}compacted"',
    f'application/ld+json;profile="{JSONLD}expanded";q=0.5, application/ld+json;profile="{JSONLD}framed"',
    f'text/turtle;q=0.9, application/ld+json;profile="{JSONLD}expanded";q=0.9',
    'application/ld+json;profile="nonsense", text/turtle;q=0.1', "application/vnd.oai.openapi+json;q=0.2, */*;q=0.1",
    "text/turtle; charset=utf-8", "text/html;charset=utf-8, */*;q=0.1", "application/json;charset=utf-8",
)
LANGUAGES = (None, "fr", "fr-CH, fr;q=0.9, en;q=0.5", "de", "zh-Hans-CN", "en-US", "*", "ru;q=0.1, es;q=0.2",
             "es-419", "ar;q=0, en", "pt, *;q=0.5", "EN_gb", "xx;q=abc, ru")
QUERIES = ("", "?lang=en", "?lang=xx", "?lang=fr&lang=en", "?lang=AR", "?lang=en-GB", "?lang=zh_Hant", "?lang=%C4%B0t", "?profile=framed", f"?profile={JSONLD}expanded",
           "?profile=nonsense&lang=zh", "?other=1")


def _compare(dynamic: requests.Response, static: requests.Response, site, what) -> None:
    assert static.status_code == dynamic.status_code, (what, dynamic.status_code, static.status_code)
    for name in COMPARED:
        assert static.headers.get(name) == dynamic.headers.get(name), (what, name)
    assert _vary(static) == _vary(dynamic), what
    if dynamic.status_code != 303:  # (nginx writes its own little page with a redirect)
        assert _same_body(static, dynamic, site), what


RDFLIB_FORMATS = {"text/turtle": "turtle", "application/rdf+xml": "xml", "application/n-triples": "nt",
                  "application/ld+json": "json-ld"}


def _same_body(static: requests.Response, dynamic: requests.Response, site) -> bool:
    """The same bytes, but for the host named by the pages that name it (landing page, sitemap,
    robots.txt); or, for the catalogue's RDF (rdflib writes it in its own order and with new
    blank node labels in each process, hence its weak ETags), the same graph."""
    if static.content.replace(site.url.encode(), b"HOST") == dynamic.content.replace(site.dynamic_url.encode(), b"HOST"):
        return True
    fmt = RDFLIB_FORMATS.get(dynamic.headers.get("Content-Type", "").split(";")[0])
    if fmt is None or not urlsplit(dynamic.url).path.startswith("/dataset"):
        return False
    return isomorphic(Graph().parse(data=static.content, format=fmt), Graph().parse(data=dynamic.content, format=fmt))


def _vary(response) -> set[str]:
    return {v.strip() for v in response.headers.get("Vary", "").split(",") if v.strip()}


@pytest.fixture(scope="module")
def pair(static_site):
    """(the app under gunicorn on the release's own store, the static export of the same release)."""
    static_site.dynamic_url = static_site.upstream.url
    return static_site.upstream, static_site


def test_every_exported_response_is_the_apps(pair):
    """Replay every request the export made, on the app and on nginx: same status, bytes, headers."""
    server, site = pair
    recorded = json.loads((site.folder / "export" / "export.json").read_text(encoding="utf-8"))["responses"]
    assert len(recorded) > 1500
    dynamic, static = requests.Session(), requests.Session()
    for key, response in recorded.items():
        request = response["request"]
        path = request["path"] + (f"?{request['query']}" if request["query"] else "")
        headers = {**request["headers"], "Accept": request["headers"].get("Accept")}
        _compare(dynamic.get(server.url + path, headers=headers, allow_redirects=False, timeout=30),
                 static.get(site.url + path, headers=headers, allow_redirects=False, timeout=30), site, key)


@pytest.mark.parametrize("path", NEGOTIATED_PATHS)
def test_negotiation_chooses_as_the_app_does(pair, path):
    """q-values, wildcards, specificity, JSON-LD profiles, languages: the same choice, or the same 406."""
    server, site = pair
    dynamic, static = requests.Session(), requests.Session()
    cases = [({"Accept": accept}, "") for accept in ACCEPTS]
    cases += [({"Accept": "text/html", "Accept-Language": language}, "") for language in LANGUAGES]
    cases += [({"Accept": accept}, query) for query in QUERIES for accept in ("text/html", "application/ld+json")]
    for headers, query in cases:
        what = (path + query, headers)
        _compare(dynamic.get(server.url + path + query, headers=headers, allow_redirects=False, timeout=30),
                 static.get(site.url + path + query, headers=headers, allow_redirects=False, timeout=30), site, what)


@pytest.mark.parametrize("path", [
    "/id/meeting/no-such-meeting", "/doc/meeting/no-such-meeting", "/doc/meeting/no-such-meeting.ttl",
    "/doc/meeting/Bad..Path", "/doc/meeting/x.exe", "/graph/nope", "/graph/meeting/nope", "/ontology.exe",
    "/shapes.xml", "/nothing", "/doc/", "/id/", "/doc/meeting/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "/id/meeting/%22quoted%22%20%26%20'single'", "/doc/meeting/caf%C3%A9", "/id/meeting/x/", "/sitemap.xml/x",
    "/dataset.xyz", "/dataset.ttl.gz", "/dataset/nope", "/dataset/2001-01-01.deadbeef", "/context/0.0.1.jsonld",
    "/context/it's.jsonld", "/dumps/nope.nq", "/dumps/a%5Cb%22c", "/dumps/%3Cb%3E'%09", "/dumps/x/y",
])
def test_not_found_is_the_apps_problem_document(pair, path):
    """404s name the IRI asked for, escaped as the app escapes it, as HTML or as problem JSON."""
    server, site = pair
    for accept in ("text/html", "application/json", None, "application/ld+json, application/json"):
        headers = {"Accept": accept}
        dynamic = requests.get(server.url + path, headers=headers, allow_redirects=False, timeout=30)
        static = requests.get(site.url + path, headers=headers, allow_redirects=False, timeout=30)
        assert dynamic.status_code == 404, (path, dynamic.status_code)
        _compare(dynamic, static, site, (path, accept))
        assert static.content == dynamic.content, (path, accept)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_only_reads_are_allowed(pair, method):
    server, site = pair
    for path in (f"/doc/{MEETING}", f"/id/{MEETING}", "/ontology.ttl", "/context.jsonld"):
        for accept in ("text/html", "application/json"):
            headers = {"Accept": accept}
            dynamic = requests.request(method, server.url + path, headers=headers, data=b"x", timeout=30)
            static = requests.request(method, site.url + path, headers=headers, data=b"x", timeout=30)
            assert dynamic.status_code == 405, path
            _compare(dynamic, static, site, (method, path, accept))
            allowed = ({m.strip() for m in response.headers["Allow"].split(",")} for response in (static, dynamic))
            assert next(allowed) == next(allowed)  # (the app lists them in a set's order)


def test_redirects_are_the_apps(pair, built):
    server, site = pair
    for path in ("/.well-known/void", f"/dataset/{built.version}", f"/id/{MEETING}?lang=fr&x=%20y",
                 "/graph/meeting/translation", "/id/organization/escwa"):
        for accept in ("text/turtle", "text/html", None):
            headers = {"Accept": accept}
            dynamic = requests.get(server.url + path, headers=headers, allow_redirects=False, timeout=30)
            assert dynamic.status_code == 303, path
            _compare(dynamic, requests.get(site.url + path, headers=headers, allow_redirects=False, timeout=30),
                     site, (path, accept))


def test_every_representation_has_its_own_etag_and_revalidates(static_site):
    """nginx's ETag is its own (the file's mtime and size): every variant of a document has a
    different one, even two of the same size, and both validators answer 304."""
    site = static_site
    etags = {}
    for accept in ("text/html", "text/turtle", "application/n-triples", "application/rdf+xml", "application/ld+json",
                   f'application/ld+json;profile="{JSONLD}expanded"', f'application/ld+json;profile="{JSONLD}framed"'):
        for encoding in ("identity", "gzip"):
            for language in ("ar", "en"):
                response = site.get(f"/doc/{MEETING}", headers={"Accept": accept, "Accept-Encoding": encoding,
                                                                "Accept-Language": language})
                assert response.status_code == 200
                etag = response.headers["ETag"]
                assert etag.startswith('"'), etag  # strong
                key = (response.headers["Content-Type"], response.headers.get("Content-Location"),
                       response.headers.get("Content-Encoding"))
                assert etags.setdefault(key, etag) == etag
                again = site.get(f"/doc/{MEETING}", headers={"Accept": accept, "Accept-Encoding": encoding,
                                                             "Accept-Language": language, "If-None-Match": etag})
                assert again.status_code == 304 and again.headers["ETag"] == etag
                dated = site.get(f"/doc/{MEETING}", headers={
                    "Accept": accept, "Accept-Encoding": encoding, "Accept-Language": language,
                    "If-Modified-Since": response.headers["Last-Modified"]})
                assert dated.status_code == 304
    assert len(set(etags.values())) == len(etags) > 12


def test_sparql_is_proxied_to_the_endpoint_elsewhere(pair):
    server, site = pair
    query = {"query": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"}
    headers = {"Accept": "application/sparql-results+json"}
    dynamic = requests.get(server.url + "/sparql", params=query, headers=headers, timeout=30)
    static = requests.get(site.url + "/sparql", params=query, headers=headers, timeout=30)
    assert static.status_code == dynamic.status_code == 200
    assert static.json()["results"] == dynamic.json()["results"]


def test_internal_files_are_not_public(static_site):
    """Only the app's URLs answer: the exported file names of variants and the rules are hidden."""
    for path in (f"/doc/{MEETING}.lang-en.html", f"/doc/{MEETING}.expanded.jsonld", "/_lodpub/f/robots.txt",
                 "/index.lang-en.html", "/dataset.accept-fr.html", "/_errors/not_found.json", "/export.json",
                 f"/doc/{MEETING}.ttl.gz", "/nginx/server.conf", "/openapi.0.json"):
        assert static_site.get(path).status_code == 404, path


def test_cli_exports_and_nginx_accepts_the_rules(built, settings, tmp_path):
    require_nginx()
    out = tmp_path / "site"
    result = run_cli("export-static", str(out), "--releases", str(settings.releases),
                     "--sparql-url", "http://127.0.0.1:9/sparql", "--site-url", "https://data.example.org")
    assert result.returncode == 0, result.stderr + result.stdout
    manifest = json.loads((out / "export.json").read_text(encoding="utf-8"))
    assert f"/doc/{MEETING}" in manifest["documents"] and manifest["sparql_url"] == "http://127.0.0.1:9/sparql"
    assert (out / "site" / "doc" / (MEETING + ".ttl")).is_file()
    assert "https://data.example.org/sitemap.xml" in (out / "site" / "robots.txt").read_text(encoding="utf-8")
    conf = (out / "nginx" / "nginx.conf").read_text(encoding="utf-8").replace("/tmp;", f"{tmp_path};")
    (tmp_path / "test.conf").write_text(conf.replace("pid nginx.pid;", f"pid {tmp_path / 'nginx.pid'};"))
    check = subprocess.run([str(NGINX), "-t", "-p", str(tmp_path), "-c", str(tmp_path / "test.conf")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    assert "proxy_pass http://127.0.0.1:9/sparql;" in (out / "nginx" / "server.conf").read_text(encoding="utf-8")
    assert Path(out / "site" / "sitemap.xml").is_file()


def test_random_requests_get_the_apps_status(pair):
    """A seeded jumble of paths, Accept, Accept-Language and query strings: never a 500, and the
    status, Content-Type and Location the app gives."""
    import random
    server, site = pair
    rng = random.Random(6)
    paths = ["/", "/id/", "/doc/", "/graph/", "/ontology", "/shapes", "/dataset", "/dataset/quality", "/openapi.json",
             "/context.jsonld", "/sitemap.xml", "/dumps/", f"/id/{MEETING}", f"/doc/{MEETING}",
             "/doc/organization/escwa", "/graph/meeting/translation", "/doc/graph/provenance"]
    # (no %00, //, /./ or /../: nginx refuses or normalises them itself, see docs/static-export.md)
    tails = ["", ".html", ".ttl", ".jsonld", ".nt", ".rdf", ".xml", "/", "/x", "x..", "%20", "x%2e", ".ttl.gz", "-1",
             ".lang-en.html", "?lang=", "?", "#x", "%C3%A9"]
    accepts = [a for a in ACCEPTS if a is not None] + [",,,", ";q=1", "text/turtle;q=0.0001", "*/*;q=0.5, text/*",
                                                        "application/ld+json;profile=", 'x/y;p="unclosed']
    dynamic, static = requests.Session(), requests.Session()
    for _ in range(400):
        path = (rng.choice(paths) + rng.choice(tails)).replace("//", "/") + \
            rng.choice(["", "", f"?{rng.choice(QUERIES)[1:]}"])
        headers = {"Accept": rng.choice(accepts), "Accept-Language": rng.choice(LANGUAGES)}
        a = dynamic.get(server.url + path, headers=headers, allow_redirects=False, timeout=30)
        b = static.get(site.url + path, headers=headers, allow_redirects=False, timeout=30)
        assert b.status_code < 500, (path, headers, b.status_code)
        assert (b.status_code, b.headers.get("Content-Type"), b.headers.get("Location")) == \
            (a.status_code, a.headers.get("Content-Type"), a.headers.get("Location")), (path, headers)
