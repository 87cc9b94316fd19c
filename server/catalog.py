"""The catalogue side: the landing page ``/``, the dataset description ``/dataset`` (DCAT, VoID,
DQV; content-negotiated), ``/.well-known/void``, the quality report ``/dataset/quality`` and the
description of an earlier release ``/dataset/{version}``. The dumps (server/dumps.py) and the
sitemap and robots.txt (server/sitemap.py) are nested blueprints of this one.

The description is built at build time (server/dataset_description.py) and read here once per
release; every response carries the release's ETag and Last-Modified and answers 304.
"""
from __future__ import annotations

import json
import re

from flask import Blueprint, Response, redirect, render_template, request
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF

from . import dataset_description as dd
from . import dumps, sitemap, statistics
from .app import error_response, publication
from .i18n import LANGUAGES, NATIVE_NAMES, RTL, chosen_language, direction, language_was_negotiated, pick, words
from .negotiation import best_match
from .publication import Publication
from .release import DESCRIPTION_FILE

blueprint = Blueprint("catalog", __name__)
blueprint.register_blueprint(dumps.blueprint)
blueprint.register_blueprint(sitemap.blueprint)

#: format name → (media type, rdflib serializer, Content-Type)
RDF_FORMATS = {
    "jsonld": ("application/ld+json", "json-ld", "application/ld+json; charset=utf-8"),
    "ttl": ("text/turtle", "turtle", "text/turtle; charset=utf-8"),
    "nt": ("application/n-triples", "nt", "application/n-triples; charset=utf-8"),
    "rdf": ("application/rdf+xml", "xml", "application/rdf+xml; charset=utf-8"),
}
#: offered to /dataset, in order of preference when the client has none (HTML for browsers)
DESCRIPTION_OFFERS = [("text/html", "html")] + [(m, name) for name, (m, _, _) in RDF_FORMATS.items()] \
    + [("application/json", "jsonld")]
REPORT_OFFERS = [("text/turtle", "ttl"), ("application/ld+json", "jsonld"), ("application/n-triples", "nt"),
                 ("application/rdf+xml", "rdf"), ("application/json", "jsonld")]
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}\.[0-9a-f]{8}$")


# ------------------------------------------------------------------------------------------
# The description graph of the served release
# ------------------------------------------------------------------------------------------
def description_graph(pub: Publication) -> Graph:
    return pub.memo(("catalog", "description"), lambda: _load_description(pub))


def _load_description(pub: Publication) -> Graph:
    path = pub.release.file(DESCRIPTION_FILE)
    graph = dd.bind_prefixes(Graph(), pub.settings.base)
    if path.is_file():
        return graph.parse(path, format="turtle")
    # A release written before descriptions existed: describe it now, from its store.
    m = pub.release.manifest
    validation = {**m.get("validation", {"conforms": True, "results": 0})}
    return graph + dd.describe(
        base=pub.settings.base, catalog=dd.load_catalog(pub.settings.root, pub.settings.base),
        license=pub.settings.license, version=m["version"], created=m["created"],
        first_issued=m.get("first_issued", m["created"]), previous=m.get("previous"),
        source_sha256=m.get("source_sha256", ""), files=m["files"],
        stats=statistics.compute(pub.store, pub.settings.base), validation=validation)


def serialize(graph: Graph, fmt: str, base: str) -> bytes:
    """The graph in one of RDF_FORMATS; JSON-LD and N-Triples in a stable order (same bytes in
    every worker process), the others as rdflib writes them (hence weak ETags)."""
    _, serializer, _ = RDF_FORMATS[fmt]
    if fmt == "jsonld":
        context = {prefix: str(ns) for prefix, ns in dd.PREFIXES.items()}
        context["unm"] = base + "ontology#"
        data = json.loads(graph.serialize(format="json-ld", context=context, auto_compact=True))
        if isinstance(data.get("@graph"), list):
            data["@graph"].sort(key=lambda node: str(node.get("@id", "")))
        return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    if fmt == "nt":
        lines = graph.serialize(format="nt", encoding="utf-8").splitlines(keepends=True)
        return b"".join(sorted(line for line in lines if line.strip()))
    return graph.serialize(format=serializer, encoding="utf-8")


def negotiate(offers: list[tuple[str, str]]) -> str | None:
    """The offer the client prefers (werkzeug: q-values, wildcards; ties → our order)."""
    if not request.accept_mimetypes:
        return offers[0][1]
    best = best_match(request.accept_mimetypes, [media for media, _ in offers])
    return dict(offers)[best] if best else None


def _not_acceptable(offers):
    return error_response(406, "Not Acceptable", "This resource is available in these formats only.",
                          available=sorted({media for media, _ in offers}))


