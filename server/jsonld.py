"""JSON-LD: the published context, and the expanded, compacted and framed forms of a document.

The context is published at ``/context.jsonld`` and every compacted or framed response refers
to it by its **canonical** URL, ``{base}context.jsonld`` (like the IRIs in the data, it does
not depend on the host that served it). pyld never fetches it over the network: our document
loader answers that URL from memory and refuses every other remote context.

Compaction is lossless by construction (a term is chosen only for values it fits: a
``@type: xsd:dateTime`` term is not used for an xsd:date value, a language map only for
language-tagged strings …); the tests check that expanding every response gives back the
document graph exactly.
"""
from __future__ import annotations

import json
from typing import Any

import pyoxigraph as ox
from pyld import jsonld

from .lru import LRU
from .namespaces import OWN, STANDARD

XSD = STANDARD["xsd"]
#: Version of the context: changes only add terms (a term never changes meaning); a change that
#: would break compacted documents gets a new major version and URL.
CONTEXT_VERSION = "1.0.0"

#: term → property IRI (compact), for properties whose values are language-tagged texts:
#: compacted as language maps {"ar": …, "en": …}.
LANGUAGE_MAPS = {
    "name": "schema:name",
    "alternateName": "schema:alternateName",
    "description": "schema:description",
    "abstract": "schema:abstract",
    "text": "schema:text",
    "prefLabel": "skos:prefLabel",
    "altLabel": "skos:altLabel",
    "definition": "skos:definition",
    "scopeNote": "skos:scopeNote",
    "editorialNote": "skos:editorialNote",
    "label": "rdfs:label",
    "comment": "rdfs:comment",
    "title": "dcterms:title",
    "closingStatement": "unm:closingStatement",
}
#: term → property IRI, for properties whose values are IRIs (or blank nodes).
IRI_VALUED = {
    "organizer": "schema:organizer", "location": "schema:location", "about": "schema:about",
    "superEvent": "schema:superEvent", "subEvent": "schema:subEvent", "subjectOf": "schema:subjectOf",
    "isPartOf": "schema:isPartOf", "hasPart": "schema:hasPart", "mentions": "schema:mentions",
    "author": "schema:author", "publisher": "schema:publisher", "mainEntity": "schema:mainEntity",
    "mainEntityOfPage": "schema:mainEntityOfPage", "url": "schema:url",
    "eventStatus": "schema:eventStatus", "eventAttendanceMode": "schema:eventAttendanceMode",
    "parentOrganization": "schema:parentOrganization", "subOrganization": "schema:subOrganization",
    "address": "schema:address", "geo": "schema:geo",
    "sameAs": "owl:sameAs", "seeAlso": "rdfs:seeAlso", "isDefinedBy": "rdfs:isDefinedBy",
    "subClassOf": "rdfs:subClassOf", "subPropertyOf": "rdfs:subPropertyOf",
    "domain": "rdfs:domain", "range": "rdfs:range", "inverseOf": "owl:inverseOf",
    "versionIRI": "owl:versionIRI",
    "domainIncludes": "schema:domainIncludes", "rangeIncludes": "schema:rangeIncludes",
    "subject": "dcterms:subject", "license": "dcterms:license", "source": "dcterms:source",
    "inScheme": "skos:inScheme", "hasTopConcept": "skos:hasTopConcept", "topConceptOf": "skos:topConceptOf",
    "broader": "skos:broader", "narrower": "skos:narrower", "related": "skos:related",
    "exactMatch": "skos:exactMatch", "closeMatch": "skos:closeMatch", "relatedMatch": "skos:relatedMatch",
    "broadMatch": "skos:broadMatch", "narrowMatch": "skos:narrowMatch",
    "hasUnit": "org:hasUnit", "unitOf": "org:unitOf",
    "hasSubOrganization": "org:hasSubOrganization", "subOrganizationOf": "org:subOrganizationOf",
    "wasDerivedFrom": "prov:wasDerivedFrom", "wasAttributedTo": "prov:wasAttributedTo",
    "hasObjective": "unm:hasObjective", "objectiveOf": "unm:objectiveOf",
    "hasOutcomeDocument": "unm:hasOutcomeDocument", "hasPoint": "unm:hasPoint",
    "partOfProject": "unm:partOfProject",
}
#: term → (property IRI, datatype): typed values.
TYPED = {
    "startDate": ("schema:startDate", "xsd:dateTime"),
    "endDate": ("schema:endDate", "xsd:dateTime"),
    "position": ("schema:position", "xsd:integer"),
    "latitude": ("schema:latitude", "xsd:decimal"),
    "longitude": ("schema:longitude", "xsd:decimal"),
    "issued": ("dcterms:issued", "xsd:date"),
    "dateCreated": ("schema:dateCreated", "xsd:date"),
}
#: term → property IRI: plain strings.
PLAIN = {
    "timeZone": "unm:timeZone", "temporalCoverage": "schema:temporalCoverage",
    "inLanguage": "schema:inLanguage", "identifier": "dcterms:identifier",
    "streetAddress": "schema:streetAddress", "addressLocality": "schema:addressLocality",
    "addressRegion": "schema:addressRegion", "postalCode": "schema:postalCode",
    "addressCountry": "schema:addressCountry", "versionInfo": "owl:versionInfo",
}


