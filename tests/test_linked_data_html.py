"""HTML pages for people and search engines: language, direction, links, schema.org, escaping.

The tests on `server` run against the app under gunicorn and against its static export under
nginx (tests/static_site.py). The hostile-label test builds and serves its own copy of the
project: it is about what the app renders, which the export only copies.
"""
from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser

import pytest
import requests

from server.config import PROJECT_ROOT, Settings
from server.i18n import words
from tests.conftest import LiveServer, run_cli
from tests.static_site import static_site  # noqa: F401 - a fixture, requested by `server`
from tests.test_linked_data_helpers import BASE, MEETING, RDF_TYPES, Html

LANGUAGES = ("ar", "zh", "en", "fr", "ru", "es")


@pytest.fixture(scope="module", params=["dynamic", "static"])
def server(request, server):
    """The dynamic server (conftest's), then the static export of the same release under nginx."""
    return server if request.param == "dynamic" else request.getfixturevalue("static_site")


def _page(server, path, **headers):
    response = server.get(path, headers={"Accept": "text/html", **headers})
    assert response.status_code == 200, (path, response.status_code)
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    return response, Html(response.text)


def test_language_from_query_then_accept_language_then_arabic(server):
    response, page = _page(server, f"/doc/{MEETING}?lang=en", **{"Accept-Language": "fr"})
    assert page.find("html")[0] == {"lang": "en", "dir": "ltr"}
    assert response.headers["Content-Language"] == "en"
    assert "Accept-Language" not in response.headers["Vary"]  # ?lang= decided, not the header
    assert page.text("h1").startswith("Localization and implementation of the New Urban Agenda")

    response, page = _page(server, f"/doc/{MEETING}", **{"Accept-Language": "fr-CH, fr;q=0.9, en;q=0.5"})
    assert page.find("html")[0]["lang"] == "fr"
    assert "Accept-Language" in response.headers["Vary"] and "Accept" in response.headers["Vary"]
    assert page.text("h1").startswith("Localisation et mise en œuvre du Nouveau Programme pour les villes")

    response, page = _page(server, f"/doc/{MEETING}", **{"Accept-Language": "de"})
    assert page.find("html")[0] == {"lang": "ar", "dir": "rtl"}
    assert page.text("h1").startswith("توطين الخطة الحضرية الجديدة وتنفيذها")


@pytest.mark.parametrize("asked, lang", [("EN", "en"), ("en-GB", "en"), ("zh_Hant", "zh"), ("Fr-CA", "fr"), ("ara", "ru")])
def test_lang_is_read_as_a_language_tag(server, asked, lang):
    """?lang= is case-insensitive and its region or script is not ours to tell apart (RFC 5646);
    a language we do not have falls back to Accept-Language, then Arabic."""
    response, page = _page(server, f"/doc/{MEETING}?lang={asked}", **{"Accept-Language": "ru"})
    assert page.find("html")[0]["lang"] == lang and response.headers["Content-Language"] == lang
    assert ("Accept-Language" in response.headers["Vary"]) == (asked == "ara")


def test_text_missing_in_the_language_falls_back_to_arabic_then_english(server):
    # the outcome points have Arabic (source) and English (translation) only
    _, page = _page(server, "/doc/outcome-point/nua-regional-commissions-2022-1?lang=ru")
    texts = [a for a in page.find("p") if a.get("lang")]
    assert texts and texts[0]["lang"] == "ar" and texts[0]["dir"] == "rtl"


def test_language_switcher(server):
    _, page = _page(server, f"/doc/{MEETING}?lang=ar")
    links = {a["hreflang"]: a for a in page.find("a") if a.get("hreflang")}
    assert set(links) == set(LANGUAGES)
    assert links["en"]["href"] == "?lang=en" and links["ar"].get("aria-current") == "true"
    natives = page.text("nav")
    for name in ("العربية", "中文", "English", "Français", "Русский", "Español"):
        assert name in natives