def _conditional(response: Response, pub: Publication, tag: str) -> Response:
    response.set_etag(f"{pub.version}-{tag}", weak=True)
    response.last_modified = pub.created
    response.headers["Cache-Control"] = "public, max-age=300, must-revalidate"
    return response.make_conditional(request)


def _vary(response: Response, html: bool, accept: bool = True) -> Response:
    """Vary: Accept when the format was negotiated, Accept-Language when an HTML page's
    language was (no ?lang=)."""
    vary = (["Accept"] if accept else []) + (["Accept-Language"] if html and language_was_negotiated() else [])
    for header in vary:
        response.vary.add(header)
    return response


# ------------------------------------------------------------------------------------------
# What the HTML pages show, extracted once per release and language
# ------------------------------------------------------------------------------------------
def local_path(iri: str, base: str) -> str:
    """An IRI of ours as a path on the host being browsed; other IRIs unchanged."""
    return "/" + iri[len(base):] if iri.startswith(base) else iri


def _texts(graph: Graph, subject, predicate) -> dict[str, str]:
    return {(o.language or "").lower(): str(o) for o in graph.objects(subject, predicate) if isinstance(o, Literal)}


def _in(graph: Graph, subject, predicate, lang: str) -> str:
    found = pick(_texts(graph, subject, predicate), lang)
    return found[0] if found else ""


def _names(pub: Publication, query: str, lang: str) -> list[dict]:
    """(IRI, schema:name in `lang` with fallback) for the things the query selects (?s)."""
    rows: dict[str, dict[str, str]] = {}
    for row in pub.store.query(query, use_default_graph_as_union=True):
        names = rows.setdefault(row["s"].value, {})
        if row["name"] is not None:
            names[(row["name"].language or "").lower()] = row["name"].value
    base = pub.settings.base
    items = []
    for iri, names in rows.items():
        found = pick(names, lang)
        items.append({"iri": iri, "href": local_path(iri, base), "name": found[0] if found else iri,
                      "lang": found[1] if found else "", "dir": direction(found[1]) if found else "ltr"})
    return sorted(items, key=lambda item: item["name"])


#: meetings listed on the landing page, the most recent first (a portal holds thousands: the
#: commissions' pages list all of theirs, and the search box finds any)
LANDING_MEETINGS = 20


def _meetings_pattern(pub: Publication) -> str:
    return f"""?s a <https://schema.org/Event> FILTER(STRSTARTS(STR(?s), "{pub.settings.base}id/meeting/"))"""


def _recent_meetings(pub: Publication, lang: str) -> list[dict]:
    recent = pub.store.query(f"""SELECT ?s ?start WHERE {{ {_meetings_pattern(pub)}
        OPTIONAL {{ ?s <https://schema.org/startDate> ?start }} }} ORDER BY DESC(?start) ?s LIMIT {LANDING_MEETINGS}""",
                             use_default_graph_as_union=True)
    order = list(dict.fromkeys(row["s"].value for row in recent))
    if not order:
        return []
    named = {item["iri"]: item for item in _names(pub, f"""SELECT ?s ?name WHERE {{
        VALUES ?s {{ {" ".join(f"<{iri}>" for iri in order)} }} OPTIONAL {{ ?s <https://schema.org/name> ?name }} }}""", lang)}
    return [named[iri] for iri in order]


def _meeting_count(pub: Publication) -> int:
    rows = pub.store.query(f"SELECT (COUNT(DISTINCT ?s) AS ?n) WHERE {{ {_meetings_pattern(pub)} }}",
                           use_default_graph_as_union=True)
    return int(next(iter(rows))["n"].value)


def view(pub: Publication, lang: str) -> dict:
    return pub.memo(("catalog", "view", lang), lambda: _view(pub, lang))


