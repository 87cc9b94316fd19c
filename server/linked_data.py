"""Linked Data: dereferencing, content negotiation, JSON-LD context, HTML pages.

| path | answer |
|---|---|
| ``/id/{kind}/{slug}`` | 303 See Other → ``/doc/{kind}/{slug}`` (query string kept) |
| ``/doc/{kind}/{slug}`` | the document, negotiated (Accept, q-values; JSON-LD ``profile``) |
| ``/doc/{kind}/{slug}.{html,jsonld,ttl,nt,rdf}`` | one fixed format |
| ``/graph/{path}`` | 303 → ``/doc/graph/{path}``: the provenance of a named graph |
| ``/ontology[.ext]``, ``/shapes[.ext]`` | the vocabulary (graph ``{base}ontology``) and the shapes |
| ``/context.jsonld`` | the JSON-LD context |

Everything a response is made of (document graph, bytes per format, gzip, ETag) is computed
once per release and memoised on the publication.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from flask import Blueprint, current_app, request

from . import documents, html_pages, i18n, jsonld, representations, response_cache
from .lru import LRU
from .app import content_security_policy, error_response, publication, settings
from .negotiation import BY_NAME, DEFAULT_PROFILE, FORMATS, choose_format, jsonld_profile

blueprint = Blueprint("linked_data", __name__)

#: Bounds of the per-release caches of documents (triples: ~375 bytes each in memory, so ~37 MiB
#: per worker; a meeting's document holds ~300) and representations (bytes).
MAX_DOCUMENT_TRIPLES = 100_000
MAX_KNOWN_IRIS = 200_000
#: label statements of the things documents mention (commissions, topics, types), kept per
#: worker and release: ~7 MiB at most, at the ~375 bytes of a triple
MAX_LABEL_STATEMENTS = 20_000
#: compacted JSON-LD nodes of the things documents mention, by the statements they hold: the
#: statements (keys) and the nodes, ~1 KB per statement, so ~20 MiB at most per worker
MAX_JSONLD_NODE_STATEMENTS = 20_000
MAX_REPRESENTATION_BYTES = 64 * 1024 * 1024
CACHE_CONTROL = "public, max-age=300, s-maxage=3600, stale-while-revalidate=86400, stale-if-error=86400"
THING_PATH = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*/[a-z0-9]+(?:-[a-z0-9]+)*")
GRAPH_PATH = re.compile(r"graph(?:/[a-z0-9]+(?:-[a-z0-9]+)*)+")
EXTENSION = re.compile(r"(.+)\.(" + "|".join(f.name for f in FORMATS) + r")")
ALLOWED_REQUEST_HEADERS = "Accept, Accept-Language, If-None-Match, If-Modified-Since, Cache-Control, Range, If-Range"


@dataclass(frozen=True)
class Target:
    """What a request path stands for."""
    iri: str        # the described thing (canonical IRI)
    path: str       # the document's path on this host, without extension ("/doc/meeting/x")
    canonical: str  # the document's canonical URL ({base}doc/meeting/x)
    kind: str       # thing | graph | ontology | shapes


# --- routes -------------------------------------------------------------------------------

@blueprint.before_app_request
def _preflight():
    """The CORS preflight of every read, on any page of the site (the SPARQL endpoint answers
    its own, which allows POST)."""
    if request.method == "OPTIONS" and request.url_rule is not None and request.endpoint != "sparql.endpoint":
        response = current_app.response_class(status=204)
        response.headers["Allow"] = "GET, HEAD, OPTIONS"
        response.headers["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_REQUEST_HEADERS
        response.headers["Access-Control-Max-Age"] = "86400"
        return response
    return None


@blueprint.route("/id/<path:rest>")
def thing(rest: str):
    base = settings().base
    if not THING_PATH.fullmatch(rest) or not _exists(base + "id/" + rest):
        return _not_found(base + "id/" + rest)
    return _see_other("/doc/" + rest)


@blueprint.route("/graph/<path:rest>")
def graph(rest: str):
    base = settings().base
    if not GRAPH_PATH.fullmatch("graph/" + rest) or not _exists(base + "graph/" + rest):
        return _not_found(base + "graph/" + rest)
    return _see_other("/doc/graph/" + rest)


@blueprint.route("/doc/<path:rest>")
def document(rest: str):
    base = settings().base
    match = EXTENSION.fullmatch(rest)
    name, fixed = (match.group(1), match.group(2)) if match else (rest, None)
    if GRAPH_PATH.fullmatch(name):
        target = Target(base + name, "/doc/" + name, base + "doc/" + name, "graph")
    elif THING_PATH.fullmatch(name):
        target = Target(base + "id/" + name, "/doc/" + name, base + "doc/" + name, "thing")
    else:
        return _not_found(base + "doc/" + rest)
    if not _exists(target.iri):
        return _not_found(target.iri)
    return _serve(target, fixed)


@blueprint.route("/ontology", defaults={"fixed": None})
@blueprint.route("/ontology.<fixed>")
def ontology(fixed: str | None):
    base = settings().base
    if fixed is not None and fixed not in BY_NAME:
        return _not_found(base + "ontology." + fixed)
    return _serve(Target(base + "ontology", "/ontology", base + "ontology", "ontology"), fixed)


@blueprint.route("/ontology/<path:rest>")
def ontology_version(rest: str):
    """The ontology's owl:versionIRI ({base}ontology/1.0.0) leads to the ontology while it is
    the version the release publishes."""
    iri = settings().base + "ontology/" + rest
    if iri not in ontology_versions(publication()):
        return _not_found(iri)
    return _see_other("/ontology")


def ontology_versions(pub) -> frozenset[str]:
    """The version IRIs the release's ontology declares (owl:versionIRI)."""
    query = f"SELECT ?v {{ <{pub.settings.base}ontology> <http://www.w3.org/2002/07/owl#versionIRI> ?v }}"
    return pub.memo(("ontology-versions",), lambda: frozenset(
        row["v"].value for row in pub.store.query(query, use_default_graph_as_union=True)))


