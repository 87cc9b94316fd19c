"""``lodpub export-static DIR``: the whole Linked Data interface as files, for any static host.

Every response is rendered by the Flask app itself (``create_app`` and its test client), so
there is one implementation of every representation; its bytes are kept exactly (and its gzip
body, when the app has one), with the headers that matter recorded per response. What is
exported is enumerated from the data: the things (``documents.things``), the named graphs of
the release manifest, the ontology and the shapes, the catalogue, the dumps of the manifest,
the static assets, and every page the sitemap lists is checked to be there.

Layout of DIR:

| path | what |
|---|---|
| ``site/`` | the bodies (``doc/meeting/x.ttl``, ``doc/meeting/x.lang-en.html``, ``….gz`` …) |
| ``export.json`` | per response: the request that made it, its file, status and headers |
| ``nginx/`` | generated rules for nginx (server/static_nginx.py): ``http.conf``, ``server.conf`` |

A response is identified by a key ``{mode}{file}``: ``f`` for a fixed URL (``/doc/x.ttl``),
``n`` for the same body reached by content negotiation (``/doc/x`` with ``Accept``), whose
headers differ (``Vary: Accept``, ``Content-Location``).
"""
from __future__ import annotations

import gzip
import json
import os
import re
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

from .config import Settings

#: Headers nginx computes itself (or that are per request), never replayed.
OWN_HEADERS = {"date", "content-length", "etag", "last-modified", "content-encoding", "accept-ranges", "server",
               "connection", "x-request-id", "transfer-encoding", "set-cookie", "expires"}
JSONLD_NS = "http://www.w3.org/ns/json-ld#"
#: The request path whose 404 is the template of every "nothing is published as <IRI>" answer.
MISSING_SLUG = "lodpub-static-missing"
SITE = "site"
#: Routes whose 404 names the variable part of the path: (name, route, whether the app writes it
#: as a Python repr). Rendered with MISSING_SLUG there; the rules put the path's part back.
NOT_FOUND_FAMILIES = (
    ("dataset_format", "/dataset.{}", False),
    ("release", "/dataset/{}", False),
    ("context_version", "/context/{}.jsonld", True),
    ("dump", "/dumps/{}", True),
)


@dataclass
class Recorded:
    key: str
    file: str
    path: str               # the request that made it
    query: str
    request_headers: dict[str, str]
    status: int
    headers: dict[str, str]


@dataclass
class Export:
    """What was written, as `export.json` describes it."""
    root: Path
    settings: Settings
    site_url: str
    sparql_url: str | None
    version: str
    created: str
    responses: dict[str, Recorded] = field(default_factory=dict)
    files: dict[str, dict] = field(default_factory=dict)
    documents: list[str] = field(default_factory=list)   # public paths: /doc/…, /ontology, /shapes
    exact: dict[str, str] = field(default_factory=dict)  # public path → response key (no negotiation)
    redirects: dict[str, dict] = field(default_factory=dict)
    special: dict[str, dict] = field(default_factory=dict)  # error templates, preflight, 303 headers

    def manifest(self) -> dict:
        return {
            "version": self.version, "created": self.created, "base": self.settings.base,
            "site_url": self.site_url, "sparql_url": self.sparql_url,
            "documents": self.documents, "exact": self.exact, "redirects": self.redirects,
            "special": self.special, "files": self.files,
            "responses": {k: {"file": r.file, "request": {"path": r.path, "query": r.query,
                                                           "headers": r.request_headers},
                              "status": r.status, "headers": r.headers} for k, r in self.responses.items()},
        }


