"""The document graph of a thing: what ``/doc/{kind}/{slug}`` says about ``/id/{kind}/{slug}``.

Every read goes through SPARQL on the publication's store (default graph = union of the named
graphs), so a remote SPARQL store can replace the embedded one. A document is computed once
per release (``Publication.memo``) and is the same graph in every format:

1. the thing's own triples, with the closure over blank nodes (a postal address, coordinates);
2. the full description of its *parts* — things it links to by a part-like property
   (``PART_PROPERTIES``: objectives, the outcome document and its points, the location) —
   so that a meeting's page and its framed JSON-LD hold its objectives and outcome points;
3. the links pointing to it (incoming triples: a commission's page lists the meetings it
   organised), at most `inbound_limit` per property (`LODPUB_MAX_INBOUND_PER_PROPERTY`): the
   most recent first (by `schema:startDate`; undated ones after, by IRI), and how many there
   are in all (`Document.inbound_totals`; the HTML page links to the SPARQL query that lists
   them all, the RDF forms say it in Hydra Core terms: `Document.cut_statements`). A hub's
   document stays the size of a page: at 1M triples a commission is the organizer of ~1,700
   meetings, whose names in six languages made its document 12,000–14,000 triples;
4. the labels (schema:name, skos:prefLabel, rdfs:label) of every other thing it mentions.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pyoxigraph as ox

from .lru import LRU
from .namespaces import STANDARD, prefixes

SCHEMA = STANDARD["schema"]
SKOS = STANDARD["skos"]
RDFS = STANDARD["rdfs"]
HYDRA = STANDARD["hydra"]
RDF_TYPE = STANDARD["rdf"] + "type"

LABEL_PROPERTIES = (SCHEMA + "name", SKOS + "prefLabel", RDFS + "label")
#: A document cut at the limit keeps the things that point at it most recently (meetings, by
#: their start), as a reader of a commission's page expects.
RECENCY = SCHEMA + "startDate"

#: Links whose targets are described in full in the linking thing's document.
PART_PROPERTIES = (
    "ontology#hasObjective",          # relative to the base
    "ontology#hasOutcomeDocument",
    "ontology#hasPoint",
    SCHEMA + "location",
)
#: How far parts of parts are followed (meeting → outcome document → point).
PART_DEPTH = 3
#: How deep blank nodes are followed (thing → address → …).
BLANK_DEPTH = 3


@dataclass(frozen=True)
class Document:
    iri: str                     # the thing (or the graph, the ontology …) described
    triples: tuple[ox.Triple, ...]
    #: property IRI → how many statements point at the thing with it, for the properties whose
    #: incoming statements were cut at the limit
    inbound_totals: dict[str, int] = field(default_factory=dict)
    #: for those properties, the things kept, in the order of `incoming_query` (most recent first)
    inbound_kept: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: whether it holds every label statement of every IRI it has as subject or object (`describe`:
    #: their own statements, or their labels), so that its page asks the store only for the labels
    #: of its properties
    labelled: bool = False

    @property
    def subjects(self) -> list:
        return list(dict.fromkeys(t.subject for t in self.triples))

    def rdf_statements(self, base: str) -> tuple[ox.Triple, ...]:
        """The triples of the RDF forms: the document's and, if it was cut, what says so."""
        if not self.inbound_totals:
            return self.triples
        return tuple(sorted((*self.triples, *self.cut_statements(base)), key=_sort_key))

    def cut_statements(self, base: str) -> list[ox.Triple]:
        """For the RDF forms of a document whose incoming statements were cut: per property, a
        Hydra collection of the things pointing at this one with it (``hydra:manages``), its
        ``hydra:totalItems`` and, as ``rdfs:seeAlso``, the SPARQL query listing them all. Named
        under the document's URL, so that the same document has the same bytes everywhere."""
        thing = ox.NamedNode(self.iri)
        document = document_url(self.iri, base)
        statements = []
        for predicate, total in sorted(self.inbound_totals.items()):
            name = f"{document}#incoming-{_slug(predicate, base)}"
            collection, manages = ox.NamedNode(name), ox.NamedNode(name + "-manages")
            listing = ox.NamedNode(f"{base}sparql?" + urlencode({"query": incoming_query(predicate, self.iri)}))
            statements += [
                ox.Triple(thing, ox.NamedNode(HYDRA + "collection"), collection),
                ox.Triple(collection, ox.NamedNode(RDF_TYPE), ox.NamedNode(HYDRA + "Collection")),
                ox.Triple(collection, ox.NamedNode(HYDRA + "manages"), manages),
                ox.Triple(manages, ox.NamedNode(HYDRA + "property"), ox.NamedNode(predicate)),
                ox.Triple(manages, ox.NamedNode(HYDRA + "object"), thing),
                ox.Triple(collection, ox.NamedNode(HYDRA + "totalItems"),
                          ox.Literal(str(total), datatype=ox.NamedNode(STANDARD["xsd"] + "nonNegativeInteger"))),
                ox.Triple(collection, ox.NamedNode(RDFS + "seeAlso"), listing),
            ]
        return statements


