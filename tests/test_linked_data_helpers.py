"""Helpers shared by the Linked Data tests: real parsers only (rdflib, pyld, html.parser)."""
from __future__ import annotations

import gzip
import json
from html.parser import HTMLParser

import pyoxigraph as ox
import requests
from pyld import jsonld
from rdflib import BNode, Graph, URIRef
from rdflib.namespace import RDF

BASE = "https://w3id.org/un-meetings/"
CONTEXT_URL = BASE + "context.jsonld"
MEETING = "meeting/nua-regional-commissions-2022"
RDF_TYPES = {
    "ttl": "text/turtle",
    "nt": "application/n-triples",
    "rdf": "application/rdf+xml",
    "jsonld": "application/ld+json",
}
RDFLIB_FORMAT = {"ttl": "turtle", "nt": "nt", "rdf": "xml"}
JSONLD_PROFILE = "http://www.w3.org/ns/json-ld#"


def dataset_quads(release) -> list[ox.Quad]:
    """The release's N-Quads dump, parsed independently of the server."""
    with gzip.open(release.file("dataset.nq.gz"), "rb") as f:
        return list(ox.parse(f, format=ox.RdfFormat.N_QUADS))


def thing_iris(release) -> list[str]:
    return sorted({q.subject.value for q in dataset_quads(release)
                   if isinstance(q.subject, ox.NamedNode) and q.subject.value.startswith(BASE + "id/")})


def graph_iris(release) -> list[str]:
    return sorted({q.graph_name.value for q in dataset_quads(release) if isinstance(q.graph_name, ox.NamedNode)
                   and q.graph_name.value.startswith(BASE + "graph/")})


def context_loader(server):
    """A pyld loader that fetches our context from the server under test (never the Internet)."""
    def load(url, options=None):
        assert url == CONTEXT_URL, f"unexpected remote context {url}"
        response = requests.get(server.url + "/context.jsonld", timeout=10)
        assert response.status_code == 200
        return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url,
                "document": response.json()}
    return load


def parse_rdf(body: bytes, fmt: str, server) -> Graph:
    if fmt == "jsonld":
        document = json.loads(body)
        nquads = jsonld.to_rdf(document, {"format": "application/n-quads", "documentLoader": context_loader(server)})
        return Graph().parse(data=nquads, format="nt")
    return Graph().parse(data=body, format=RDFLIB_FORMAT[fmt])


def reachable(graph: Graph, root: str) -> Graph:
    """The triples whose subject is reachable from `root` by links (rdf:type is not a link)."""
    seen, todo = set(), [URIRef(root)]
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        todo.extend(o for p, o in graph.predicate_objects(node)
                    if p != RDF.type and isinstance(o, (URIRef, BNode)))
    sub = Graph()
    for triple in graph:
        if triple[0] in seen:
            sub.add(triple)
    return sub


class Html(HTMLParser):
    """Elements, attributes and text of a page, as a browser's parser sees them."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.scripts: list[tuple[dict, str]] = []
        self._script: dict | None = None
        self._buffer: list[str] = []
        self.text_by_tag: dict[str, list[str]] = {}
        self._stack: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        if tag == "script":
            self._script, self._buffer = attributes, []
        self._stack.append(tag)

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script, "".join(self._buffer)))
            self._script = None
        while self._stack and self._stack.pop() != tag:
            pass

    def handle_data(self, data):
        if self._script is not None:
            self._buffer.append(data)
        for tag in self._stack:
            self.text_by_tag.setdefault(tag, []).append(data)

    def find(self, tag: str, **attributes) -> list[dict]:
        return [a for t, a in self.elements if t == tag and all(a.get(k.rstrip("_")) == v for k, v in attributes.items())]

    def text(self, tag: str) -> str:
        return "".join(self.text_by_tag.get(tag, [])).strip()