#: prefixes that came after the context was pinned (1.0.0, served as immutable): JSON-LD writes
#: their terms in full (Hydra's, in the RDF forms of a document that was cut: server/documents.py)
OUTSIDE_CONTEXT = ("hydra",)


def context_url(base: str) -> str:
    return base + "context.jsonld"


def build_context(base: str) -> dict[str, Any]:
    """The published context document (the same for every release with the same base)."""
    prefixes = {**{k: v for k, v in STANDARD.items() if k not in ("sh", *OUTSIDE_CONTEXT)}, "sh": STANDARD["sh"]}
    prefixes.update({p: base + path for p, path in OWN.items()})
    ctx: dict[str, Any] = {"@version": 1.1, "id": "@id", "type": "@type"}
    ctx.update(prefixes)
    for term, iri in LANGUAGE_MAPS.items():
        ctx[term] = {"@id": iri, "@container": "@language"}
    for term, iri in IRI_VALUED.items():
        ctx[term] = {"@id": iri, "@type": "@id"}
    for term, (iri, datatype) in TYPED.items():
        ctx[term] = {"@id": iri, "@type": datatype}
    for term, iri in PLAIN.items():
        ctx[term] = {"@id": iri}
    return {"@context": ctx}


class Loader:
    """A pyld document loader that knows our context and nothing else (no network)."""

    def __init__(self, base: str):
        self.url = context_url(base)
        self.document = build_context(base)

    def __call__(self, url: str, options: dict | None = None) -> dict:
        if url == self.url:
            # "static": pyld keeps the context resolved (process-wide) instead of fetching and
            # canonicalising it again for every document (JSON-LD 1.1 API, remote contexts)
            return {"contentType": "application/ld+json", "contextUrl": None,
                    "documentUrl": url, "document": self.document, "tag": "static"}
        raise jsonld.JsonLdError(f"remote context not allowed: {url}", "jsonld.LoadDocumentError",
                                 {"url": url}, code="loading remote context failed")


def _term(term) -> dict[str, str]:
    if isinstance(term, ox.NamedNode):
        return {"type": "IRI", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "blank node", "value": "_:" + term.value}
    if term.language:
        return {"type": "literal", "value": term.value, "datatype": STANDARD["rdf"] + "langString",
                "language": term.language}
    return {"type": "literal", "value": term.value, "datatype": term.datatype.value}


def expanded(triples) -> list:
    """Expanded JSON-LD of the triples (no native types: literals keep their lexical form)."""
    dataset = {"@default": [{"subject": _term(t.subject), "predicate": _term(t.predicate),
                             "object": _term(t.object)} for t in triples]}
    return jsonld.from_rdf(dataset, {"useNativeTypes": False, "useRdfType": False})


class _Processor(jsonld.JsonLdProcessor):
    """pyld's processor, remembering how each IRI compacts under each active context.

    pyld finds the compact form of an IRI by scanning every term of the context, once per
    occurrence: ~60 % of a document's JSON-LD (at 1M triples, 17 of 28 ms of a cold meeting
    document). Without a value to match the result depends only on the (immutable, and cached
    by pyld across calls) active context and the arguments, so it is computed once per process."""

    _known: dict[int, tuple[Any, dict]] = {}

    def _compact_iri(self, active_ctx, iri, value=None, vocab=False, base=None, reverse=False):
        if value is not None:
            return super()._compact_iri(active_ctx, iri, value, vocab, base, reverse)
        entry = self._known.get(id(active_ctx))
        if entry is None or entry[0] is not active_ctx:  # holding the context keeps its id unique
            if len(self._known) >= 64:
                self._known.clear()
            entry = self._known[id(active_ctx)] = (active_ctx, {})
        memo = entry[1]
        key = (iri, vocab, base, reverse)
        if key not in memo:
            memo[key] = super()._compact_iri(active_ctx, iri, None, vocab, base, reverse)
        return memo[key]


def compacted(expanded_form: list, loader: Loader) -> dict:
    """`expanded_form` compacted with our context (it is expanded already: pyld would otherwise
    expand it again, a third of the time of a document's JSON-LD)."""
    return _Processor().compact(expanded_form, loader.url, {"documentLoader": loader, "skipExpansion": True})


