"""The landing page `/`: what the dataset is, its meetings and commissions in the chosen
language, where to query and download, and schema.org Dataset JSON-LD for Google Dataset Search."""
from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser

import pytest

from server.i18n import words
from tests.test_catalog_helpers import JSON_LD_BLOCK, LANGUAGES



class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[tuple[dict, str]] = []
        self._open: dict | None = None
        self._text: list[str] = []
        self.root: dict = {}

    def handle_starttag(self, tag, attrs):
        if tag == "html":
            self.root = dict(attrs)
        if tag == "a":
            self._open, self._text = dict(attrs), []

    def handle_data(self, data):
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "a" and self._open is not None:
            self.links.append((self._open, "".join(self._text).strip()))
            self._open = None


def page(server, lang: str | None = None, **headers):
    response = server.get("/" + (f"?lang={lang}" if lang else ""), headers=headers)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    parser = Links()
    parser.feed(response.text)
    return response, parser


def dataset_jsonld(text: str) -> dict:
    blocks = [json.loads(b) for b in JSON_LD_BLOCK.findall(text)]
    found = [b for b in blocks if b.get("@type") == "Dataset"]
    assert len(found) == 1, blocks
    return found[0]


@pytest.fixture(scope="module")
def store(built):
    return built.open_store()


def _names(store, query: str) -> dict[str, dict[str, str]]:
    names: dict[str, dict[str, str]] = {}
    for row in store.query(query):
        names.setdefault(row["s"].value, {})[row["name"].language] = row["name"].value
    return names


@pytest.mark.parametrize("lang", LANGUAGES)
def test_schema_org_dataset_has_every_required_and_recommended_property(server, settings, built, lang):
    response, _ = page(server, lang)
    data = dataset_jsonld(response.text)
    assert data["@context"].rstrip("/") in ("https://schema.org", "http://schema.org")
    # required
    assert data["name"]
    assert 50 <= len(data["description"]) <= 5000
    # recommended (Google Dataset Search)
    for key in ("creator", "distribution", "license", "keywords", "identifier", "includedInDataCatalog",
                "temporalCoverage", "spatialCoverage", "version", "url", "isAccessibleForFree"):
        assert data.get(key) not in (None, "", []), key
    assert data["creator"]["@type"] in ("Organization", "Person") and data["creator"]["name"]
    assert data["license"] == settings.license
    assert data["version"] == built.version
    assert data["isAccessibleForFree"] is True
    assert data["includedInDataCatalog"]["@type"] == "DataCatalog"
    assert data["spatialCoverage"]["@type"] == "Place" and data["spatialCoverage"]["name"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}(/\d{4}-\d{2}-\d{2})?", data["temporalCoverage"])
    downloads = data["distribution"]
    assert {d["@type"] for d in downloads} == {"DataDownload"}
    assert {d["contentUrl"].rsplit("/", 1)[1] for d in downloads} == {
        "dataset.nq.gz", "dataset.trig", "dataset.ttl", "dataset.jsonld"}
    for d in downloads:
        assert d["encodingFormat"] and d["contentUrl"].startswith(settings.base + "dumps/")
        assert server.get(d["contentUrl"][len(settings.base) - 1:]).status_code == 200
    assert response.headers["Content-Language"] == lang


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_page_says_what_the_dataset_is_once(server, lang):
    """The catalogue's description of the dataset (what portals harvest, disclaimer included) is
    the page's introduction, in the page's language, and no sentence of it is said twice."""
    response, _ = page(server, lang)
    main = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.text.split("<main", 1)[1])))
    description = dataset_jsonld(response.text)["description"]
    assert description in main
    sentences = [s.strip() for s in re.split(r"(?<=[.。])\s*", main) if len(s.strip()) > 20]
    assert len(sentences) == len(set(sentences)), [s for s in sentences if sentences.count(s) > 1]


def test_json_ld_is_escaped_inside_the_script_element(server):
    response, _ = page(server, "en")
    for block in JSON_LD_BLOCK.findall(response.text):
        assert "<" not in block and ">" not in block and "&" not in block.replace("\\u0026", "")
        json.loads(block)


