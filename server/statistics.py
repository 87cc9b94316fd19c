"""VoID figures of a release, computed by SPARQL over its store (never typed by hand).

Every figure is over the union of the named graphs (the SPARQL default graph of the endpoint),
counting distinct triples: a statement asserted in two graphs counts once, as a client of
``/sparql`` would count it. Entities are the IRIs under ``{base}id/`` used as subjects.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pyoxigraph as ox

#: External datasets a link may point to: key → namespace (matches catalog/dataset.ttl's
#: <dataset#{key}> void:Dataset descriptions).
LINK_TARGETS = {
    "wikidata": "http://www.wikidata.org/entity/",
    "un-sdg": "http://metadata.un.org/sdg/",
    "unbis": "http://metadata.un.org/thesaurus/",
}

_DISTINCT = "{ SELECT DISTINCT ?s ?p ?o WHERE { ?s ?p ?o } }"


@dataclass
class Statistics:
    triples: int
    quads: int
    entities: int
    distinct_subjects: int
    distinct_objects: int
    properties: int
    classes: int
    #: class IRI → number of distinct instances
    class_partitions: dict[str, int] = field(default_factory=dict)
    #: property IRI → number of distinct triples
    property_partitions: dict[str, int] = field(default_factory=dict)
    #: named graph IRI → number of triples in it
    graphs: dict[str, int] = field(default_factory=dict)
    #: (target key, link predicate) → number of links
    linksets: dict[tuple[str, str], int] = field(default_factory=dict)
    #: namespaces of the classes and properties used
    vocabularies: list[str] = field(default_factory=list)
    example_resources: list[str] = field(default_factory=list)
    #: earliest and latest date (YYYY-MM-DD) of any schema:Event's start or end
    start_date: str | None = None
    end_date: str | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        data["linksets"] = [{"target": t, "predicate": p, "triples": n} for (t, p), n in self.linksets.items()]
        return data


def _rows(store: ox.Store, query: str) -> list[tuple]:
    result = store.query(query, use_default_graph_as_union=True)
    return [tuple(None if v is None else v.value for v in row) for row in result]


def _count(store: ox.Store, query: str) -> int:
    return int(_rows(store, query)[0][0])


def compute(store: ox.Store, base: str) -> Statistics:
    id_space = base + "id/"
    stats = Statistics(
        triples=_count(store, f"SELECT (COUNT(*) AS ?n) WHERE {_DISTINCT}"),
        quads=_count(store, "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }"),
        entities=_count(store, f"""SELECT (COUNT(*) AS ?n) WHERE {{
            {{ SELECT DISTINCT ?s WHERE {{ ?s ?p ?o }} }} FILTER(isIRI(?s) && STRSTARTS(STR(?s), "{id_space}")) }}"""),
        distinct_subjects=_count(store, "SELECT (COUNT(DISTINCT ?s) AS ?n) WHERE { ?s ?p ?o }"),
        distinct_objects=_count(store, "SELECT (COUNT(DISTINCT ?o) AS ?n) WHERE { ?s ?p ?o }"),
        properties=_count(store, "SELECT (COUNT(DISTINCT ?p) AS ?n) WHERE { ?s ?p ?o }"),
        classes=_count(store, "SELECT (COUNT(DISTINCT ?c) AS ?n) WHERE { ?s a ?c }"),
    )
    stats.class_partitions = {c: int(n) for c, n in _rows(store, """
        SELECT ?c (COUNT(DISTINCT ?s) AS ?n) WHERE { ?s a ?c } GROUP BY ?c ORDER BY ?c""")}
    stats.property_partitions = {p: int(n) for p, n in _rows(store, f"""
        SELECT ?p (COUNT(*) AS ?n) WHERE {_DISTINCT} GROUP BY ?p ORDER BY ?p""")}
    stats.graphs = {g: int(n) for g, n in _rows(store, """
        SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g ORDER BY ?g""")}
    # Links: first the distinct IRI objects in the external namespaces (few), then the
    # distinct triples from our subjects to them, by predicate.
    targets = {o: key for (o,) in _rows(store, "SELECT DISTINCT ?o WHERE { ?s ?p ?o FILTER(isIRI(?o)) }")
               for key, namespace in LINK_TARGETS.items() if o.startswith(namespace)}
    if targets:
        values = " ".join(f"<{o}>" for o in sorted(targets))
        for predicate, target, n in _rows(store, f"""
                SELECT ?p ?o (COUNT(DISTINCT ?s) AS ?n) WHERE {{ VALUES ?o {{ {values} }} ?s ?p ?o
                  FILTER(isIRI(?s) && STRSTARTS(STR(?s), "{base}")) }} GROUP BY ?p ?o"""):
            key = (targets[target], predicate)
            stats.linksets[key] = stats.linksets.get(key, 0) + int(n)
        stats.linksets = dict(sorted(stats.linksets.items()))
    stats.vocabularies = sorted({_namespace(iri, base) for iri in
                                 [*stats.class_partitions, *stats.property_partitions]})
    stats.example_resources = [s for (s,) in _rows(store, f"""
        SELECT DISTINCT ?s WHERE {{ ?s a <https://schema.org/Event>
          FILTER(STRSTARTS(STR(?s), "{id_space}")) }} ORDER BY ?s LIMIT 3""")]
    dates = _rows(store, """
        SELECT (MIN(?d) AS ?start) (MAX(?d) AS ?end) WHERE {
          ?event a <https://schema.org/Event> ; <https://schema.org/startDate>|<https://schema.org/endDate> ?date .
          BIND(SUBSTR(STR(?date), 1, 10) AS ?d) }""")
    if dates and dates[0][0]:
        stats.start_date, stats.end_date = dates[0]
    return stats


def _namespace(iri: str, base: str) -> str:
    """The vocabulary an IRI belongs to: ours is {base}ontology, others end at their last # or /."""
    if iri.startswith(base + "ontology#"):
        return base + "ontology"
    cut = max(iri.rfind("#"), iri.rfind("/"))
    return iri[:cut + 1]
