"""/dumps/: the release's files over HTTP, byte for byte as the manifest describes them;
isomorphic to each other and to the store; cheap re-harvests (ETag, 304, Range); no way out of
the manifest's list; and never a half-written file, even while another build runs."""
from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import threading
import time
from collections import Counter

import pytest
import rdflib
import requests
from rdflib.compare import isomorphic, to_isomorphic

from server.rdfterms import dataset_from_quads, graph_from_quads
from server.release import DUMPS, open_release
from tests.conftest import LiveServer, run_cli



XSD = "http://www.w3.org/2001/XMLSchema#"
#: Oxigraph 0.5's store keeps the value but not the datatype of integers of derived types
#: (xsd:positiveInteger "1" comes back as xsd:integer "1"); compared as xsd:integer here.
#: The dumps keep the source's datatypes (test_build.py compares them with the sources).
INTEGER_TYPES = {XSD + t for t in ("positiveInteger", "nonNegativeInteger", "negativeInteger",
                                   "nonPositiveInteger", "long", "int", "short", "byte", "unsignedLong",
                                   "unsignedInt", "unsignedShort", "unsignedByte")}


def _integers_as_xsd_integer(graph: rdflib.Graph) -> rdflib.Graph:
    out = rdflib.Graph()
    for s, p, o in graph:
        if isinstance(o, rdflib.Literal) and o.datatype is not None and str(o.datatype) in INTEGER_TYPES:
            o = rdflib.Literal(str(o), datatype=rdflib.URIRef(XSD + "integer"))
        out.add((s, p, o))
    return out


def _graphs(dataset: rdflib.Dataset) -> dict[str, rdflib.Graph]:
    return {str(g.identifier): _integers_as_xsd_integer(g) for g in dataset.graphs() if len(g)}


@pytest.fixture(scope="module")
def store_graphs(built):
    return _graphs(dataset_from_quads(built.open_store().quads_for_pattern(None, None, None, None)))


@pytest.mark.parametrize("name,fmt", [("dataset.nq.gz", "nquads"), ("dataset.trig", "trig"), ("dataset.jsonld", "json-ld")])
def test_quad_dumps_are_isomorphic_to_the_store_graph_by_graph(server, store_graphs, name, fmt):
    response = server.get(f"/dumps/{name}")
    assert response.status_code == 200
    data = gzip.decompress(response.content) if name.endswith(".gz") else response.content
    parsed = _graphs(rdflib.Dataset().parse(data=data, format=fmt))
    assert parsed.keys() == store_graphs.keys()
    for iri, graph in store_graphs.items():
        assert isomorphic(parsed[iri], graph), f"{name}: graph {iri} differs from the store"


def test_turtle_dump_is_the_union_of_the_stores_graphs(server, built):
    union = _integers_as_xsd_integer(graph_from_quads(built.open_store().quads_for_pattern(None, None, None, None)))
    parsed = _integers_as_xsd_integer(
        rdflib.Graph().parse(data=server.get("/dumps/dataset.ttl").content, format="turtle"))
    assert to_isomorphic(parsed) == to_isomorphic(union)


def test_served_files_match_the_manifest_and_sha256sums(server, built):
    sums = server.get("/dumps/SHA256SUMS")
    assert sums.status_code == 200 and sums.headers["Content-Type"].startswith("text/plain")
    listed = {}
    for line in sums.text.splitlines():
        digest, name = line.split("  ")
        listed[name] = digest
    assert listed == {name: d["sha256"] for name, d in built.manifest["files"].items()}
    assert set(DUMPS) <= set(listed)
    for name, digest in listed.items():
        response = server.get(f"/dumps/{name}")
        assert response.status_code == 200, name
        assert hashlib.sha256(response.content).hexdigest() == digest, name
        assert int(response.headers["Content-Length"]) == built.manifest["files"][name]["bytes"]
        assert response.headers["ETag"] == f'"{digest}"'
        assert response.headers["Last-Modified"]
    types = {name: server.get(f"/dumps/{name}").headers["Content-Type"] for name in listed}
    assert types["dataset.nq.gz"] == "application/gzip"
    assert types["search.sqlite"] == "application/vnd.sqlite3"  # binary: no charset
    for name, described in built.manifest["files"].items():
        if name.endswith((".ttl", ".trig", ".jsonld")):  # exactly one charset (RFC 6838 §4.3)
            assert types[name] == described["media_type"] + "; charset=utf-8", name
    index = server.get("/dumps/").json()
    assert index["version"] == built.version and set(index["files"]) == set(listed)