def export_static(settings: Settings, out: Path, site_url: str = "http://localhost",
                  sparql_url: str | None = None) -> Export:
    """Render everything into `out` (emptied first if it holds an earlier export)."""
    from .app import create_app
    from . import static_nginx
    settings = replace(settings, access_log=False)  # the export's thousands of requests are not traffic
    app = create_app(settings)
    pub = app.extensions["lodpub.publisher"].current()
    out = Path(out)
    if (out / "export.json").is_file():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    export = Export(out, settings, site_url.rstrip("/"), sparql_url, pub.version, pub.release.manifest["created"])
    renderer = _Renderer(app.test_client(), export)
    _export_documents(renderer, pub)
    _export_catalog(renderer, pub)
    _export_specials(renderer, pub)
    _check_sitemap(export)
    _set_mtimes(out / SITE, pub.created.timestamp())
    (out / "export.json").write_text(json.dumps(export.manifest(), indent=1, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    static_nginx.write(export.manifest(), out)
    return export


def _set_mtimes(site: Path, created: float) -> None:
    """Each file a distinct time in the seconds before the release date, oldest first: nginx's
    ETag (its mtime and size in hex) then differs for every representation, even two of the same
    size, and ``if_modified_since before`` answers 304 to the release date the rules send as
    Last-Modified."""
    files = sorted(p for p in site.rglob("*") if p.is_file())
    for age, path in enumerate(reversed(files), start=1):
        os.utime(path, (created - age, created - age))


# --- rendering ----------------------------------------------------------------------------

class _Renderer:
    def __init__(self, client, export: Export):
        self.client, self.export = client, export

    def get(self, path: str, query: str = "", headers: dict | None = None, method: str = "GET"):
        return self.client.open(path, method=method, query_string=query, headers=headers or {},
                                base_url=self.export.site_url, buffered=True)

    def record(self, key_mode: str, file: str, path: str, query: str = "", headers: dict | None = None,
               status: int = 200, method: str = "GET") -> Recorded:
        """GET `path`, keep its body in `file` (and the gzip body beside it) under key mode+file."""
        headers = dict(headers or {})
        response = self.get(path, query, {**headers, "Accept-Encoding": "gzip"}, method=method)
        assert response.status_code == status, (path, query, headers, response.status_code, response.data[:300])
        body = response.get_data()
        zipped = None
        if response.headers.get("Content-Encoding") == "gzip":
            zipped, body = body, gzip.decompress(body)
        self._write(file, body, zipped)
        kept = {name: value for name, value in response.headers.items() if name.lower() not in OWN_HEADERS}
        if "Vary" in kept:  # nginx says Vary: Accept-Encoding itself when it has the .gz file
            vary = [v.strip() for v in kept.pop("Vary").split(",") if v.strip().lower() != "accept-encoding"]
            if vary:
                kept["Vary"] = ", ".join(vary)
        recorded = Recorded(key_mode + file, file, path, query, headers, response.status_code, kept)
        self.export.responses[recorded.key] = recorded
        return recorded

    def _write(self, file: str, body: bytes, zipped: bytes | None) -> None:
        known = self.export.files.get(file)
        if known is not None:
            assert known["bytes"] == len(body) and (self.export.root / SITE / file[1:]).read_bytes() == body, \
                f"two responses for {file} differ"
            return
        target = self.export.root / SITE / file[1:]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        if zipped is not None:
            Path(str(target) + ".gz").write_bytes(zipped)
        self.export.files[file] = {"bytes": len(body), "gzip": zipped is not None}


def html_file(path: str, lang: str, explicit: bool) -> str:
    """The file of an HTML page in one language, chosen by ?lang= (explicit) or Accept-Language."""
    return f"{path}.{'lang' if explicit else 'accept'}-{lang}.html"


def jsonld_file(path: str, profile: str) -> str:
    from .negotiation import DEFAULT_PROFILE
    return f"{path}.jsonld" if profile == DEFAULT_PROFILE else f"{path}.{profile}.jsonld"


def _export_documents(r: _Renderer, pub) -> None:
    """Every document (things, named graphs, ontology, shapes) in every format and variant,
    by its fixed-format URL (mode f) and by negotiation (mode n)."""
    from . import documents
    from .i18n import LANGUAGES
    from .negotiation import DEFAULT_PROFILE, FORMATS, PROFILES
    base = pub.settings.base
    paths = ["/doc/" + iri[len(base) + 3:] for iri in sorted(set(documents.things(pub.store, base))
                                                            | set(_only_linked(pub.store, base)))]
    paths += ["/doc/" + iri[len(base):] for iri in sorted(pub.release.manifest["graphs"])
              if iri.startswith(base + "graph/")]
    paths += ["/ontology", "/shapes"]
    r.export.documents = paths
    for path in paths:
        for fmt in FORMATS:
            if fmt.name == "html":
                for lang in LANGUAGES:
                    r.record("f", html_file(path, lang, True), path + ".html", f"lang={lang}")
                    r.record("n", html_file(path, lang, True), path, f"lang={lang}", {"Accept": "text/html"})
                    r.record("f", html_file(path, lang, False), path + ".html", "", {"Accept-Language": lang})
                    r.record("n", html_file(path, lang, False), path, "",
                             {"Accept": "text/html", "Accept-Language": lang})
            elif fmt.name == "jsonld":
                for profile in PROFILES:
                    query = "" if profile == DEFAULT_PROFILE else f"profile={profile}"
                    accept = f'{fmt.media_type};profile="{JSONLD_NS}{profile}"'
                    r.record("f", jsonld_file(path, profile), path + ".jsonld", query)
                    r.record("n", jsonld_file(path, profile), path, "", {"Accept": accept})
            else:
                r.record("f", f"{path}.{fmt.name}", f"{path}.{fmt.name}")
                r.record("n", f"{path}.{fmt.name}", path, "", {"Accept": fmt.media_type})


def _only_linked(store, base: str) -> list[str]:
    """IRIs under {base}id/ that the data links to without describing them: the app answers for
    them too (their document holds the links pointing to them)."""
    return [row["o"].value for row in store.query(f"""
        SELECT DISTINCT ?o WHERE {{ ?s ?p ?o FILTER(isIRI(?o) && STRSTARTS(STR(?o), "{base}id/"))
                                    FILTER NOT EXISTS {{ ?o ?q ?v }} }}""", use_default_graph_as_union=True)]


def _export_catalog(r: _Renderer, pub) -> None:
    """The landing page, the dataset description, the dumps, sitemap, robots, OpenAPI, assets."""
    from . import catalog, openapi
    from .i18n import LANGUAGES
    for lang in LANGUAGES:
        for explicit in (True, False):
            query, headers = (f"lang={lang}", {}) if explicit else ("", {"Accept-Language": lang})
            r.record("f", html_file("/index", lang, explicit), "/", query, headers)
            r.record("n", html_file("/dataset", lang, explicit), "/dataset", query,
                     {**headers, "Accept": "text/html"})
            r.record("f", html_file("/dataset.html", lang, explicit), "/dataset.html", query, headers)
    for fmt, (media, _, _) in catalog.RDF_FORMATS.items():
        r.record("n", f"/dataset.{fmt}", "/dataset", "", {"Accept": media})
        r.export.exact[f"/dataset.{fmt}"] = r.record("f", f"/dataset.{fmt}", f"/dataset.{fmt}").key
    for media, fmt in dict((m, f) for m, f in catalog.REPORT_OFFERS).items():
        r.record("n", f"/dataset/quality.{fmt}", "/dataset/quality", "", {"Accept": media})
    for number, media in enumerate(openapi.OFFERS):
        r.record("n", f"/openapi.{number}.json", "/openapi.json", "", {"Accept": media})
    exact = {"/context.jsonld": "/context.jsonld", "/robots.txt": "/robots.txt", "/sitemap.xml": "/sitemap.xml",
             "/dumps/": "/dumps/index.json", "/dumps/SHA256SUMS": "/dumps/SHA256SUMS"}
    from .jsonld import CONTEXT_VERSION
    exact[f"/context/{CONTEXT_VERSION}.jsonld"] = f"/context/{CONTEXT_VERSION}.jsonld"
    exact["/dumps"] = "/dumps/index.json"
    for name in sorted(pub.release.manifest["files"]):
        exact[f"/dumps/{name}"] = f"/dumps/{name}"
    static = Path(r.client.application.static_folder)
    for asset in sorted(p for p in static.rglob("*") if p.is_file()):
        exact[f"/static/{asset.relative_to(static).as_posix()}"] = f"/static/{asset.relative_to(static).as_posix()}"
    for path, file in exact.items():
        r.export.exact[path] = r.record("f", file, path).key
    from .linked_data import ontology_versions
    versions = sorted("/" + iri[len(pub.settings.base):] for iri in ontology_versions(pub))
    for path in ("/.well-known/void", f"/dataset/{pub.version}", *versions):
        response = r.get(path)
        r.export.redirects[path] = {"status": response.status_code, "headers": _kept(response)}


def _export_specials(r: _Renderer, pub) -> None:
    """What the nginx rules answer themselves, as the app answers it: the 303 of a thing, the
    CORS preflight, 404 (with the IRI asked for) and 406 (problem JSON or HTML)."""
    from .negotiation import BY_NAME
    some = r.export.documents[0]
    see_other = r.get("/id/" + some[len("/doc/"):])
    r.export.special["see_other"] = {"status": see_other.status_code, "headers": _kept(see_other)}
    preflight = r.get(some, method="OPTIONS", headers={"Access-Control-Request-Method": "GET"})
    r.export.special["preflight"] = {"status": preflight.status_code, "headers": _kept(preflight)}
    missing = pub.settings.base + "id/" + MISSING_SLUG
    for name, path, headers, status, method in [
        ("method_not_allowed.html", some, {"Accept": "text/html"}, 405, "POST"),
        ("method_not_allowed.json", some, {"Accept": "application/json"}, 405, "POST"),
    ]:
        _record_error(r, name, path, headers, status, method)
    for name, path, headers, status in [
        ("not_found_iri.html", "/id/" + MISSING_SLUG, {"Accept": "text/html"}, 404),
        ("not_found_iri.json", "/id/" + MISSING_SLUG, {"Accept": "application/json"}, 404),
        ("not_found.html", "/" + MISSING_SLUG, {"Accept": "text/html"}, 404),
        ("not_found.json", "/" + MISSING_SLUG, {"Accept": "application/json"}, 404),
        ("not_acceptable_document.json", some, {"Accept": "image/png"}, 406),
        ("not_acceptable_dataset.json", "/dataset", {"Accept": "image/png"}, 406),
        ("not_acceptable_quality.json", "/dataset/quality", {"Accept": "image/png"}, 406),
        ("not_acceptable_quality.html", "/dataset/quality", {"Accept": "text/html"}, 406),
        ("not_acceptable_openapi.json", "/openapi.json", {"Accept": "image/png"}, 406),
        ("not_acceptable_openapi.html", "/openapi.json", {"Accept": "text/html"}, 406),
    ]:
        _record_error(r, name, path, headers, status)
    r.export.special["missing_iri"] = missing
    r.export.special["missing_slug"] = MISSING_SLUG
    families = []
    for family, route, quoted in NOT_FOUND_FAMILIES:
        for kind, accept in (("html", "text/html"), ("json", "application/json")):
            _record_error(r, f"not_found_{family}.{kind}", route.replace("{}", MISSING_SLUG), {"Accept": accept}, 404)
        families.append({"name": family, "pattern": "^" + re.escape(route).replace(r"\{\}", "([^/]+)") + "$",
                         "repr": quoted})
    r.export.special["not_found_families"] = families
    r.export.special["languages"] = _languages()
    r.export.special["formats"] = [{"name": f.name, "media_type": f.media_type, "aliases": list(f.aliases)}
                                   for f in BY_NAME.values()]
    from . import catalog, linked_data, negotiation, openapi
    r.export.special["patterns"] = {"thing": linked_data.THING_PATH.pattern, "graph": linked_data.GRAPH_PATH.pattern,
                                    "extension": linked_data.EXTENSION.pattern}
    r.export.special["profiles"] = {"names": list(negotiation.PROFILES), "default": negotiation.DEFAULT_PROFILE,
                                    "namespace": negotiation.JSONLD_NS}
    r.export.special["offers"] = {"dataset": catalog.DESCRIPTION_OFFERS, "quality": catalog.REPORT_OFFERS,
                                  "openapi": list(openapi.OFFERS), "error": ["text/html", "application/json",
                                                                              "text/plain"]}


def _record_error(r: _Renderer, name: str, path: str, headers: dict, status: int, method: str = "GET") -> None:
    """An error answer as the app gives it. An HTML error page is in the reader's language, so
    it is kept once per language, as ?lang= or Accept-Language chose it (njs chooses the same)."""
    from .i18n import LANGUAGES

    def spec(file: str, query: str = "", language: dict | None = None) -> dict:
        recorded = r.record("e", file, path, query, {**headers, **(language or {})}, status=status, method=method)
        return {"key": recorded.key, "file": recorded.file, "status": status, "headers": recorded.headers}

    r.export.special[name] = spec(f"/_errors/{name}")
    if name.endswith(".html"):
        stem = name[:-len(".html")]
        r.export.special[name]["languages"] = {
            **{f"lang-{lang}": spec(f"/_errors/{stem}.lang-{lang}.html", f"lang={lang}") for lang in LANGUAGES},
            **{f"accept-{lang}": spec(f"/_errors/{stem}.accept-{lang}.html", language={"Accept-Language": lang})
               for lang in LANGUAGES}}


def _languages() -> dict:
    from .i18n import FALLBACK, LANGUAGES
    return {"all": list(LANGUAGES), "default": FALLBACK[0]}


def _kept(response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.lower() not in OWN_HEADERS}


def _check_sitemap(export: Export) -> None:
    """Every page the sitemap lists is exported (the sitemap is the app's own list of pages)."""
    tree = ElementTree.parse(export.root / SITE / "sitemap.xml")
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    pages = {urlsplit(loc.text).path for loc in tree.getroot().iterfind("s:url/s:loc", ns)}
    exported = set(export.documents) | {"/", "/dataset"}
    missing = sorted(p for p in pages - exported if p != "/sparql")
    assert not missing, f"pages in the sitemap but not exported: {missing[:5]}"