def test_meetings_and_commissions_are_listed_in_the_chosen_language_linking_to_id(server, settings, store):
    base = settings.base
    commissions = _names(store, f"""SELECT ?s ?name {{ GRAPH ?g {{ ?s a <{base}ontology#RegionalCommission> }}
        GRAPH ?h {{ ?s <https://schema.org/name> ?name }} }}""")
    meetings = _names(store, f"""SELECT ?s ?name {{ GRAPH ?g {{ ?s a <https://schema.org/Event> }}
        GRAPH ?h {{ ?s <https://schema.org/name> ?name }} FILTER(STRSTARTS(STR(?s), "{base}id/meeting/")) }}""")
    assert len(commissions) == 5 and meetings
    for lang in LANGUAGES:
        _, parsed = page(server, lang)
        links = {a["href"]: text for a, text in parsed.links}
        for iri, names in {**commissions, **meetings}.items():
            href = "/" + iri[len(base):] + f"?lang={lang}"  # the language chosen is kept
            assert href in links, (lang, href)
            wanted = names.get(lang) or names.get("ar") or names.get("en")
            assert html.unescape(links[href]) == wanted, (lang, href)


def test_page_points_to_sparql_description_and_dumps_in_the_chosen_language(server):
    for lang in LANGUAGES:
        strings = words("catalog", lang)
        response, parsed = page(server, lang)
        hrefs = {a["href"] for a, _ in parsed.links}
        assert {"/sparql", f"/dataset?lang={lang}", "/dumps/dataset.nq.gz", "/dumps/SHA256SUMS"} <= hrefs
        assert {f"/?lang={code}" for code in LANGUAGES} <= hrefs, "language switcher"
        texts = {text for _, text in parsed.links}
        assert strings["sparql"] in texts and strings["description"] in texts
        assert parsed.root["lang"] == lang
        assert parsed.root.get("dir") == ("rtl" if lang == "ar" else "ltr")


def _chrome(text: str) -> tuple[str, tuple[str, ...]]:
    """The page's language and the texts of the site's links around its content: the skip
    link, the header's links (not the language switcher's) and the footer's."""
    parser = Links()
    parts = re.findall(r'<a class="skip".*?</a>|<header class="site">.*?</header>|<footer class="site">.*?</footer>',
                       text, re.S)
    parser.feed("".join(parts))
    return _page_language(text), tuple(label for attrs, label in parser.links if "hreflang" not in attrs)


def _page_language(text: str) -> str:
    parser = Links()
    parser.feed(text[:text.index("<head>")])
    return parser.root["lang"]


def test_every_page_has_the_sites_header_and_footer_in_its_own_language(server):
    """The skip link, the header and the footer of every kind of page, in each language a page
    is offered in: never empty (the query page's were), the same on every page of a language."""
    by_language: dict[str, set[tuple[str, ...]]] = {}
    for path in ("/", "/dataset", "/sparql", "/doc/organization/escwa", "/search?q=urban"):
        for lang in LANGUAGES:
            response = server.get(path, params={"lang": lang}, headers={"Accept": "text/html"})
            assert response.status_code == 200, (path, lang)
            page_language, labels = _chrome(response.text)
            assert len(labels) >= 6 and all(labels), (path, lang, labels)
            by_language.setdefault(page_language, set()).add(labels)
    assert set(by_language) == set(LANGUAGES)
    assert all(len(variants) == 1 for variants in by_language.values()), by_language
    assert len({variants.pop() for variants in by_language.values()}) == len(LANGUAGES)


def _page_links(text: str) -> list[str]:
    """The links to the site's HTML pages (not the language switcher's, nor files or /sparql)."""
    parser = Links()
    parser.feed(text)
    pages = re.compile(r"/(\?.*)?$|/(id|doc)/[^.?]+(\?.*)?$|/(dataset|ontology|shapes)(\?.*)?$")
    return [attrs["href"] for attrs, _ in parser.links if "hreflang" not in attrs and pages.match(attrs.get("href", ""))]


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_a_language_chosen_with_lang_is_kept_by_the_links(server, lang):
    """On /?lang=en the meetings, commissions, header and footer links led to pages in the
    language of Accept-Language (Arabic by default) instead of English."""
    chosen = _page_links(server.get(f"/?lang={lang}", headers={"Accept": "text/html"}).text)
    assert len(chosen) >= 10 and all(href.endswith(f"?lang={lang}") for href in chosen), chosen
    negotiated = _page_links(server.get("/", headers={"Accept": "text/html", "Accept-Language": lang}).text)
    assert len(negotiated) == len(chosen) and not any("lang=" in href for href in negotiated), negotiated


