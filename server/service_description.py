"""The SPARQL 1.1 Service Description of /sparql (https://www.w3.org/TR/sparql11-service-description/).

It states only what is true of this endpoint: SPARQL 1.1 Query (no Update, no federated
SERVICE but the built-in text search service ``{base}search``), the
result formats served, the union default graph, the dataset (default graph and every named
graph with their sizes), a link to the VoID description, and the limits. The limits use three
properties under our ontology namespace, declared (label and comment) in the description
itself, since neither SD nor VoID has terms for them.
"""
from __future__ import annotations

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDF, RDFS, XSD

from .config import Settings

SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
FORMATS = Namespace("http://www.w3.org/ns/formats/")
VOID = Namespace("http://rdfs.org/ns/void#")
DCTERMS = Namespace("http://purl.org/dc/terms/")

RESULT_FORMATS = ("SPARQL_Results_JSON", "SPARQL_Results_XML", "SPARQL_Results_CSV", "SPARQL_Results_TSV",
                  "Turtle", "N-Triples", "RDF_XML", "JSON-LD")

LIMIT_TERMS = {
    "queryTimeLimitSeconds": (
        "query time limit (seconds)",
        "The longest time, in seconds, a query may run on this endpoint. A query still running "
        "then is stopped and answered 503 Service Unavailable with a problem document naming the limit."),
    "queueTimeLimitSeconds": (
        "queue time limit (seconds)",
        "The longest time, in seconds, a query may wait for an evaluator to start on it, which does "
        "not count against queryTimeLimitSeconds. A query still waiting then is answered 503 Service "
        "Unavailable (\"Server busy\") with Retry-After and a problem document naming the limit."),
    "resultRowLimit": (
        "result row limit",
        "The most solutions (SELECT) or triples (CONSTRUCT, DESCRIBE) one answer carries. A longer "
        "result is cut to this many and marked: header X-Result-Truncated: true, and head.link "
        "(JSON) or <link> (XML) pointing to the endpoint's #result-row-limit."),
    "requestSizeLimitBytes": (
        "request size limit (bytes)",
        "The largest request body accepted; a larger one is answered 413 Content Too Large."),
    "concurrentQueriesPerClient": (
        "concurrent queries per client",
        "How many queries one client (IP address) may have running at once; one more is "
        "answered 429 Too Many Requests with Retry-After."),
}


def describe(settings: Settings, endpoint: str, host_url: str, graph_sizes: dict[str, int],
             default_graph_triples: int) -> Graph:
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
        label, comment = LIMIT_TERMS[term]
        g.add((unm[term], RDF.type, RDF.Property))
        g.add((unm[term], RDFS.label, Literal(label, lang="en")))
        g.add((unm[term], RDFS.comment, Literal(comment, lang="en")))
        g.add((unm[term], RDFS.domain, SD.Service))
    return g
