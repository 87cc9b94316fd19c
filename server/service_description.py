"""The SPARQL 1.1 Service Description of /sparql (https://www.w3.org/TR/sparql11-service-description/).

It states only what is true of this endpoint: SPARQL 1.1 Query (no Update, no federated
SERVICE but the built-in text search service ``{base}search``), the
result formats served, the union default graph, the dataset (default graph and every named
graph with their sizes), a link to the VoID description, and the limits. The limits use five
properties of our ontology, since neither SD nor VoID has terms for them; the description
carries what the release's ontology states about them (labels in six languages, definitions),
so that a client learns what each means without fetching the ontology.
"""
from __future__ import annotations

from collections.abc import Iterable

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.term import Node
from rdflib.namespace import RDF, RDFS, XSD

from .config import Settings

SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
FORMATS = Namespace("http://www.w3.org/ns/formats/")
VOID = Namespace("http://rdfs.org/ns/void#")
DCTERMS = Namespace("http://purl.org/dc/terms/")

RESULT_FORMATS = ("SPARQL_Results_JSON", "SPARQL_Results_XML", "SPARQL_Results_CSV", "SPARQL_Results_TSV",
                  "Turtle", "N-Triples", "RDF_XML", "JSON-LD")

#: the service's limits, as the ontology names them (their labels and definitions are the ontology's)
LIMIT_TERMS = ("queryTimeLimitSeconds", "queueTimeLimitSeconds", "resultRowLimit", "requestSizeLimitBytes",
               "concurrentQueriesPerClient")


def limit_terms_query(base: str) -> str:
    """A SELECT of ?term ?p ?o: what the release's ontology states about the limit terms."""
    terms = " ".join(f"<{base}ontology#{name}>" for name in LIMIT_TERMS)
    return f"SELECT ?term ?p ?o {{ VALUES ?term {{ {terms} }} ?term ?p ?o }}"


def describe(settings: Settings, endpoint: str, host_url: str, graph_sizes: dict[str, int],
             default_graph_triples: int, terms: Iterable[tuple[Node, Node, Node]] = ()) -> Graph:
    """The SPARQL 1.1 Service Description of `endpoint`, with its limits; `terms`, the ontology's
    statements about the limit terms (limit_terms_query), say what each limit means."""
    unm = Namespace(settings.base + "ontology#")
    g = Graph()
    for prefix, ns in (("sd", SD), ("formats", FORMATS), ("void", VOID), ("unm", unm), ("dcterms", DCTERMS)):
        g.bind(prefix, ns)
    service = URIRef(endpoint)
    g.add((service, RDF.type, SD.Service))
    g.add((service, SD.endpoint, service))
    g.add((service, SD.supportedLanguage, SD.SPARQL11Query))
    for name in RESULT_FORMATS:
        g.add((service, SD.resultFormat, FORMATS[name]))
    g.add((service, SD.feature, SD.UnionDefaultGraph))
    g.add((service, DCTERMS.title, Literal("UN meetings linked data: SPARQL 1.1 query endpoint", lang="en")))
    g.add((service, RDFS.comment, Literal(
        "Read-only SPARQL 1.1 Query endpoint (Protocol GET and POST). Without default-graph-uri or "
        "named-graph-uri the default graph is the union of all the named graphs, and every named "
        "graph is available to GRAPH. SPARQL Update is refused (403) and SERVICE (federated query) "
        "is not supported (400): the endpoint makes no outbound requests. The one exception is "
        f"the built-in text search service, SERVICE <{settings.base}search> (see docs/sparql.md).", lang="en")))

    # the HTTP interface, described in OpenAPI (server/openapi.py)
    g.add((service, RDFS.seeAlso, URIRef(host_url + "openapi.json")))

    dataset = BNode("dataset")
    g.add((service, SD.defaultDataset, dataset))
    g.add((dataset, RDF.type, SD.Dataset))
    void_description = URIRef(host_url + "dataset")
    g.add((dataset, RDFS.seeAlso, void_description))
    g.add((void_description, RDF.type, VOID.Dataset))
    g.add((void_description, VOID.sparqlEndpoint, service))
    default = BNode("defaultGraph")
    g.add((dataset, SD.defaultGraph, default))
    g.add((default, RDF.type, SD.Graph))
    g.add((default, VOID.triples, Literal(default_graph_triples, datatype=XSD.integer)))
    g.add((default, RDFS.comment, Literal("The union of all the named graphs (sd:UnionDefaultGraph).", lang="en")))
    for name, size in sorted(graph_sizes.items()):
        named = BNode()
        graph_node = BNode()
        g.add((dataset, SD.namedGraph, named))
        g.add((named, RDF.type, SD.NamedGraph))
        g.add((named, SD.name, URIRef(name)))
        g.add((named, SD.graph, graph_node))
        g.add((graph_node, RDF.type, SD.Graph))
        g.add((graph_node, VOID.triples, Literal(size, datatype=XSD.integer)))

    limits = {
        "queryTimeLimitSeconds": Literal(str(settings.query_timeout), datatype=XSD.decimal),
        "queueTimeLimitSeconds": Literal(str(settings.sparql_queue_timeout), datatype=XSD.decimal),
        "resultRowLimit": Literal(settings.max_result_rows, datatype=XSD.integer),
        "requestSizeLimitBytes": Literal(settings.max_request_bytes, datatype=XSD.integer),
        "concurrentQueriesPerClient": Literal(settings.max_concurrent_queries_per_client, datatype=XSD.integer),
    }
    for term, value in limits.items():
        g.add((service, unm[term], value))
    for triple in terms:
        g.add(triple)
    return g