@blueprint.route("/shapes", defaults={"fixed": None})
@blueprint.route("/shapes.<fixed>")
def shapes(fixed: str | None):
    base = settings().base
    if fixed is not None and fixed not in BY_NAME:
        return _not_found(base + "shapes." + fixed)
    return _serve(Target(base + "shapes", "/shapes", base + "shapes", "shapes"), fixed)


@blueprint.route("/context.jsonld")
def context():
    response = _send(_context_representation(), vary=[])
    response.headers["Link"] = (f'<{jsonld.context_url(settings().base)}>; rel="canonical", '
                                f'</context/{jsonld.CONTEXT_VERSION}.jsonld>; rel="alternate"; type="application/ld+json"')
    return response


@blueprint.route("/context/<version>.jsonld")
def versioned_context(version: str):
    """The context of one version, for clients that pin it (immutable once published)."""
    if version != jsonld.CONTEXT_VERSION:
        return error_response(404, "Not Found", f"No JSON-LD context version {version!r}; the current one is "
                                                f"/context/{jsonld.CONTEXT_VERSION}.jsonld (also at /context.jsonld).")
    response = _send(_context_representation(), vary=[])
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


def _context_representation() -> representations.Representation:
    pub = publication()
    return pub.memo(("context",), lambda: representations.make(
        jsonld.dumps(jsonld.build_context(pub.settings.base)), "application/ld+json; charset=utf-8",
        jsonld.CONTEXT_VERSION, "context", pub.settings.base))


# --- documents ----------------------------------------------------------------------------

def _exists(iri: str) -> bool:
    """Whether the data knows `iri`; only a yes is memoised, so probing random paths cannot
    grow the per-release cache (a no costs one ASK query)."""
    pub = publication()
    known = _cache("exists")
    if known.get(iri, lambda: None):
        return True
    if documents.exists(pub.store, iri):
        known.put(iri, True)
        return True
    return False


def load_document(target: Target) -> documents.Document:
    pub = publication()
    base = pub.settings.base

    def compute():
        if target.kind == "ontology":
            return documents.graph_document(pub.store, target.iri)
        if target.kind == "shapes":
            return documents.file_document(pub.release.file("shapes.ttl"), target.iri, base)
        return documents.describe(pub.store, target.iri, base, settings().max_inbound_per_property,
                                  _cache("labels"))
    return _cache("documents").get(target.iri, compute)


def _cache(name: str) -> LRU:
    """This release's bounded cache `name` (documents: by triples; representations: by bytes;
    both keep what is asked for a second time, so that a crawl passes through them; labels: the
    label statements of mentioned things, by statements, kept at once since they recur)."""
    pub = publication()
    if name == "documents":
        return pub.memo(("lru", name), lambda: LRU(MAX_DOCUMENT_TRIPLES, lambda document: len(document.triples),
                                                   second_request=True))
    if name == "exists":
        return pub.memo(("lru", name), lambda: LRU(MAX_KNOWN_IRIS))
    if name == "labels":
        return pub.memo(("lru", "mentioned-labels"), lambda: LRU(MAX_LABEL_STATEMENTS, lambda kept: len(kept) + 1))
    if name == "jsonld-nodes":
        return pub.memo(("lru", name), lambda: LRU(MAX_JSONLD_NODE_STATEMENTS, _node_statements, second_request=True))
    return pub.memo(("lru", name), lambda: LRU(
        MAX_REPRESENTATION_BYTES, lambda rep: len(rep.body) + len(rep.gzipped or b"") + 200, second_request=True))