def document_url(iri: str, base: str) -> str:
    """The URL of the document about `iri` (``/id/…`` and ``/graph/…`` under the base)."""
    rest = iri[len(base):]
    return base + "doc/" + (rest[3:] if rest.startswith("id/") else rest)


def incoming_query(predicate: str, iri: str) -> str:
    """The SPARQL query listing every thing that points at `iri` with `predicate`, in the order
    a cut document keeps them: the most recent first, then the undated ones by IRI."""
    return (f"SELECT DISTINCT ?thing ?start WHERE {{ ?thing <{predicate}> <{iri}> "
            f"OPTIONAL {{ ?thing <{RECENCY}> ?start }} }} ORDER BY DESC(?start) ?thing")


def _slug(predicate: str, base: str) -> str:
    for prefix, namespace in prefixes(base).items():
        if predicate.startswith(namespace) and predicate[len(namespace):].isidentifier():
            return f"{prefix}-{predicate[len(namespace):]}"
    return "p" + hashlib.sha256(predicate.encode()).hexdigest()[:12]


def _query(store: ox.Store, sparql: str):
    return store.query(sparql, use_default_graph_as_union=True)


def _values(terms) -> str:
    return " ".join(str(t) for t in terms)


def _one_of(variable: str, terms) -> str:
    """``?p IN (…)`` as a filter: with only the subjects in ``VALUES``, Oxigraph looks each one
    up in its subject index; a second ``VALUES`` for the predicates makes it scan every triple
    of those predicates instead (at 1M triples 35–95 ms against 0.1–1.9 ms per query)."""
    return f"{variable} IN ({', '.join(str(t) for t in terms)})"


def exists(store: ox.Store, iri: str) -> bool:
    """Whether the data says anything about `iri` (as subject or object) or names a graph so."""
    node = ox.NamedNode(iri)
    # SELECT … LIMIT 1 rather than ASK: Virtuoso 7 answers true to ASK { GRAPH <g> { ?s ?p ?o } }
    # for a graph it does not hold
    return bool(list(_query(store, f"SELECT ?p {{ {{ {node} ?p ?o }} UNION {{ ?s ?p {node} }} }} LIMIT 1"))) or bool(
        list(store.query(f"SELECT ?p {{ GRAPH {node} {{ ?s ?p ?o }} }} LIMIT 1")))


def describe(store: ox.Store, iri: str, base: str, inbound_limit: int = 0, known_labels: LRU | None = None
             ) -> Document:
    """The document of `iri` (see the module's docstring); `known_labels`, if given, keeps the
    label statements of the things it mentions from one document to the next (`_label_statements`)."""
    node = ox.NamedNode(iri)
    parts = [ox.NamedNode(base + p) if not p.startswith("http") else ox.NamedNode(p) for p in PART_PROPERTIES]
    described = [node]
    frontier = [node]
    for _ in range(PART_DEPTH):
        if not frontier:
            break
        found = [row["part"] for row in _query(store, f"""
            SELECT DISTINCT ?part WHERE {{
              VALUES ?s {{ {_values(frontier)} }} ?s ?p ?part FILTER({_one_of("?p", parts)} && isIRI(?part)) }}""")]
        frontier = [p for p in found if p not in described]
        described.extend(frontier)

    triples: dict[ox.Triple, None] = {}
    for triple in _own_triples(store, described):
        triples[triple] = None
    inbound, inbound_totals, inbound_kept = _inbound(store, node, inbound_limit)
    for triple in inbound:
        triples[triple] = None

    mentioned = {t.object for t in triples if isinstance(t.object, ox.NamedNode)}
    mentioned |= {t.subject for t in triples if isinstance(t.subject, ox.NamedNode)}
    mentioned -= set(described)
    for triple in _label_statements(store, mentioned, known_labels):
        triples[triple] = None
    return Document(iri, tuple(sorted(triples, key=_sort_key)), inbound_totals, inbound_kept, labelled=True)