def _view(pub: Publication, lang: str) -> dict:
    base, g, m = pub.settings.base, description_graph(pub), pub.release.manifest
    dataset, catalog = URIRef(base + "dataset"), URIRef(base + "dataset#catalog")
    stats = m.get("statistics") or statistics.compute(pub.store, base).to_json()
    files = [{"name": name, "key": key, "href": f"/dumps/{name}", "label": label, "media_type": media,
              "bytes": m["files"][name]["bytes"], "sha256": m["files"][name]["sha256"]}
             for name, (key, media, _, _, _, label) in dd.DUMP_FORMATS.items() if name in m["files"]]
    publisher = g.value(dataset, DCTERMS.publisher)
    period = g.value(dataset, DCTERMS.temporal)
    validation = m.get("validation", {})
    return {
        "title": _in(g, dataset, DCTERMS.title, lang),
        "description": _in(g, dataset, DCTERMS.description, lang),
        "catalog_title": _in(g, catalog, DCTERMS.title, lang),
        "keywords": sorted(k for k, in [(str(o),) for o in g.objects(dataset, DCAT.keyword)
                                        if isinstance(o, Literal) and (o.language or "") == lang])
                    or sorted(str(o) for o in g.objects(dataset, DCAT.keyword) if (o.language or "") == "en"),
        "publisher": _in(g, publisher, FOAF.name, lang) if publisher else "",
        "licence": pub.settings.license,
        "version": pub.version,
        "created": m["created"],
        "first_issued": m.get("first_issued", m["created"]),
        "previous": m.get("previous"),
        "start_date": str(g.value(period, DCAT.startDate)) if period else None,
        "end_date": str(g.value(period, DCAT.endDate)) if period else None,
        "files": files,
        "stats": stats,
        "validation": validation,
        "meetings": _recent_meetings(pub, lang),
        "meeting_count": _meeting_count(pub),
        "commissions": _names(pub, f"""
            SELECT ?s ?name WHERE {{ ?s a <{base}ontology#RegionalCommission>
              OPTIONAL {{ ?s <https://schema.org/name> ?name }} }}""", lang),
        "linksets": sorted(stats.get("linksets", []), key=lambda l: (l["target"], l["predicate"])),
    }


# ------------------------------------------------------------------------------------------
# schema.org Dataset for search engines (Google Dataset Search)
# ------------------------------------------------------------------------------------------
def schema_org_dataset(pub: Publication, lang: str) -> dict:
    return pub.memo(("catalog", "schema.org", lang), lambda: _schema_org_dataset(pub, lang))


def _schema_org_dataset(pub: Publication, lang: str) -> dict:
    base, g, v = pub.settings.base, description_graph(pub), view(pub, lang)
    dataset = URIRef(base + "dataset")
    publisher = {"@type": "Organization", "name": v["publisher"], "url": base}
    place = next((p for p in g.objects(dataset, DCTERMS.spatial) if str(p).startswith(base + "id/")), None)
    coverage = v["start_date"] if v["start_date"] == v["end_date"] else f"{v['start_date']}/{v['end_date']}"
    data = {
        "@context": "https://schema.org/",
        "@type": "Dataset",
        "@id": str(dataset),
        "name": v["title"],
        "description": v["description"],
        "url": base,
        "identifier": str(dataset),
        "version": v["version"],
        "datePublished": v["first_issued"],
        "dateModified": v["created"],
        "inLanguage": list(LANGUAGES),
        "license": v["licence"],
        "isAccessibleForFree": True,
        "keywords": v["keywords"],
        "creator": publisher,
        "publisher": publisher,
        "temporalCoverage": coverage,
        "spatialCoverage": _place(pub, place, lang) if place else None,
        "isBasedOn": [str(s) for s in g.objects(dataset, URIRef("http://www.w3.org/ns/prov#wasDerivedFrom"))
                      if str(s).startswith("http") and not str(s).startswith(base)],
        "includedInDataCatalog": {"@type": "DataCatalog", "name": v["catalog_title"], "url": base + "dataset"},
        "distribution": [
            {"@type": "DataDownload", "name": f["label"], "contentUrl": base + f"dumps/{f['name']}",
             "encodingFormat": "application/gzip" if f["name"].endswith(".gz") else f["media_type"],
             "contentSize": f"{f['bytes']} B"}
            for f in v["files"]],
    }
    return {k: value for k, value in data.items() if value not in (None, [], "")}


def _place(pub: Publication, place: URIRef, lang: str) -> dict:
    names, geo, address = {}, {}, {}
    rows = pub.store.query(f"""
        SELECT ?name ?lat ?long ?locality ?country WHERE {{
          OPTIONAL {{ <{place}> <https://schema.org/name> ?name }}
          OPTIONAL {{ <{place}> <https://schema.org/geo> [ <https://schema.org/latitude> ?lat ;
                                                            <https://schema.org/longitude> ?long ] }}
          OPTIONAL {{ <{place}> <https://schema.org/address> [ <https://schema.org/addressLocality> ?locality ;
                                                                <https://schema.org/addressCountry> ?country ] }}
        }}""", use_default_graph_as_union=True)
    for row in rows:
        if row["name"] is not None:
            names[(row["name"].language or "").lower()] = row["name"].value
        if row["lat"] is not None:
            geo = {"@type": "GeoCoordinates", "latitude": float(row["lat"].value), "longitude": float(row["long"].value)}
        if row["locality"] is not None:
            address = {"@type": "PostalAddress", "addressLocality": row["locality"].value,
                       "addressCountry": row["country"].value}
    found = pick(names, lang)
    place_json = {"@type": "Place", "@id": str(place), "name": found[0] if found else str(place)}
    if geo:
        place_json["geo"] = geo
    if address:
        place_json["address"] = address
    return place_json


