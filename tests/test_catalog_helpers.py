"""Helpers shared by the catalogue tests (not fixtures: plain functions over live HTTP)."""
from __future__ import annotations

import re

import requests
from rdflib import Graph, Namespace

VOID = Namespace("http://rdfs.org/ns/void#")
DCAT3 = Namespace("http://www.w3.org/ns/dcat#")  # rdflib's DCAT lacks DCAT 3 terms (version ...)
SPDX = Namespace("http://spdx.org/rdf/terms#")
DQV = Namespace("http://www.w3.org/ns/dqv#")
OA = Namespace("http://www.w3.org/ns/oa#")
SCHEMA = "https://schema.org/"
LANGUAGES = ("ar", "zh", "en", "fr", "ru", "es")


def local(url: str, base: str, server) -> str:
    """A canonical IRI of ours as a URL on the test server."""
    assert url.startswith(base), url
    return server.url + "/" + url[len(base):]


def description(server, accept: str = "text/turtle") -> tuple[Graph, requests.Response]:
    response = server.get("/dataset", headers={"Accept": accept})
    assert response.status_code == 200, response.text[:500]
    fmt = {"text/turtle": "turtle", "application/ld+json": "json-ld", "application/n-triples": "nt",
           "application/rdf+xml": "xml"}[accept]
    return Graph().parse(data=response.content, format=fmt), response


_ENDPOINT: dict[str, bool] = {}


def has_sparql_endpoint(server) -> bool:
    """Whether the live server has a working SPARQL endpoint (asked once per server)."""
    if server.url not in _ENDPOINT:
        try:
            response = requests.post(server.url + "/sparql", data={"query": "ASK { ?s ?p ?o }"},
                                     headers={"Accept": "application/sparql-results+json"}, timeout=30)
            _ENDPOINT[server.url] = response.status_code == 200 and response.json().get("boolean") is True
        except (requests.RequestException, ValueError):
            _ENDPOINT[server.url] = False
    return _ENDPOINT[server.url]


def sparql_select(server, query: str) -> list[dict] | None:
    """Rows of a SELECT through the live /sparql endpoint, or None when the server has none.
    Once the endpoint exists, any failure of it fails the test (no silent fallback)."""
    if not has_sparql_endpoint(server):
        return None
    response = requests.post(server.url + "/sparql", data={"query": query},
                             headers={"Accept": "application/sparql-results+json"}, timeout=30)
    assert response.status_code == 200, response.text[:500]
    return [{k: v["value"] for k, v in row.items()} for row in response.json()["results"]["bindings"]]


def store_select(store, query: str) -> list[dict]:
    result = store.query(query)
    names = [v.value for v in result.variables]
    return [{name: row[name].value for name in names if row[name] is not None} for row in result]


JSON_LD_BLOCK = re.compile(r'<script type="application/ld\+json">(.*?)</script>', re.S)