def _label_statements(store: ox.Store, iris: set, known: LRU | None) -> list[ox.Triple]:
    """The label statements of `iris`: those `known` holds (IRI → its statements, an empty
    tuple for none), the others in one query, then kept there. The things documents mention
    (commissions, topics, types, places) recur from one document to the next: a crawl of every
    meeting would otherwise look up the same labels for every page."""
    statements: list[ox.Triple] = []
    missing = []
    for node in iris:
        kept = known.get(node, lambda: None) if known is not None else None
        if kept is None:
            missing.append(node)
        else:
            statements.extend(kept)
    if not missing:
        return statements
    found: dict = {node: [] for node in missing}
    for triple in _query(store, f"""
            CONSTRUCT {{ ?s ?p ?label }} WHERE {{
              VALUES ?s {{ {_values(sorted(missing, key=str))} }} ?s ?p ?label
              FILTER({_one_of("?p", (ox.NamedNode(p) for p in LABEL_PROPERTIES))}) }}"""):
        found.setdefault(triple.subject, []).append(triple)
    for node, own in found.items():
        statements.extend(own)
        if known is not None:
            known.put(node, tuple(own))
    return statements


def _inbound(store: ox.Store, node: ox.NamedNode, limit: int
             ) -> tuple[list[ox.Triple], dict[str, int], dict[str, tuple[str, ...]]]:
    """The statements pointing at `node`, at most `limit` per property (0: all); for the
    properties cut, their totals and the things kept, in order."""
    everything = f"CONSTRUCT {{ ?s ?p {node} }} WHERE {{ ?s ?p {node} }}"
    if limit <= 0:
        return list(_query(store, everything)), {}, {}
    totals = {row["p"]: int(row["n"].value) for row in _query(store, f"""
        SELECT ?p (COUNT(DISTINCT ?s) AS ?n) WHERE {{ ?s ?p {node} }} GROUP BY ?p""")}
    cut = {p: n for p, n in totals.items() if n > limit}
    if not cut:
        return list(_query(store, everything)), {}, {}
    triples = list(_query(store, f"""CONSTRUCT {{ ?s ?p {node} }} WHERE {{
        ?s ?p {node} FILTER(?p NOT IN ({", ".join(str(p) for p in cut)})) }}"""))
    kept = {}
    for predicate in cut:  # the first of the query the page links to, so both agree on the order
        first = f"{incoming_query(predicate.value, node.value)} LIMIT {limit}"
        things = [row["thing"] for row in _query(store, first)]
        triples.extend(ox.Triple(thing, predicate, node) for thing in things)
        kept[predicate.value] = tuple(thing.value for thing in things)
    return triples, {p.value: n for p, n in cut.items()}, kept


def _own_triples(store: ox.Store, subjects: list[ox.NamedNode]) -> list[ox.Triple]:
    """The subjects' triples and those of the blank nodes reachable from them."""
    triples = list(_query(store, f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ VALUES ?s {{ {_values(subjects)} }} ?s ?p ?o }}"))
    holders = {t.subject for t in triples if isinstance(t.object, ox.BlankNode)}
    if not holders:
        return triples
    # Only the subjects holding blank nodes are asked again, with their blank nodes' triples, in
    # one query, so that a remote store's blank node labels agree (at 1M triples a meeting's own
    # triples in 1.25 ms against 2.17 when every subject went through the chain).
    return [t for t in triples if t.subject not in holders] + _blank_closure(store, sorted(holders, key=str))


