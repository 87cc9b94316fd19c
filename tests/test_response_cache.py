"""The per-release response cache in front of the app (server/response_cache.py): a repeated
request gets the same answer as the first, with its own request id, log line and metrics;
everything the answer depends on is part of the key; a new release is never answered from the
cache of the old one."""
from __future__ import annotations

import shutil
import time
import uuid

import pytest
import requests
from rdflib import Graph, Literal, URIRef

from server.config import PROJECT_ROOT, Settings

from .conftest import LiveServer, run_cli
from .test_operations import log_lines, requests_total, samples

BASE = Settings().base
DOC = "/doc/organization/escwa"
ESCWA = URIRef(BASE + "id/organization/escwa")
SCHEMA_NAME = URIRef("https://schema.org/name")
PER_REQUEST = {"date", "x-request-id"}


def marked_accept(media_type: str) -> str:
    """`media_type`, plus a media type nothing serves: a key no earlier test has filled."""
    return f"{media_type}, application/x-marker-{uuid.uuid4().hex};q=0.1"


def fetch(server, path: str, **headers) -> tuple[requests.Response, dict]:
    request_id = "cache-" + uuid.uuid4().hex
    response = server.get(path, headers={"X-Request-Id": request_id, **headers})
    [line] = log_lines(server, request_id)
    return response, line


def shared_headers(response: requests.Response) -> dict:
    return {k.lower(): v for k, v in response.headers.items() if k.lower() not in PER_REQUEST}


def test_a_repeated_get_is_answered_from_the_cache_with_the_same_bytes(server):
    headers = {"Accept": marked_accept("text/turtle"), "Accept-Encoding": "identity"}
    answers = [fetch(server, DOC, **headers) for _ in range(8)]
    from_app = [(r, line) for r, line in answers if "cached" not in line]
    cached = [(r, line) for r, line in answers if line.get("cached") is True]
    assert 2 <= len(from_app) <= 4  # the first two requests each worker gets (kept from the second)
    assert len(cached) == len(answers) - len(from_app)
    first = answers[0][0]
    assert Graph().parse(data=first.text, format="turtle").value(ESCWA, SCHEMA_NAME) is not None
    for again, line in cached:
        assert again.status_code == 200
        assert again.content == first.content and shared_headers(again) == shared_headers(first)
        assert again.headers["X-Request-Id"] == line["request_id"] != first.headers["X-Request-Id"]
        assert line["route"] == "/doc/<path:rest>" and line["bytes"] == len(again.content)


def test_the_first_answer_of_a_key_comes_from_the_app(server):
    response, line = fetch(server, DOC, Accept=marked_accept("application/n-triples"))
    assert response.status_code == 200 and "cached" not in line


def test_a_crawl_of_pages_asked_once_is_not_kept(built, settings):
    """An answer is kept from its key's second request: a crawler fetching every page once
    neither fills the cache nor evicts what people ask again (one worker, so that the order of
    requests is the order the cache sees)."""
    live = LiveServer(settings, workers=1)
    try:
        again = marked_accept("text/turtle")
        assert [fetch(live, DOC, Accept=again)[1].get("cached") for _ in range(3)] == [None, None, True]
        crawl = [fetch(live, DOC, Accept=marked_accept("text/turtle"))[1] for _ in range(20)]
        assert all("cached" not in line for line in crawl)
        assert fetch(live, DOC, Accept=again)[1].get("cached") is True
    finally:
        live.stop()


def test_cached_answers_are_counted_in_the_metrics(server):
    accept = marked_accept("text/turtle")
    before = samples(server.url)
    for _ in range(6):
        assert server.get(DOC, headers={"Accept": accept}).status_code == 200
    after = samples(server.url)
    route = "/doc/<path:rest>"
    assert requests_total(after, route, "200") - requests_total(before, route, "200") == 6


def test_the_format_and_the_encoding_asked_are_in_the_key(server):
    asked = {marked_accept("text/turtle"): "text/turtle", marked_accept("application/ld+json"): "application/ld+json"}
    for _ in range(3):
        for accept, media_type in asked.items():
            for encoding in ("gzip", "identity"):
                response = server.get(DOC, headers={"Accept": accept, "Accept-Encoding": encoding})
                assert response.headers["Content-Type"].startswith(media_type)
                assert response.headers.get("Content-Encoding") == ("gzip" if encoding == "gzip" else None)