def test_head_links_for_search_engines(server):
    _, page = _page(server, f"/doc/{MEETING}?lang=en")
    canonical = BASE + "doc/" + MEETING
    assert page.find("link", rel="canonical")[0]["href"] == canonical + "?lang=en"
    hreflang = {a["hreflang"]: a["href"] for a in page.find("link", rel="alternate") if a.get("hreflang")}
    assert hreflang == {**{code: f"{canonical}?lang={code}" for code in LANGUAGES}, "x-default": canonical}
    types = {a["type"]: a["href"] for a in page.find("link", rel="alternate") if a.get("type")}
    assert types == {media: f"/doc/{MEETING}.{ext}" for ext, media in RDF_TYPES.items()}
    description = page.find("meta", name="description")[0]["content"]
    assert description.startswith("This high-level meeting")


def test_meeting_embeds_a_schema_org_event(server):
    _, page = _page(server, f"/doc/{MEETING}?lang=en")
    scripts = [body for attrs, body in page.scripts if attrs.get("type") == "application/ld+json"]
    assert len(scripts) == 1
    event = json.loads(scripts[0])
    assert event["@context"] == "https://schema.org" and event["@type"] == "Event"
    assert event["name"].startswith("Localization and implementation")
    assert event["startDate"] == "2022-04-28T10:00:00+03:00" and event["endDate"] == "2022-04-28T16:00:00+03:00"
    assert event["eventStatus"] == "https://schema.org/EventScheduled"
    assert event["eventAttendanceMode"] == "https://schema.org/OfflineEventAttendanceMode"
    assert event["location"]["@type"] == "Place" and event["location"]["name"] == "United Nations Headquarters"
    address = event["location"]["address"]
    assert address["@type"] == "PostalAddress" and address["addressLocality"] == "New York"
    assert address["addressCountry"] == "US" and address["streetAddress"]
    assert len(event["organizer"]) == 5 and all(o["@type"] in ("Organization", "GovernmentOrganization") and o["name"]
                                                  for o in event["organizer"])
    assert event["description"].startswith("This high-level meeting")
    assert "image" not in event  # none exists in the data


def test_organisation_embeds_a_schema_org_organization(server):
    _, page = _page(server, "/doc/organization/escwa?lang=en")
    data = json.loads(next(body for attrs, body in page.scripts if attrs.get("type") == "application/ld+json"))
    assert data["@type"] in ("Organization", "GovernmentOrganization")
    assert data["name"] == "Economic and Social Commission for Western Asia"
    assert data["sameAs"].startswith("http://www.wikidata.org/entity/Q")
    # incoming links: the meetings it organised, linked on this host
    hrefs = {a["href"] for a in page.find("a")}
    assert f"/doc/{MEETING}?lang=en" in hrefs


def test_meeting_page_content(server):
    response, page = _page(server, f"/doc/{MEETING}?lang=en")
    text = response.text
    # dates in the meeting's own offset and zone, in a human format
    assert "Thursday, April 28, 2022" in text and "Asia/Beirut" in text and "UTC+03:00" in text
    assert page.find("time", datetime="2022-04-28T10:00:00+03:00")
    # objectives and outcome points in position order
    for prefix, count in (("objective", 6), ("outcome-point", 3)):
        positions = [text.index(f'href="/doc/{prefix}/nua-regional-commissions-2022-{n}?lang=en"')
                     for n in range(1, count + 1)]
        assert positions == sorted(positions), prefix
    # property names from the ontology's labels, not IRIs
    dts = " ".join(page.text_by_tag.get("dt", []))
    assert "Organizer" in dts and "Start date" in dts and "has objective" in dts.lower()
    # every linked thing stays on this host; the RDF is one click away
    hrefs = [a["href"] for a in page.find("a") if a.get("href")]
    assert not [h for h in hrefs if h.startswith(BASE)]
    assert f"/doc/{MEETING}.ttl" in hrefs and f"/doc/{MEETING}.jsonld" in hrefs
    # landmarks
    assert page.find("main") and page.find("header") and page.find("nav")


