"""Shared helpers of the SPARQL tests: the rdflib reference evaluation and result parsers.

The reference is rdflib's own SPARQL engine over the release's TriG dump (not our store, not
our code): answers from the endpoint must equal it. One known difference is normalised here:
Oxigraph stores integer-derived datatypes (xsd:positiveInteger ...) as xsd:integer.
"""
from __future__ import annotations

import atexit
import io
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
from rdflib import BNode, Dataset, Graph, Literal
from rdflib import namespace as _ns
from rdflib.query import Result


from server.config import PROJECT_ROOT

from .conftest import LiveServer

QUERIES = sorted((PROJECT_ROOT / "queries").glob("*.rq"))
INTEGER_SUBTYPES = {_ns.XSD.positiveInteger, _ns.XSD.nonNegativeInteger, _ns.XSD.negativeInteger, _ns.XSD.nonPositiveInteger,
                    _ns.XSD.long, _ns.XSD.int, _ns.XSD.short, _ns.XSD.byte, _ns.XSD.unsignedLong, _ns.XSD.unsignedInt,
                    _ns.XSD.unsignedShort, _ns.XSD.unsignedByte}

_reference_cache: dict = {}
SIMPLE = "ASK { ?s ?p ?o }"


class SparqlServer(LiveServer):
    """A LiveServer that waits for /sparql itself, patiently (a busy machine starts slowly)."""

    def _wait(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("server exited:\n" + self.process.stdout.read())
            try:
                requests.get(self.url + "/sparql", params={"query": SIMPLE}, timeout=10)
            except requests.RequestException:
                time.sleep(0.1)
                continue
            # reach every worker, so that each starts its evaluators before the tests
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda i: requests.get(self.url + "/sparql", params={"query": SIMPLE + f" #{i}"},
                                                     timeout=30), range(16)))
            time.sleep(1)
            return
        self.stop()
        raise RuntimeError("server did not start in time")


_shared: dict = {}


def shared_server(settings, store_env: dict) -> SparqlServer:
    """One live server per store on the session's build for every SPARQL test module (like
    conftest's `server`, but waiting for /sparql patiently: a loaded machine starts slowly)."""
    key = tuple(sorted(store_env.items()))
    if key not in _shared:
        live = SparqlServer(settings, env=store_env)
        atexit.register(live.stop)
        _shared[key] = live
    return _shared[key]


def reference_dataset(release) -> Dataset:
    key = str(release.path)
    if key not in _reference_cache:
        dataset = Dataset(default_union=True)
        dataset.parse(release.file("dataset.trig"), format="trig")
        _reference_cache[key] = dataset
    return _reference_cache[key]


def norm(term):
    """A comparable form of a term: N-Triples text, bnodes all alike, derived integers as integer."""
    if term is None:
        return None
    if isinstance(term, BNode):
        return "_:"
    if isinstance(term, Literal) and term.datatype in INTEGER_SUBTYPES:
        return Literal(str(term), datatype=_ns.XSD.integer).n3()
    return term.n3()






def solution_rows(result: Result) -> Counter:
    variables = [str(v) for v in result.vars]
    out = Counter()
    for row in result.bindings:
        out[tuple(norm(row.get(_var(v))) for v in variables)] += 1
    return out


def _var(name):
    from rdflib import Variable
    return Variable(name)


def reference_select(release, query: str) -> tuple[list[str], Counter]:
    result = reference_dataset(release).query(query)
    return [str(v) for v in result.vars], solution_rows(result)


def reference_ordered(release, query: str) -> list[tuple]:
    result = reference_dataset(release).query(query)
    variables = [str(v) for v in result.vars]
    return [tuple(norm(row.get(_var(v))) for v in variables) for row in result.bindings]


def reference_graph(release, query: str) -> Graph:
    graph = Graph()
    for triple in reference_dataset(release).query(query).graph:
        s, p, o = triple
        if isinstance(o, Literal) and o.datatype in INTEGER_SUBTYPES:
            o = Literal(str(o), datatype=_ns.XSD.integer)
        graph.add((s, p, o))
    return graph


def parse_results(body: bytes, media_type: str) -> Result:
    """Parse a SPARQL results document with rdflib's own parsers."""
    fmt = {"application/sparql-results+json": "json", "application/sparql-results+xml": "xml",
           "text/csv": "csv", "text/tab-separated-values": "tsv"}[media_type]
    return Result.parse(io.BytesIO(body), format=fmt)


def parse_graph(body: bytes, media_type: str) -> Graph:
    if media_type == "application/ld+json":
        body = _inline_context(body)
    fmt = {"text/turtle": "turtle", "application/n-triples": "nt", "application/rdf+xml": "xml",
           "application/ld+json": "json-ld"}[media_type]
    return Graph().parse(data=body, format=fmt)


def _inline_context(body: bytes) -> bytes:
    """Compacted JSON-LD refers to the published context by its canonical URL, which is not on
    this machine: put the context in the document (no network in tests)."""
    import json
    from server.jsonld import build_context, context_url
    document = json.loads(body)
    if isinstance(document, dict) and isinstance(document.get("@context"), str):
        base = document["@context"][: -len("context.jsonld")]
        assert document["@context"] == context_url(base)
        document["@context"] = build_context(base)["@context"]
    return json.dumps(document).encode()


def csv_rows(body: bytes) -> tuple[list[str], Counter]:
    import csv
    reader = csv.reader(io.StringIO(body.decode("utf-8"), newline=""))
    rows = list(reader)
    return rows[0], Counter(tuple(r) for r in rows[1:])


def reference_csv(release, query: str) -> Counter:
    result = reference_dataset(release).query(query)
    variables = [str(v) for v in result.vars]
    out = Counter()
    for row in result.bindings:
        cells = []
        for v in variables:
            t = row.get(_var(v))
            cells.append("" if t is None else ("_:" if isinstance(t, BNode) else str(t)))
        out[tuple(cells)] += 1
    return out




def test_every_example_query_has_titles_in_english_and_arabic():
    from server.sparql import load_examples
    examples = load_examples(PROJECT_ROOT / "queries")
    assert len(examples) >= 10
    for example in examples:
        assert example["titles"].get("en") and example["titles"].get("ar"), example["slug"]
        assert example["descriptions"].get("en"), example["slug"]