def test_the_language_of_a_page_is_in_the_key(server):
    accept = marked_accept("text/html")
    pages = {lang: [server.get(DOC, headers={"Accept": accept, "Accept-Language": lang}) for _ in range(3)]
             for lang in ("ar", "en")}
    assert {p.headers["Content-Language"] for p in pages["ar"]} == {"ar"}
    assert {p.headers["Content-Language"] for p in pages["en"]} == {"en"}
    assert '<html lang="ar" dir="rtl">' in pages["ar"][-1].text
    assert '<html lang="en" dir="ltr">' in pages["en"][-1].text


def test_the_host_asked_is_in_the_key(server):
    """The service description names the endpoint at the host the client asked."""
    accept = marked_accept("text/turtle")
    for host in ("first.example", "second.example", "first.example", "second.example"):
        description = server.get("/sparql", headers={"Accept": accept, "Host": host})
        assert description.status_code == 200
        graph = Graph().parse(data=description.text, format="turtle")
        endpoints = {str(o) for o in graph.objects(None, URIRef("http://www.w3.org/ns/sparql-service-description#endpoint"))}
        assert endpoints == {f"http://{host}/sparql"}


def test_conditional_and_head_requests_keep_their_meaning(server):
    accept = marked_accept("application/ld+json")
    full = [server.get(DOC, headers={"Accept": accept}) for _ in range(3)][-1]
    revalidated = server.get(DOC, headers={"Accept": accept, "If-None-Match": full.headers["ETag"]})
    assert revalidated.status_code == 304 and not revalidated.content
    heads = [requests.head(server.url + DOC, headers={"Accept": accept, "Accept-Encoding": "identity"}, timeout=30)
             for _ in range(3)]
    plain = server.get(DOC, headers={"Accept": accept, "Accept-Encoding": "identity"})
    assert {h.status_code for h in heads} == {200} and not heads[-1].content
    assert heads[-1].headers["Content-Length"] == str(len(plain.content))


def test_a_see_other_is_kept_with_its_query_string(server):
    for _ in range(3):
        moved = server.get("/id/organization/escwa?lang=fr", headers={"Accept": marked_accept("text/html")})
        assert moved.status_code == 303 and moved.headers["Location"] == "/doc/organization/escwa?lang=fr"


def test_sparql_answers_are_not_kept_when_the_result_cache_is_off(built, settings):
    """`LODPUB_SPARQL_CACHE_BYTES=0` means every query is evaluated (what lodpub-nocache measures)."""
    live = LiveServer(settings, workers=1, env={"LODPUB_SPARQL_CACHE_BYTES": "0"})
    try:
        query = f"ASK {{ <{ESCWA}> ?p ?o }}"
        lines = [fetch(live, "/sparql?query=" + requests.utils.quote(query),
                       Accept="application/sparql-results+json")[1] for _ in range(3)]
        assert [line.get("cached") for line in lines] == [None, None, None]
        documents = [fetch(live, DOC, Accept="text/turtle")[1] for _ in range(3)]
        assert [line.get("cached") for line in documents] == [None, None, True]
    finally:
        live.stop()


def test_a_new_release_is_never_answered_from_the_old_ones_cache(tmp_path):
    root, releases = tmp_path / "sources", tmp_path / "releases"
    for folder in ("ontology", "shapes", "data", "queries"):
        shutil.copytree(PROJECT_ROOT / folder, root / folder)
    assert run_cli("build", "--root", str(root), "--releases", str(releases)).returncode == 0
    live = LiveServer(Settings(root=root, releases=releases), workers=1)
    try:
        english = "Economic and Social Commission for Western Asia"
        for _ in range(3):
            assert english_name(live) == english
        reference = root / "data" / "organizations" / "reference.ttl"
        reference.write_text(reference.read_text(encoding="utf-8").replace(
            f'"{english}"@en', f'"{english} (renamed)"@en', 1), encoding="utf-8")
        assert run_cli("build", "--root", str(root), "--releases", str(releases)).returncode == 0
        time.sleep(1.5)  # longer than the worker's interval between looks at `current`
        assert english_name(live) == english + " (renamed)"
    finally:
        live.stop()


def english_name(server) -> str:
    response = server.get(DOC, headers={"Accept": "text/turtle", "Accept-Encoding": "gzip"})
    assert response.status_code == 200
    graph = Graph().parse(data=response.text, format="turtle")
    return str(next(n for n in graph.objects(ESCWA, SCHEMA_NAME) if isinstance(n, Literal) and n.language == "en"))