def _node_statements(node: dict) -> int:
    """About the number of statements a compacted node holds (a language map: one per language)."""
    return 1 + sum(len(value) if isinstance(value, (list, dict)) else 1 for value in node.values())


def loader() -> jsonld.Loader:
    pub = publication()
    return pub.memo(("jsonld-loader",), lambda: jsonld.Loader(pub.settings.base))


def _serve(target: Target, fixed: str | None):
    pub = publication()
    negotiated = fixed is None
    fmt = BY_NAME[fixed] if fixed else choose_format(request.accept_mimetypes)
    if fmt is None:
        response = error_response(406, "Not Acceptable",
                                  "None of the media types in your Accept header is available for this document.",
                                  available=[f.media_type for f in FORMATS])
        response.headers["Link"] = _links(target)
        return response
    vary = ["Accept"] if negotiated else []
    variant = ""
    query = ""
    language = None
    if fmt.name == "html":
        language = i18n.chosen_language()
        explicit = not i18n.language_was_negotiated()
        if not explicit:
            vary.append("Accept-Language")
        variant = f"{language}:{int(explicit)}"
        query = f"?lang={language}"
        rep = _cache("representations").get((target.iri, "html", variant), lambda: _html_representation(
            target, language, explicit, variant))
    else:
        if fmt.name == "jsonld":
            profile = jsonld_profile(request.accept_mimetypes if negotiated else None, request.args.get("profile"))
            variant = profile
            query = "" if profile == DEFAULT_PROFILE else f"?profile={profile}"
        rep = _cache("representations").get((target.iri, fmt.name, variant), lambda: representations.make(
            representations.serialize(load_document(target), fmt.name, pub.settings.base, variant or DEFAULT_PROFILE,
                                      loader(), _cache("jsonld-nodes")),
            fmt.content_type, pub.version, target.iri, fmt.name, variant))
    response = _send(rep, vary)
    response.headers["Content-Location"] = f"{target.path}.{fmt.name}{query}"
    if language:
        response.headers["Content-Language"] = language
    response.headers["Link"] = _links(target)
    return response


def _html_representation(target: Target, language: str, explicit: bool, variant: str):
    """A page, with its Content-Security-Policy computed once from the uncompressed HTML (the
    app cannot read a gzipped body to hash its JSON-LD block)."""
    pub = publication()
    body = html_pages.render(target, load_document(target), language, explicit).encode("utf-8")
    return representations.make(body, BY_NAME["html"].content_type, pub.version, target.iri, "html", variant,
                                headers=(("Content-Security-Policy", content_security_policy(body)),))


def _links(target: Target) -> str:
    links = [f'<{target.path}.{f.name}>; rel="alternate"; type="{f.media_type}"' for f in FORMATS]
    if target.kind == "thing":
        links.append(f'<{target.iri}>; rel="describes"')
    links.append(f'<{target.canonical}>; rel="canonical"')
    return ", ".join(links)


# --- HTTP plumbing ------------------------------------------------------------------------

def _send(rep: representations.Representation, vary: list[str]):
    response_cache.keep()
    pub = publication()
    gzip_ok = rep.gzipped is not None and request.accept_encodings["gzip"] > 0
    response = current_app.response_class(rep.gzipped if gzip_ok else rep.body, status=200)
    response.headers["Content-Type"] = rep.content_type
    if gzip_ok:
        response.headers["Content-Encoding"] = "gzip"
    for name, value in rep.headers:
        response.headers[name] = value
    response.set_etag(rep.etag + ("-gz" if gzip_ok else ""))
    response.last_modified = pub.created
    response.headers["Cache-Control"] = CACHE_CONTROL
    vary = [*vary, "Accept-Encoding"] if rep.gzipped is not None else vary
    if vary:
        response.headers["Vary"] = ", ".join(vary)
    return response.make_conditional(request)


def _see_other(path: str):
    response_cache.keep()
    query = request.query_string.decode("latin-1")
    response = current_app.response_class(status=303)
    response.headers["Location"] = path + (f"?{query}" if query else "")
    response.headers["Vary"] = "Accept"
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response


def _not_found(iri: str):
    return error_response(
        404, "Not Found",
        f"Nothing is published as <{iri}>. Things have IRIs of the form {settings().base}id/{{kind}}/{{slug}} "
        f"(kinds: meeting, organization, place, project, objective, outcome-point, document, webpage, "
        f"topic, scheme); find them with SPARQL at /sparql or start from the home page /.",
        iri=iri, links={"home": "/", "sparql": "/sparql", "ontology": "/ontology"})


