"""Prefixes used when serialising: the standard vocabularies and our own, under the base."""
from __future__ import annotations

STANDARD = {
    "schema": "https://schema.org/",
    "org": "http://www.w3.org/ns/org#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "dcterms": "http://purl.org/dc/terms/",
    "prov": "http://www.w3.org/ns/prov#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "sh": "http://www.w3.org/ns/shacl#",
    "dcat": "http://www.w3.org/ns/dcat#",
    "void": "http://rdfs.org/ns/void#",
    "hydra": "http://www.w3.org/ns/hydra/core#",
    "time": "http://www.w3.org/2006/time#",
    "vann": "http://purl.org/vocab/vann/",
    "wd": "http://www.wikidata.org/entity/",
    "sdg": "http://metadata.un.org/sdg/",
    "unbis": "http://metadata.un.org/thesaurus/",
}

#: prefix → path under the base
OWN = {
    "unm": "ontology#",
    "unmsh": "shapes#",
    "meeting": "id/meeting/",
    "organization": "id/organization/",
    "place": "id/place/",
    "project": "id/project/",
    "objective": "id/objective/",
    "point": "id/outcome-point/",
    "document": "id/document/",
    "webpage": "id/webpage/",
    "topic": "id/topic/",
    "scheme": "id/scheme/",
    "graph": "graph/",
}


def prefixes(base: str) -> dict[str, str]:
    return {**STANDARD, **{prefix: base + path for prefix, path in OWN.items()}}
