"""Bytes of a document in each format, computed once per release: body, gzip body, ETag.

A `Representation` is immutable and memoised on the publication under
``("repr", iri, format, variant)``; a request only picks one and sets headers.
"""
from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass

import pyoxigraph as ox

from . import jsonld
from .documents import Document
from .lru import LRU
from .namespaces import prefixes

#: Below this size gzip is not worth a header.
GZIP_MIN_BYTES = 512


@dataclass(frozen=True)
class Representation:
    body: bytes
    gzipped: bytes | None
    etag: str           # strong, without quotes; "-gz" is appended for the gzip variant
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()  # computed once from the body (e.g. the CSP of a page)


def make(body: bytes, content_type: str, version: str, *identity: str,
         headers: tuple[tuple[str, str], ...] = ()) -> Representation:
    """The ETag is derived from the release version, what the representation is (IRI, format,
    language or profile) and its bytes, so a new release or a new rendering changes it."""
    digest = hashlib.sha256("\0".join((version, *identity)).encode() + b"\0" + body).hexdigest()[:20]
    gz = gzip.compress(body, compresslevel=9, mtime=0) if len(body) >= GZIP_MIN_BYTES else None
    if gz is not None and len(gz) >= len(body):
        gz = None
    return Representation(body, gz, f"{version}-{digest}", content_type, headers)


def serialize(document: Document, fmt: str, base: str, profile: str = "compacted",
              loader: jsonld.Loader | None = None, known_nodes: LRU | None = None) -> bytes:
    """`known_nodes`: compacted JSON-LD nodes kept from one document to the next
    (`jsonld.compacted_statements`)."""
    triples = list(document.rdf_statements(base))
    if fmt == "ttl":
        return ox.serialize(triples, format=ox.RdfFormat.TURTLE, prefixes=_used_prefixes(triples, base))
    if fmt == "nt":
        return ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES)
    if fmt == "rdf":
        return ox.serialize(triples, format=ox.RdfFormat.RDF_XML, prefixes=_used_prefixes(triples, base))
    if fmt == "jsonld":
        if profile == "expanded":
            return jsonld.dumps(jsonld.expanded(triples))
        if profile == "framed":
            return jsonld.dumps(jsonld.framed(jsonld.expanded(triples), document.iri, loader))
        return jsonld.dumps(jsonld.compacted_statements(triples, loader, known_nodes))
    raise ValueError(f"not an RDF format: {fmt}")


def _used_prefixes(triples, base: str) -> dict[str, str]:
    """Only the prefixes whose namespace occurs, so documents do not list twenty unused ones."""
    iris = {t.value for triple in triples for t in (triple.subject, triple.predicate, triple.object)
            if isinstance(t, ox.NamedNode)}
    iris |= {triple.object.datatype.value for triple in triples if isinstance(triple.object, ox.Literal)}
    return {p: ns for p, ns in prefixes(base).items() if any(i.startswith(ns) for i in iris)}
