"""GET /sparql without a query: the Service Description (RDF, negotiated) or, for a browser, the
query page (which works without JavaScript: the examples are links that run server-side)."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib import namespace as _ns


from server.config import Settings

from .test_sparql_support import QUERIES, parse_graph, shared_server

SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
FORMATS = Namespace("http://www.w3.org/ns/formats/")
VOID = Namespace("http://rdfs.org/ns/void#")
BASE = "https://w3id.org/un-meetings/"
UNM = Namespace(BASE + "ontology#")


@pytest.fixture(scope="module")
def server(built, settings, store_env):
    return shared_server(settings, store_env)


def description(server, accept="text/turtle") -> Graph:
    response = requests.get(server.url + "/sparql", headers={"Accept": accept})
    assert response.status_code == 200
    media_type = response.headers["Content-Type"].split(";")[0]
    return parse_graph(response.content, media_type)


def test_service_description_states_what_is_true(server, built):
    g = description(server)
    endpoint = URIRef(server.url + "/sparql")
    assert (endpoint, _ns.RDF.type, SD.Service) in g
    assert (endpoint, SD.endpoint, endpoint) in g
    assert set(g.objects(endpoint, SD.supportedLanguage)) == {SD.SPARQL11Query}
    assert set(g.objects(endpoint, SD.feature)) == {SD.UnionDefaultGraph}  # no BasicFederatedQuery
    assert set(g.objects(endpoint, SD.resultFormat)) == {
        FORMATS[n] for n in ("SPARQL_Results_JSON", "SPARQL_Results_XML", "SPARQL_Results_CSV",
                             "SPARQL_Results_TSV", "Turtle", "N-Triples", "RDF_XML", "JSON-LD")}
    # the limits, with their meaning stated in the description itself
    assert g.value(endpoint, UNM.queryTimeLimitSeconds) == Literal("5.0", datatype=_ns.XSD.decimal)
    assert g.value(endpoint, UNM.queueTimeLimitSeconds) == Literal("15.0", datatype=_ns.XSD.decimal)
    assert g.value(endpoint, UNM.resultRowLimit).toPython() == 10000
    assert g.value(endpoint, UNM.requestSizeLimitBytes).toPython() == 1_000_000
    assert g.value(endpoint, UNM.concurrentQueriesPerClient).toPython() == Settings().max_concurrent_queries_per_client == 1
    # ... as the release's ontology states it: labels in the six languages, definitions, range
    ontology = Graph().parse(built.file("ontology.ttl"), format="turtle")
    for term in ("queryTimeLimitSeconds", "queueTimeLimitSeconds", "resultRowLimit", "requestSizeLimitBytes",
                 "concurrentQueriesPerClient"):
        stated = set(ontology.predicate_objects(UNM[term]))
        assert stated and set(g.predicate_objects(UNM[term])) == stated
        assert {label.language for label in g.objects(UNM[term], _ns.RDFS.label)} == {"ar", "en", "es", "fr", "ru", "zh"}
        assert {d.language for d in g.objects(UNM[term], _ns.SKOS.definition)} >= {"ar", "en"}
    # the dataset: union default graph with its size, every named graph with its size
    dataset = g.value(endpoint, SD.defaultDataset)
    default = g.value(dataset, SD.defaultGraph)
    count = requests.get(server.url + "/sparql", params={"query": "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }"}).json()
    assert g.value(default, VOID.triples).toPython() == int(count["results"]["bindings"][0]["n"]["value"])
    named = {g.value(n, SD.name): g.value(g.value(n, SD.graph), VOID.triples).toPython()
             for n in g.objects(dataset, SD.namedGraph)}
    assert {str(k): v for k, v in named.items()} == built.manifest["graphs"]
    # the VoID description
    void = URIRef(server.url + "/dataset")
    assert (dataset, URIRef("http://www.w3.org/2000/01/rdf-schema#seeAlso"), void) in g
    assert (void, _ns.RDF.type, VOID.Dataset) in g


@pytest.mark.parametrize("accept", ["application/ld+json", "application/rdf+xml", "application/n-triples", "*/*", ""])
def test_service_description_in_every_rdf_format(server, accept):
    response = requests.get(server.url + "/sparql", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["Vary"].startswith("Accept")
    assert isomorphic(description(server, accept), description(server))
    if accept in ("*/*", ""):
        assert response.headers["Content-Type"] == "text/turtle; charset=utf-8"


def test_service_description_format_parameter_and_304(server):
    response = requests.get(server.url + "/sparql", params={"format": "jsonld"}, headers={"Accept": "text/html"})
    assert response.headers["Content-Type"] == "application/ld+json; charset=utf-8"
    again = requests.get(server.url + "/sparql", params={"format": "jsonld"},
                         headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    assert requests.get(server.url + "/sparql", headers={"Accept": "image/png"}).status_code == 406


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.buttons, self.cells, self.textarea, self._in = [], [], [], "", None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a":
            self.links.append(attrs)
        if tag == "button" and "data-prefix" in attrs:
            self.buttons.append(attrs)
        if tag in ("textarea", "td"):
            self._in = tag
            if tag == "td":
                self.cells.append("")

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in == "textarea":
            self.textarea += data
        elif self._in == "td":
            self.cells[-1] += data


def page(server, **params) -> tuple[requests.Response, _Page]:
    response = requests.get(server.url + "/sparql", params=params,
                            headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    parsed = _Page()
    parsed.feed(response.text)
    return response, parsed


def test_browser_gets_the_query_page_with_examples_and_prefixes(server):
    response, parsed = page(server)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    examples = [a for a in parsed.links if "example" in (a.get("class") or "")]
    assert len(examples) == len(QUERIES) >= 10
    for link, path in zip(examples, QUERIES):
        # a plain link that runs the query (no JavaScript needed)
        query = parse_qs(urlsplit(link["href"]).query)["query"][0]
        assert query == path.read_text(encoding="utf-8") == link["data-query"]
    prefixes = {b["data-prefix"]: b["data-iri"] for b in parsed.buttons}
    assert prefixes["unm"] == BASE + "ontology#" and prefixes["schema"] == "https://schema.org/"
    assert parsed.textarea.strip().startswith("#")  # the first example, ready to run
    for asset in ("sparql.js", "sparql.css"):
        assert f"/static/{asset}" in response.text
        assert requests.get(server.url + f"/static/{asset}").status_code == 200


def test_page_runs_a_query_without_javascript(server):
    query = (QUERIES[3]).read_text(encoding="utf-8")  # 04: ESCWA's names
    response, parsed = page(server, query=query)
    assert response.status_code == 200
    # each literal with its language tag shown after it
    assert "اللجنة الاقتصادية والاجتماعية لغربي آسيا@ar" in parsed.cells
    assert "Economic and Social Commission for Western Asia@en" in parsed.cells
    assert 'lang="ar" dir="auto">اللجنة' in response.text
    downloads = [a["href"] for a in parsed.links if a.get("data-format")]
    assert {parse_qs(urlsplit(h).query)["format"][0] for h in downloads} == {"json", "xml", "csv", "tsv"}
    for href in downloads[:4]:
        assert requests.get(server.url + href).status_code == 200
    # IRIs under the base link to the resource page on the browsed host
    response, parsed = page(server, query=f"SELECT ?o WHERE {{ <{BASE}id/organization/escwa> a ?o }}")
    hrefs = [a["href"] for a in parsed.links]
    assert server.url + "/ontology#RegionalCommission" in hrefs
    assert "https://schema.org/GovernmentOrganization" in hrefs


def test_page_shows_a_graph_without_javascript(server):
    query = [p for p in QUERIES if p.stem == "13-outcome-graph"][0].read_text(encoding="utf-8")
    response, parsed = page(server, query=query)
    assert response.status_code == 200
    assert '<pre class="graph" dir="ltr">' in response.text and "unm:hasPoint" in response.text
    downloads = {parse_qs(urlsplit(a["href"]).query)["format"][0] for a in parsed.links if a.get("data-format")}
    assert downloads == {"turtle", "ntriples", "rdfxml", "jsonld"}


def test_page_escapes_and_shows_errors(server):
    response, parsed = page(server, query='SELECT ?x WHERE { BIND("<script>alert(1)</script>" AS ?x) }')
    assert "<script>alert(1)</script>" not in response.text
    assert "<script>alert(1)</script>" in parsed.cells
    response, parsed = page(server, query="SELECT ?x WHERE { ?x }")
    assert response.status_code == 400
    assert "error at 1:" in response.text


def test_page_in_arabic_is_right_to_left(server):
    response, _ = page(server, lang="ar")
    assert re.search(r'<html lang="ar" dir="rtl"', response.text)
    assert "أمثلة على الاستعلامات" in response.text
    assert "Accept-Language" in response.headers["Vary"]
