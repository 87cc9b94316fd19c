"""``/sitemap.xml`` and ``/robots.txt``, on the host being browsed.

The sitemap lists every HTML document: the landing page, ``/dataset``, ``/ontology``,
``/sparql`` and ``/doc/{kind}/{slug}`` for every thing under ``{base}id/`` in the store. Each
page but the query page is listed in its seven variants (no ``lang``, then ``?lang=`` for the
six UN languages), and every variant names all of them as ``xhtml:link rel="alternate"
hreflang`` (x-default: the URL without ``lang``), as Google's sitemap rules for localised pages
ask. The query page is listed once: robots.txt keeps crawlers off ``/sparql?`` (queries), and a
URL both listed and disallowed is an error in a search console. ``lastmod`` is the release date.
"""
from __future__ import annotations

import hashlib
from xml.sax.saxutils import escape, quoteattr

from flask import Blueprint, Response, request

from .app import publication
from .i18n import LANGUAGES

blueprint = Blueprint("sitemap", __name__)

STATIC_PAGES = ("", "dataset", "ontology", "sparql")
#: pages listed without language variants (robots.txt disallows their query strings)
SINGLE_PAGES = ("sparql",)


def page_paths(pub) -> list[str]:
    """Paths (without the leading /) of every HTML page of the release."""
    id_space = pub.settings.base + "id/"
    things = sorted(row["s"].value for row in pub.store.query(f"""
        SELECT DISTINCT ?s WHERE {{ ?s ?p ?o FILTER(isIRI(?s) && STRSTARTS(STR(?s), "{id_space}")) }}""",
        use_default_graph_as_union=True))
    return list(STATIC_PAGES) + ["doc/" + iri[len(id_space):] for iri in things]


def _variants(url: str) -> list[tuple[str, str]]:
    """(hreflang, URL) of the language variants of a page, x-default first."""
    return [("x-default", url)] + [(lang, f"{url}?lang={lang}") for lang in LANGUAGES]


def render_sitemap(host: str, paths: list[str], lastmod: str) -> str:
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
           'xmlns:xhtml="http://www.w3.org/1999/xhtml">']
    for path in paths:
        single = path in SINGLE_PAGES
        variants = [("", host + "/" + path)] if single else _variants(host + "/" + path)
        links = "" if single else "".join(
            f'\n    <xhtml:link rel="alternate" hreflang="{lang}" href={quoteattr(href)}/>' for lang, href in variants)
        for _, url in variants:
            out.append(f"  <url>\n    <loc>{escape(url)}</loc>\n    <lastmod>{lastmod}</lastmod>{links}\n  </url>")
    out.append("</urlset>\n")
    return "\n".join(out)


def _host() -> str:
    return request.host_url.rstrip("/")


@blueprint.get("/sitemap.xml")
def sitemap():
    pub = publication()
    host = _host()
    paths = pub.memo(("sitemap", "paths"), lambda: page_paths(pub))
    body = render_sitemap(host, paths, pub.release.manifest["created"])
    response = Response(body, content_type="application/xml; charset=utf-8")
    response.set_etag(hashlib.sha256(body.encode()).hexdigest()[:32])
    response.last_modified = pub.created
    return response.make_conditional(request)


@blueprint.get("/robots.txt")
def robots():
    body = ("User-agent: *\n"
            "Allow: /\n"
            "# SPARQL queries are for programs, not crawlers (the query page /sparql stays open).\n"
            "Disallow: /sparql?\n"
            f"Sitemap: {_host()}/sitemap.xml\n")
    return Response(body, content_type="text/plain; charset=utf-8")