def test_conditional_get_answers_304_and_range_206(server, built):
    first = server.get("/dumps/dataset.trig")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert first.headers.get("Accept-Ranges") == "bytes"
    assert server.get("/dumps/dataset.trig", headers={"If-None-Match": etag}).status_code == 304
    assert server.get("/dumps/dataset.trig", headers={"If-Modified-Since": modified}).status_code == 304
    assert server.get("/dumps/dataset.trig", headers={"If-None-Match": '"0000"'}).status_code == 200
    whole = built.file("dataset.trig").read_bytes()
    part = server.get("/dumps/dataset.trig", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole[100:200]
    assert part.headers["Repr-Digest"] == "sha-256=:" + base64.b64encode(hashlib.sha256(whole).digest()).decode() + ":"
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(whole)}"
    tail = server.get("/dumps/dataset.nq.gz", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == built.file("dataset.nq.gz").read_bytes()[-10:]
    stale = server.get("/dumps/dataset.trig", headers={"Range": "bytes=0-9", "If-Range": '"not-the-etag"'})
    assert stale.status_code == 200 and stale.content == whole
    beyond = server.get("/dumps/dataset.trig", headers={"Range": f"bytes={len(whole) + 10}-"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(whole)}"  # RFC 9110 §15.5.17: the length
    # RFC 9110 §14.2: a range unit it does not know, or ranges it will not send (several: no
    # multipart answers), the server ignores: the whole file, not 416
    for ignored in ("items=0-5", "bytes=0-0,5-6", "bytes=abc"):
        response = server.get("/dumps/dataset.trig", headers={"Range": ignored})
        assert response.status_code == 200 and response.content == whole, ignored


@pytest.mark.parametrize("path", [
    "/dumps/../manifest.json", "/dumps/%2e%2e/manifest.json", "/dumps/..%2Fmanifest.json",
    "/dumps/..%2fmanifest.json", "/dumps/manifest.json", "/dumps/store", "/dumps/store/CURRENT",
    "/dumps/%2Fetc%2Fpasswd", "/dumps/..", "/dumps/.%2e/.%2e/pyproject.toml", "/dumps/dataset.ttl%00.txt",
    "/dumps/DATASET.TTL", "/dumps/dataset.ttl/", "/dumps//etc/passwd",
])
def test_only_the_files_of_the_manifest_are_served(server, built, path):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", path)  # sent as written: no client-side normalisation
    response = connection.getresponse()
    body = response.read()
    assert response.status in (301, 308, 400, 404), (path, response.status)
    assert b'"source_sha256"' not in body and b"root:" not in body
    if response.status in (301, 308):
        location = response.getheader("Location")
        assert "manifest.json" not in location and "passwd" not in location


def test_a_harvester_never_sees_a_half_written_file_while_a_build_runs(tmp_path):
    """Serve release A, build release B into the same folder while clients download without
    pause: every body must match a complete release's manifest, and B must then be served."""
    from server.config import Settings
    releases = tmp_path / "releases"
    first = run_cli("build", "--releases", str(releases))
    assert first.returncode == 0, first.stderr
    live = LiveServer(Settings(releases=releases))
    seen: Counter = Counter()
    bad: list[str] = []
    stop = threading.Event()

    def harvest():
        session = requests.Session()
        while not stop.is_set():
            for name in DUMPS:
                response = session.get(f"{live.url}/dumps/{name}", timeout=30)
                if response.status_code != 200:
                    bad.append(f"{name}: {response.status_code}")
                    continue
                seen[(name, response.headers["X-Release"], hashlib.sha256(response.content).hexdigest())] += 1

    try:
        threads = [threading.Thread(target=harvest) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        second = run_cli("build", "--releases", str(releases), "--base", "https://example.org/lod/")
        assert second.returncode == 0, second.stderr
        new = open_release((releases / "current").resolve())
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(r == new.version for _, r, _ in seen):
            time.sleep(0.2)
        stop.set()
        for thread in threads:
            thread.join(30)
        old = open_release(releases / new.manifest["previous"])
        complete = {(name, rel.version, rel.manifest["files"][name]["sha256"]) for rel in (old, new) for name in DUMPS}
        assert not bad, bad[:5]
        assert set(seen) <= complete, set(seen) - complete
        assert {r for _, r, _ in seen} == {old.version, new.version}, "both releases were downloaded"

        # the new release's description names the previous one, which is still described
        time.sleep(1.5)  # every worker re-reads `current` at most once a second
        described = rdflib.Graph().parse(data=requests.get(f"{live.url}/dataset", headers={"Accept": "text/turtle"}).content,
                                         format="turtle")
        dataset = rdflib.URIRef("https://example.org/lod/dataset")
        previous = described.value(dataset, rdflib.URIRef("http://www.w3.org/ns/dcat#previousVersion"))
        assert str(previous) == f"https://example.org/lod/dataset/{old.version}"
        older = requests.get(f"{live.url}/dataset/{old.version}", headers={"Accept": "text/turtle"}, allow_redirects=False)
        assert older.status_code == 200 and old.version in older.text
        assert requests.get(f"{live.url}/dataset/{new.version}", allow_redirects=False).status_code == 303
    finally:
        stop.set()
        live.stop()


@pytest.mark.parametrize("path", ["/dataset", "/dumps/dataset.trig", "/dumps/", "/sitemap.xml", "/"])
def test_a_browser_may_harvest_and_resume_a_download_across_origins(server, path):
    """The CORS preflight of a revalidating or resuming GET: /doc/ answered it, the catalogue,
    the dumps and the sitemap answered 200 without Access-Control-Allow-Headers."""
    preflight = requests.options(server.url + path, headers={
        "Origin": "https://portal.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "if-none-match, range"})
    assert preflight.status_code == 204, path
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"if-none-match", "range"} <= allowed and "GET" in preflight.headers["Access-Control-Allow-Methods"]
    if path.startswith("/dumps/dataset"):
        part = server.get(path, headers={"Range": "bytes=0-9", "Origin": "https://portal.example"})
        assert part.status_code == 206
        exposed = {h.strip() for h in part.headers["Access-Control-Expose-Headers"].split(",")}
        assert {"Content-Range", "Repr-Digest", "ETag"} <= exposed
