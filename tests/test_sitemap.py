"""/sitemap.xml and /robots.txt: every HTML page, with its language variants, on the host browsed."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import pytest

from tests.test_catalog_helpers import has_sparql_endpoint, LANGUAGES

NS = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9", "x": "http://www.w3.org/1999/xhtml"}



@pytest.fixture(scope="module")
def sitemap(server):
    response = server.get("/sitemap.xml")
    assert response.status_code == 200 and "xml" in response.headers["Content-Type"]
    return ET.fromstring(response.content)


def test_sitemap_lists_every_html_document(sitemap, server, settings, built):
    base = settings.base
    store = built.open_store()
    things = {row["s"].value for row in store.query(f"""
        SELECT DISTINCT ?s {{ GRAPH ?g {{ ?s ?p ?o }} FILTER(isIRI(?s) && STRSTARTS(STR(?s), "{base}id/")) }}""")}
    assert len(things) > 20
    expected = {"/", "/dataset", "/ontology", "/sparql"} | {"/doc/" + iri[len(base + "id/"):] for iri in things}
    locs = [url.findtext("s:loc", namespaces=NS) for url in sitemap.findall("s:url", NS)]
    assert all(loc.startswith(server.url + "/") for loc in locs)
    assert {urlsplit(loc).path for loc in locs} == expected
    assert len(locs) == len(set(locs)) == 7 * (len(expected) - 1) + 1  # the query page once


def test_every_entry_names_all_language_variants_and_the_release_date(sitemap, server, built):
    for url in sitemap.findall("s:url", NS):
        loc = url.findtext("s:loc", namespaces=NS)
        assert url.findtext("s:lastmod", namespaces=NS) == built.manifest["created"]
        links = {link.get("hreflang"): link.get("href") for link in url.findall("x:link", NS)}
        assert all(link.get("rel") == "alternate" for link in url.findall("x:link", NS))
        if urlsplit(loc).path == "/sparql":  # in Arabic and English only, and its query strings disallowed
            assert loc == server.url + "/sparql" and not links
            continue
        plain = loc.split("?")[0]
        assert links == {"x-default": plain, **{lang: f"{plain}?lang={lang}" for lang in LANGUAGES}}
        assert loc in links.values()


def test_sitemap_follows_the_host_being_browsed(server):
    response = server.get("/sitemap.xml", headers={"Host": "data.example.org"})
    root = ET.fromstring(response.content)
    assert all(loc.text.startswith("http://data.example.org/") for loc in root.iter("{%s}loc" % NS["s"]))


def test_landing_and_dataset_pages_in_the_sitemap_answer_html(sitemap, server):
    for path in ("/", "/dataset", "/?lang=ar", "/dataset?lang=zh"):
        response = server.get(path, headers={"Accept": "text/html"})
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html"), path


def test_every_page_in_the_sitemap_answers_html_in_each_language(sitemap, server):
    paths = {urlsplit(url.findtext("s:loc", namespaces=NS)).path for url in sitemap.findall("s:url", NS)}
    if not has_sparql_endpoint(server):  # built by another issue; checked as soon as it exists
        paths.discard("/sparql")
    for path in sorted(paths):
        response = server.get(path, headers={"Accept": "text/html"})
        assert response.status_code == 200, (path, response.status_code)
        assert response.headers["Content-Type"].startswith("text/html"), path
    sample = sorted(p for p in paths if p.startswith("/doc/"))[0]
    for lang in LANGUAGES:
        response = server.get(f"{sample}?lang={lang}", headers={"Accept": "text/html"})
        assert response.status_code == 200 and f'lang="{lang}"' in response.text, (sample, lang)


def test_robots_txt_points_to_the_sitemap(server):
    response = server.get("/robots.txt")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert f"Sitemap: {server.url}/sitemap.xml" in lines
    assert "User-agent: *" in lines


def test_no_url_in_the_sitemap_is_disallowed_by_robots_txt(sitemap, server):
    """RFC 9309 §2.2.2: the longest matching rule wins (Python's robotparser takes the first).
    The query page's ?lang= variants were listed and disallowed (by "Disallow: /sparql?")."""
    rules = []
    for line in server.get("/robots.txt").text.splitlines():
        field, _, value = line.partition(":")
        if field.strip().lower() in ("allow", "disallow") and value.strip():
            rules.append((len(value.strip()), field.strip().lower() == "allow", value.strip()))
    for url in sitemap.findall("s:url", NS):
        parts = urlsplit(url.findtext("s:loc", namespaces=NS))
        target = parts.path + ("?" + parts.query if parts.query else "")
        matching = sorted((length, allow) for length, allow, prefix in rules if target.startswith(prefix))
        assert not matching or matching[-1][1], target