def test_arabic_page_is_right_to_left_with_arabic_labels(server):
    _, page = _page(server, f"/doc/{MEETING}?lang=ar")
    assert page.find("html")[0] == {"lang": "ar", "dir": "rtl"}
    dts = " ".join(page.text_by_tag.get("dt", []))
    assert "الجهة المنظِّمة" in dts  # schema:organizer, labelled in Arabic
    assert "2022" in page.text("p") or "٢٠٢٢" in page.text("p")


def test_ontology_page_documents_every_term_in_the_language(server):
    _, page = _page(server, "/ontology?lang=fr")
    assert page.find("html")[0]["lang"] == "fr"
    assert page.text("h1") == "Ontologie des réunions des Nations Unies"
    anchors = {a["id"] for a in page.find("article") if a.get("id")}
    assert {"ExpertGroupMeeting", "hasObjective", "timeZone", "SourceGraph"} <= anchors
    assert "Réunion de groupe d'experts" in " ".join(page.text_by_tag.get("h3", []))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_shapes_page_heading_is_marked_in_the_pages_language(server, lang):
    """The heading is the page's own words in its language; it was marked lang="ar" dir="rtl"
    (the language of the shapes graph's label) on the French, Spanish, Russian and Chinese pages."""
    _, page = _page(server, f"/shapes?lang={lang}")
    (heading,) = page.find("h1")
    assert (heading["lang"], heading["dir"]) == (lang, "rtl" if lang == "ar" else "ltr")


class _PropertyNames(HTMLParser):
    """The property names (<dt>) of each list of one thing's statements (<dl class="props">)."""
    def __init__(self):
        super().__init__()
        self.open: list[list[str]] = []
        self.lists: list[list[str]] = []
        self.in_dt = False

    def handle_starttag(self, tag, attrs):
        if tag == "dl":
            self.open.append([])
        elif tag == "dt" and self.open:
            self.in_dt = True
            self.open[-1].append("")

    def handle_endtag(self, tag):
        if tag == "dl" and self.open:
            self.lists.append(self.open.pop())
        elif tag == "dt":
            self.in_dt = False

    def handle_data(self, data):
        if self.in_dt:
            self.open[-1][-1] += data.strip()


def test_no_two_properties_of_a_thing_read_alike(server, built):
    """The reader tells properties apart by their names: schema:about and dcterms:subject were
    both "الموضوع" / "Sujet", so every objective listed its topics twice under one name."""
    store = built.open_store()
    things = sorted({row["s"].value[len(BASE) + 3:] for row in store.query(
        f"SELECT DISTINCT ?s {{ GRAPH ?g {{ ?s ?p ?o }} FILTER(STRSTARTS(STR(?s), '{BASE}id/')) }}")})
    assert len(things) > 20
    for rest in things:
        for lang in LANGUAGES:
            names = _PropertyNames()
            names.feed(server.get(f"/doc/{rest}?lang={lang}").text)
            for listed in names.lists:
                assert len(listed) == len(set(listed)), (rest, lang, sorted(n for n in listed if listed.count(n) > 1))


def test_headings_do_not_skip_levels(server):
    import re
    for path in (f"/doc/{MEETING}?lang=en", "/doc/organization/escwa?lang=ar", "/ontology?lang=en"):
        levels = [int(n) for n in re.findall(r"<h([1-6])[ >]", server.get(path).text)]
        assert levels[0] == 1 and levels.count(1) == 1, path
        for before, after in zip(levels, levels[1:]):
            assert after <= before + 1, (path, levels)


HOSTILE = "</script><script>alert(1)</script> <!-- x"


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """A copy of the project whose meeting has a hostile English name, built and served."""
    root = tmp_path_factory.mktemp("hostile")
    copy_sources(root)
    source = root / "data/meeting/source-en.ttl"
    text = source.read_text(encoding="utf-8")
    name = '"Localization and implementation of the New Urban Agenda: Regional Commissions high-level meeting"@en'
    assert name in text
    source.write_text(text.replace(name, f'"{HOSTILE}"@en'), encoding="utf-8")
    settings = Settings(root=root, releases=root / "releases")
    result = run_cli("build", "--root", str(root), "--releases", str(settings.releases))
    assert result.returncode == 0, result.stderr + result.stdout
    live = LiveServer(settings, workers=1)
    yield live
    live.stop()