def test_language_negotiation_and_revalidation(server):
    response, parsed = page(server, **{"Accept-Language": "fr-CH, fr;q=0.9, en;q=0.5"})
    assert parsed.root["lang"] == "fr" and "Accept-Language" in response.headers["Vary"]
    again = server.get("/", headers={"Accept-Language": "fr", "If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    other = server.get("/", headers={"Accept-Language": "ru", "If-None-Match": response.headers["ETag"]})
    assert other.status_code == 200, "another language is another representation"


def test_dataset_description_page_for_people(server, built):
    response = server.get("/dataset?lang=en", headers={"Accept": "text/html"})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    for name, described in built.manifest["files"].items():
        if name.startswith("dataset."):
            assert described["sha256"] in response.text
    assert dataset_jsonld(response.text)["version"] == built.version


class HeadLinks(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "link":
            self.links.append(dict(attrs))


@pytest.mark.parametrize("path", ["/", "/dataset"])
def test_canonical_and_hreflang_links_are_absolute_and_complete(server, path):
    for query, canonical in [("", server.url + path), ("?lang=ru", f"{server.url}{path}?lang=ru")]:
        response = server.get(path + query, headers={"Accept": "text/html"})
        parser = HeadLinks()
        parser.feed(response.text)
        alternates = {link["hreflang"]: link["href"] for link in parser.links
                      if link.get("rel") == "alternate" and "hreflang" in link}
        assert alternates == {"x-default": server.url + path,
                              **{lang: f"{server.url}{path}?lang={lang}" for lang in LANGUAGES}}
        assert [link["href"] for link in parser.links if link.get("rel") == "canonical"] == [canonical]


def test_a_portal_of_many_meetings_lists_the_most_recent_and_says_how_many(tmp_path):
    """With more meetings than the page shows (the synthetic corpus of bench/generate.py, 24
    meetings), the landing page lists the LANDING_MEETINGS most recent by start date, newest
    first, and says how many there are in all, in the page's language."""
    import sys
    from datetime import date

    from server.catalog import LANDING_MEETINGS
    from server.config import Settings
    from server.release import current_release
    from tests.conftest import PROJECT_ROOT, run_cli
    sys.path.insert(0, str(PROJECT_ROOT))
    from bench import generate

    root = generate.generate(tmp_path / "corpus", meetings=24, seed=5)
    result = run_cli("build", "--root", str(root), "--releases", str(tmp_path / "releases"), timeout=300)
    assert result.returncode == 0, result.stderr[-4000:] + result.stdout[-4000:]
    settings = Settings(root=root, releases=tmp_path / "releases")
    store = current_release(settings.releases).open_store()
    starts = {row["s"].value: date.fromisoformat(row["start"].value[:10]) for row in store.query(
        "SELECT ?s ?start WHERE { ?s a <https://schema.org/Event> ; <https://schema.org/startDate> ?start }",
        use_default_graph_as_union=True) if "/id/meeting/" in row["s"].value}
    del store
    assert len(starts) > LANDING_MEETINGS

    from server.app import create_app
    client = create_app(settings).test_client()
    for lang in ("en", "ar"):
        response = client.get(f"/?lang={lang}")
        assert response.status_code == 200
        parser = Links()
        parser.feed(response.get_data(as_text=True))
        listed = [a["href"].split("?")[0] for a, _ in parser.links if a.get("href", "").startswith("/id/meeting/")]
        dates = [starts[settings.base + href[1:]] for href in listed]
        assert len(listed) == LANDING_MEETINGS == len(set(listed))
        assert dates == sorted(dates, reverse=True)  # newest first
        unlisted = [start for iri, start in starts.items() if "/" + iri[len(settings.base):] not in listed]
        assert unlisted and max(unlisted) <= min(dates)  # and no newer one left out
        strings = words("catalog", lang)
        assert html.escape(strings["all_meetings"].replace("{n}", str(len(starts))), quote=False) in response.get_data(as_text=True)