def _blank_closure(store: ox.Store, subjects: list[ox.NamedNode]) -> list[ox.Triple]:
    values = f"VALUES ?root {{ {_values(subjects)} }}"
    patterns = [f"{{ {values} BIND(?root AS ?s) ?s ?p ?o }}"]
    chain = "?root ?p0 ?b0 FILTER(isBlank(?b0))"
    for depth in range(BLANK_DEPTH):
        patterns.append(f"{{ {values} {chain} BIND(?b{depth} AS ?s) ?s ?p ?o }}")
        chain += f" . ?b{depth} ?p{depth + 1} ?b{depth + 1} FILTER(isBlank(?b{depth + 1}))"
    return list(_query(store, f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ {' UNION '.join(patterns)} }}"))


def graph_document(store: ox.Store, graph_iri: str) -> Document:
    """Every triple of one named graph (the ontology: ``{base}ontology``)."""
    node = ox.NamedNode(graph_iri)
    triples = store.query(f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH {node} {{ ?s ?p ?o }} }}")
    return Document(graph_iri, tuple(sorted(set(triples), key=_sort_key)))


def file_document(path, iri: str, base: str) -> Document:
    """The triples of a Turtle file of the release (the shapes, which are not in the store)."""
    triples = {ox.Triple(t.subject, t.predicate, t.object)
               for t in ox.parse(path=str(path), format=ox.RdfFormat.TURTLE, base_iri=base)}
    return Document(iri, tuple(sorted(triples, key=_sort_key)))


def _sort_key(triple: ox.Triple):
    return (isinstance(triple.subject, ox.BlankNode), str(triple.subject), str(triple.predicate), str(triple.object))


def labels(store: ox.Store, iris) -> dict[str, dict[str, str]]:
    """IRI → {language: label} (schema:name, else skos:prefLabel, else rdfs:label, per language)
    for those of `iris` that have one, in one query whatever their number."""
    wanted = sorted({ox.NamedNode(i) for i in iris}, key=str)
    if not wanted:
        return {}
    rank = {p: i for i, p in enumerate(LABEL_PROPERTIES)}
    found = sorted(((row["s"].value, rank[row["p"].value], row["label"]) for row in _query(store, f"""
        SELECT ?s ?p ?label WHERE {{ VALUES ?s {{ {_values(wanted)} }} ?s ?p ?label
          FILTER({_one_of("?p", (ox.NamedNode(p) for p in LABEL_PROPERTIES))} && isLiteral(?label)) }}""")),
                   key=lambda row: (row[0], row[1], row[2].value))
    table: dict[str, dict[str, str]] = {}
    for iri, _, literal in found:
        table.setdefault(iri, {}).setdefault((literal.language or "").lower(), literal.value)
    return table


def positions(store: ox.Store, iris, base: str) -> dict[str, tuple[str, str]]:
    """IRI → (its type, its schema:position) for those of `iris` that have a position, in one
    query; of several types, one of the project's own vocabulary (under `base`) first."""
    wanted = sorted({ox.NamedNode(i) for i in iris}, key=str)
    if not wanted:
        return {}
    table: dict[str, tuple[str, str]] = {}
    for row in sorted(_query(store, f"""
            SELECT ?s ?type ?position WHERE {{ VALUES ?s {{ {_values(wanted)} }}
              ?s <{SCHEMA}position> ?position ; a ?type }}"""),
            key=lambda row: (not row["type"].value.startswith(base), row["type"].value)):
        table.setdefault(row["s"].value, (row["type"].value, row["position"].value))
    return table


def definitions(store: ox.Store) -> dict[str, dict[str, str]]:
    """IRI → {language: definition} (skos:definition, rdfs:comment) for the ontology page."""
    table: dict[str, dict[str, str]] = {}
    for row in _query(store, f"""SELECT ?s ?d WHERE {{
            VALUES ?p {{ <{SKOS}definition> <{RDFS}comment> }} ?s ?p ?d FILTER(isIRI(?s)) }}"""):
        table.setdefault(row["s"].value, {}).setdefault((row["d"].language or "").lower(), row["d"].value)
    return table


def things(store: ox.Store, base: str) -> list[str]:
    """Every IRI under ``{base}id/`` the data describes (for tests, sitemaps …)."""
    prefix = base + "id/"
    return [row["s"].value for row in _query(store, f"""
        SELECT DISTINCT ?s WHERE {{ ?s ?p ?o FILTER(isIRI(?s) && STRSTARTS(STR(?s), "{prefix}")) }}
        ORDER BY ?s""")]