def copy_sources(root):
    """The project's source folders (what a build reads) copied under `root`."""
    for folder in ("ontology", "shapes", "data", "catalog"):
        if (PROJECT_ROOT / folder).is_dir():
            shutil.copytree(PROJECT_ROOT / folder, root / folder)


def test_hostile_label_is_escaped_in_the_page_and_its_json_ld(hostile_server):
    response, page = _page(hostile_server, f"/doc/{MEETING}?lang=en")
    assert "<script>alert(1)" not in response.text and "<!-- x" not in response.text
    assert page.text("h1") == HOSTILE          # shown as the text it is
    assert HOSTILE in page.text("title")
    scripts = page.scripts
    assert len(scripts) == 1 and scripts[0][0].get("type") == "application/ld+json"  # no injected script
    event = json.loads(scripts[0][1])
    assert event["name"] == HOSTILE
    organisation = _page(hostile_server, "/doc/organization/escwa?lang=en")[0]
    assert "<script>alert(1)" not in organisation.text


def test_pages_link_to_the_provenance_of_their_statements(server):
    _, page = _page(server, f"/doc/{MEETING}?lang=en")
    link = next(a["href"] for a in page.find("a") if a.get("href", "").startswith("/sparql?query="))
    response = server.get(link, headers={"Accept": "application/sparql-results+json"})
    assert response.status_code == 200
    graphs = {b["graph"]["value"] for b in response.json()["results"]["bindings"]}
    assert {BASE + "graph/meeting/source-ar", BASE + "graph/meeting/translation"} <= graphs
    _, page = _page(server, "/doc/graph/meeting/translation?lang=en")
    assert any(a.get("href", "").startswith("/sparql?query=") for a in page.find("a"))


def test_pages_carry_their_content_security_policy_gzipped_or_not(server):
    import base64
    import hashlib
    import gzip
    import requests
    for encoding in ("identity", "gzip"):
        response = requests.get(server.url + f"/doc/{MEETING}?lang=en", headers={"Accept-Encoding": encoding},
                                stream=True)
        raw = response.raw.read()
        body = gzip.decompress(raw) if response.headers.get("Content-Encoding") == "gzip" else raw
        assert (response.headers.get("Content-Encoding") == "gzip") == (encoding == "gzip")
        policy = response.headers["Content-Security-Policy"]
        block = Html(body.decode("utf-8")).scripts[0][1].encode("utf-8")
        digest = base64.b64encode(hashlib.sha256(block).digest()).decode()
        assert f"'sha256-{digest}'" in policy and "'unsafe-inline'" not in policy