def script_json(data: dict) -> str:
    """JSON for a <script> element: <, > and & escaped so the text can never close the element."""
    text = json.dumps(data, ensure_ascii=False, indent=1)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# ------------------------------------------------------------------------------------------
# Routes
# ------------------------------------------------------------------------------------------
def _page(template: str, pub: Publication, tag: str, **extra) -> Response:
    lang = chosen_language()
    negotiated = language_was_negotiated()
    host = request.host_url.rstrip("/")
    # Absolute URLs for canonical and hreflang links (Google wants them fully qualified); a page
    # asked for in one language (?lang=) is its own canonical, the negotiated one is x-default.
    here = host + request.path
    body = render_template(template, lang=lang, dir=direction(lang), t=words("catalog", lang), v=view(pub, lang),
                           languages=[(code, NATIVE_NAMES[code]) for code in LANGUAGES], rtl=lang in RTL,
                           here=here, canonical=here if negotiated else f"{here}?lang={lang}",
                           explicit=not negotiated, **extra)
    response = Response(body, mimetype="text/html")
    response.content_language = lang
    return _vary(_conditional(response, pub, f"{tag}-{lang}{'-negotiated' if negotiated else ''}"), html=True,
                 accept=False)


@blueprint.get("/")
def landing():
    pub = publication()
    lang = chosen_language()
    return _page("landing.html", pub, "landing", jsonld=script_json(schema_org_dataset(pub, lang)))


@blueprint.get("/dataset")
def dataset():
    fmt = negotiate(DESCRIPTION_OFFERS)
    if fmt is None:
        return _not_acceptable(DESCRIPTION_OFFERS)
    response = _description(fmt)
    response.headers["Content-Location"] = f"/dataset.{fmt}"
    return _vary(response, html=fmt == "html")


@blueprint.get("/dataset.<fmt>")
def dataset_fixed(fmt: str):
    if fmt != "html" and fmt not in RDF_FORMATS:
        return error_response(404, "Not Found", f"No format .{fmt}: use one of .html, "
                              + ", ".join(f".{name}" for name in RDF_FORMATS) + ".")
    return _description(fmt)  # a fixed format: no Vary: Accept (the HTML page still varies by language)


def _description(fmt: str) -> Response:
    pub = publication()
    if fmt == "html":
        lang = chosen_language()
        return _page("dataset.html", pub, "dataset", jsonld=script_json(schema_org_dataset(pub, lang)))
    body = pub.memo(("catalog", "serialized", fmt),
                    lambda: serialize(description_graph(pub), fmt, pub.settings.base))
    response = Response(body, content_type=RDF_FORMATS[fmt][2])
    response.headers["Link"] = f'<{pub.settings.base}dataset>; rel="describes"'
    return _conditional(response, pub, f"dataset-{fmt}")


@blueprint.get("/.well-known/void")
def well_known_void():
    # RFC 8615 / VoID §6: the well-known VoID document is the dataset description.
    response = redirect("/dataset", code=303)
    response.vary.add("Accept")
    return response


@blueprint.get("/dataset/quality")
def quality():
    pub = publication()
    fmt = negotiate(REPORT_OFFERS)
    if fmt is None:
        return _not_acceptable(REPORT_OFFERS)
    body = pub.memo(("catalog", "report", fmt), lambda: serialize(
        dd.bind_prefixes(Graph(), pub.settings.base).parse(pub.release.file("validation-report.ttl"), format="turtle"),
        fmt, pub.settings.base))
    response = Response(body, content_type=RDF_FORMATS[fmt][2])
    response.headers["Link"] = f'<{pub.settings.base}shapes>; rel="profile"'
    return _vary(_conditional(response, pub, f"quality-{fmt}"), html=False)


@blueprint.get("/dataset/<version>")
def release_description(version: str):
    """An earlier release's description, as it was published, while its folder is kept."""
    pub = publication()
    if version == pub.version:
        return redirect("/dataset", code=303)
    folder = pub.settings.releases / version
    if not _VERSION.match(version) or not (folder / DESCRIPTION_FILE).is_file():
        return error_response(404, "Not Found", f"No release {version} is kept on this server; "
                              "the current one is described at /dataset.")
    fmt = negotiate(REPORT_OFFERS)
    if fmt is None:
        return _not_acceptable(REPORT_OFFERS)
    body = pub.memo(("catalog", "release", version, fmt), lambda: serialize(
        dd.bind_prefixes(Graph(), pub.settings.base).parse(folder / DESCRIPTION_FILE, format="turtle"),
        fmt, pub.settings.base))
    response = Response(body, content_type=RDF_FORMATS[fmt][2])
    response.set_etag(f"{version}-{fmt}", weak=True)
    return _vary(response.make_conditional(request), html=False)