#: statements that chain nodes into an RDF list, which pyld turns into one @list across nodes
_LIST_LINKS = (STANDARD["rdf"] + "first", STANDARD["rdf"] + "rest")


def compacted_statements(triples: list, loader: Loader, known: LRU | None = None) -> dict:
    """The compacted document of `triples`, the same as ``compacted(expanded(triples), loader)``,
    made node by node: a node's compact form depends
    only on its own statements and the context (ours has no scoped contexts), and the things a
    document mentions (commissions, topics, places, classes: half of a meeting's statements)
    recur from one document to the next, so `known` keeps their compact forms (statements →
    node). pyld then expands and compacts only the nodes it lacks, all in one call. Documents
    with RDF lists, whose nodes pyld joins, are compacted whole."""
    groups = _by_subject(triples)
    if known is None or len(groups) < 2 or any(t.predicate.value in _LIST_LINKS for t in triples):
        return compacted(expanded(triples), loader)
    nodes = {key: known.get(key, lambda: None) for key in groups}
    missing = sorted((key for key, node in nodes.items() if node is None), key=groups.get)
    if missing:
        made = compacted(expanded([t for key in missing for t in key]), loader)
        made_nodes = made["@graph"] if len(missing) > 1 else [{k: v for k, v in made.items() if k != "@context"}]
        for key, node in zip(missing, made_nodes, strict=True):
            nodes[key] = known.put(key, node)
    return {"@context": loader.url, "@graph": [nodes[key] for key in sorted(groups, key=groups.get)]}


def _by_subject(triples: list) -> dict[tuple, str]:
    """Each subject's statements, in their order (a tuple: the key of its node) → the node's id
    as pyld sorts nodes (blank nodes as ``_:…``)."""
    statements: dict = {}
    for triple in triples:
        statements.setdefault(triple.subject, []).append(triple)
    return {tuple(own): ("_:" if isinstance(subject, ox.BlankNode) else "") + subject.value
            for subject, own in statements.items()}


def framed(expanded_form: list, root: str, loader: Loader) -> dict:
    """One tree rooted at `root`: everything reachable from it embedded once (JSON-LD 1.1
    ``@embed: @once``), lists of positioned things (objectives, points) in position order.
    Things that only point *to* the root (incoming links) are not reachable, so not in it."""
    frame = {"@context": loader.url, "@id": root, "@embed": "@once"}
    result = _Processor().frame(expanded_form, frame, {"documentLoader": loader, "omitGraph": True})
    _prefer_embedding(result)
    _order_by_position(result)
    return result


#: (our property, the schema.org property materialised next to it): a thing linked by both is
#: embedded under ours and referred to by id under the other (the triples are the same).
PREFERRED = (("hasPoint", "hasPart"), ("hasOutcomeDocument", "subjectOf"), ("partOfProject", "superEvent"),
             ("subject", "about"))


def _prefer_embedding(node: Any) -> None:
    if isinstance(node, list):
        for value in node:
            _prefer_embedding(value)
        return
    if not isinstance(node, dict):
        return
    for ours, theirs in PREFERRED:
        if ours in node and theirs in node:
            mine, other = _as_list(node[ours]), _as_list(node[theirs])
            embedded = {v.get("id"): v for v in other if isinstance(v, dict) and "id" in v}
            moved = [embedded[v] if isinstance(v, str) and v in embedded else v for v in mine]
            moved_ids = {v["id"] for v in moved if isinstance(v, dict) and v.get("id") in embedded}
            rest = [v["id"] if isinstance(v, dict) and v.get("id") in moved_ids else v for v in other]
            node[ours] = moved if isinstance(node[ours], list) else moved[0]
            node[theirs] = rest if isinstance(node[theirs], list) else rest[0]
    for value in node.values():
        _prefer_embedding(value)


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _order_by_position(node: Any) -> None:
    if isinstance(node, dict):
        for value in node.values():
            _order_by_position(value)
    elif isinstance(node, list):
        for value in node:
            _order_by_position(value)
        if node and all(isinstance(v, dict) and _position(v) is not None for v in node):
            node.sort(key=_position)


def _position(node: dict):
    value = node.get("position")
    if isinstance(value, dict):
        value = value.get("@value")
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def dumps(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")


def dumps_for_html(document: Any) -> str:
    """JSON for a ``<script type="application/ld+json">``: ``<``, ``>``, ``&`` escaped as
    ``\\u003c`` …, so that no text from the data can close the script or open a comment."""
    text = json.dumps(document, ensure_ascii=False, indent=1)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