@pytest.mark.parametrize("lang", LANGUAGES)
def test_error_pages_are_in_the_readers_language(server, lang):
    """A 404 and a 405 page in the language ?lang= or Accept-Language chose, saying what the
    status means; the detail stays English, marked so; programs get the same English problem JSON."""
    said = words("errors", lang)
    missing = "/doc/meeting/no-such-meeting"
    for query, headers in ((f"?lang={lang}", {"Accept-Language": "ru" if lang != "ru" else "fr"}),
                           ("", {"Accept-Language": lang})):
        response = server.get(missing + query, headers={"Accept": "text/html", **headers})
        assert response.status_code == 404 and response.headers["Content-Language"] == lang
        vary = {v.strip() for v in response.headers["Vary"].split(",")}
        assert "Accept" in vary and ("Accept-Language" in vary) == (not query), (query, vary)
        page = Html(response.text)
        assert page.find("html")[0] == {"lang": lang, "dir": "rtl" if lang == "ar" else "ltr"}
        detail = f"Nothing is published as <{BASE}id/meeting/no-such-meeting>"
        if lang == "en":
            assert page.text("h1") == "404 Not Found"
        else:
            assert page.text("h1") == f"404 {said['title_404']}"
            assert said["explain_404"] in page.text("p") and page.find("span", lang="en", dir="ltr")
            assert detail in page.text("span")
        assert detail in page.text("p")
        assert {"href": "/" + query} in page.find("a") and words("page", lang)["home"] in page.text("a")
    problem = server.get(missing, headers={"Accept": "application/json", "Accept-Language": lang})
    assert problem.status_code == 404 and problem.json()["title"] == "Not Found"
    refused = requests.post(server.url + f"/doc/{MEETING}", headers={"Accept": "text/html", "Accept-Language": lang},
                            data=b"x", timeout=30)
    assert refused.status_code == 405 and Html(refused.text).text("h1") == \
        ("405 Method Not Allowed" if lang == "en" else f"405 {said['title_405']}")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_untitled_parts_are_named_by_type_and_position_wherever_they_are_linked(server, lang):
    """An objective or an outcome point has no name of its own. Wherever a page links to one (the
    meeting, its outcome document, a topic that refers to it) the link reads as its heading does
    where it is described, "Objective 5", in the page's language, never "objective:…-5"."""
    named = {"en": ("Objective 5", "Outcome point 1"), "ar": ("هدف 5", "نقطة من الوثيقة الختامية 1")}
    for path in (f"/doc/{MEETING}", "/doc/document/nua-regional-commissions-2022-outcome", "/doc/topic/mayors",
                 "/doc/topic/disasters"):
        response, _ = _page(server, f"{path}?lang={lang}")
        links = re.findall(r'<a [^>]*href="/doc/(objective|outcome-point)/[^"]*"[^>]*>([^<]*)</a>', response.text)
        assert links, path
        assert not [text for _, text in links if re.match(r"(objective|point):", text)], (path, links)
        if lang in named:
            texts = {text for _, text in links}
            assert texts & set(named[lang]), (path, texts)


class _TextLanguages(HTMLParser):
    """Each run of text of a page (scripts aside) with the language in effect there: the nearest
    lang attribute, as a browser and a screen reader read it ("" = not known)."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.runs: list[tuple[str, str]] = []
        self._stack: list[tuple[str, str | None]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag not in ("meta", "link", "br", "img", "input", "hr"):  # (void elements have no end)
            self._stack.append((tag, dict(attrs).get("lang")))

    def handle_endtag(self, tag):
        while self._stack and self._stack.pop()[0] != tag:
            pass

    def handle_data(self, data):
        if data.strip() and not any(tag in ("script", "style") for tag, _ in self._stack):
            lang = next((lang for _, lang in reversed(self._stack) if lang is not None), None)
            self.runs.append((lang, data))


ARABIC_LETTER = re.compile("[\u0600-\u06FF]")


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_arabic_quoted_in_another_language_is_marked_arabic(server, lang):
    """The editorial notes quote the Arabic source inside English sentences: the quotes are read
    as Arabic, right to left, and the sentence around them stays in the page's language."""
    response, _ = _page(server, f"/doc/{MEETING}?lang={lang}")
    runs = _TextLanguages(response.text).runs
    arabic = [(run_lang, text) for run_lang, text in runs if ARABIC_LETTER.search(text)]
    assert any("توقيت بيروت" in text for _, text in arabic)  # the note's quote
    assert [(run_lang, text) for run_lang, text in arabic if run_lang != "ar"] == []
    note = next(text for run_lang, text in runs if "the page gives the hours" in text)
    assert not ARABIC_LETTER.search(note) and dict((t, l) for l, t in runs)[note] == "en"


def test_an_untagged_literal_is_not_given_the_pages_language(server):
    """A postal address (plain strings, no language tag) in an Arabic page: its language is not
    known (lang=""), not Arabic, which a screen reader would pronounce it in."""
    response, _ = _page(server, "/doc/place/un-headquarters?lang=ar")
    runs = _TextLanguages(response.text).runs
    address = [(run_lang, text) for run_lang, text in runs if "760 United Nations Plaza" in text]
    assert address and all(run_lang == "" for run_lang, _ in address)
