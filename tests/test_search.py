"""Text search: /search (HTML and JSON), the SPARQL search service, the header's search box.

Over real HTTP against the live server on a build of the real data. Expected answers come from
the release's store (SPARQL with CONTAINS, or a scan of its literals), not from the index.
"""
from __future__ import annotations

import html
import random
import re
import unicodedata
from html.parser import HTMLParser
from urllib.parse import quote

import pyoxigraph as ox
import pytest
import requests
from SPARQLWrapper import JSON, POST, SPARQLWrapper

from server.i18n import LANGUAGES, plural, words
from server.search_index import FILE_NAME, normalise

BASE = "https://w3id.org/un-meetings/"
PREFIXES = f"PREFIX schema: <https://schema.org/>\nPREFIX unm: <{BASE}ontology#>\n"
HARAKAT = "\u064E\u064F\u0650\u0651\u0652\u064B"   # fatha, damma, kasra, shadda, sukun, tanwin


@pytest.fixture(scope="module")
def store(built):
    return built.open_store()


def rows(store, query: str) -> list:
    return list(store.query(PREFIXES + query, use_default_graph_as_union=True))


def search(server, q: str, **params) -> list[dict]:
    response = server.get("/search", params={"q": q, "limit": 1000, **params}, headers={"Accept": "application/json"})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()["results"]


def things(results: list[dict]) -> set[str]:
    return {r["iri"] for r in results}


@pytest.fixture(scope="module")
def meeting(store) -> tuple[str, str]:
    """The real meeting: its IRI and Arabic name (which has a shadda and a hamza under alef)."""
    row = rows(store, """SELECT ?m ?name WHERE { ?m a schema:Event ; unm:hasObjective ?o ; schema:name ?name
                          FILTER(lang(?name) = "ar") } LIMIT 1""")[0]
    return row["m"].value, row["name"].value


def _bare(text: str) -> str:
    return "".join(c for c in text if c not in HARAKAT)


# --- Arabic: harakat, tatweel, alef forms ---------------------------------------------------

def test_the_release_lists_its_search_index(built):
    assert FILE_NAME in built.manifest["files"]
    assert built.file(FILE_NAME).stat().st_size == built.manifest["files"][FILE_NAME]["bytes"]


def test_arabic_name_is_found_with_or_without_harakat_and_whatever_the_alef(server, meeting):
    iri, name = meeting
    words = name.split()[-2:]   # «للّجان الإقليمية»: a shadda, and alef with hamza below
    phrase = " ".join(words)
    assert any(c in HARAKAT for c in phrase) and "إ" in phrase, "the data changed: pick other words"
    variants = {
        "as written": phrase,
        "no harakat": _bare(phrase),
        "bare alef": _bare(phrase).replace("إ", "ا"),
        "hamza above instead": _bare(phrase).replace("إ", "أ"),
        "fully vocalised": "".join(c + ("\u064E" if "\u0621" <= c <= "\u064A" else "") for c in _bare(phrase)),
        "tatweel": _bare(phrase).replace("ج", "جـــ"),
        "teh marbuta as heh": _bare(phrase).replace("ة", "ه"),
    }
    for label, q in variants.items():
        results = search(server, q)
        assert iri in things(results), (label, q)
        hit = next(r for r in results if r["iri"] == iri)
        assert hit["matched_text"] == name and hit["matched_lang"] == "ar", label   # the text as published
        assert "".join(p["text"] for p in hit["snippet"] if p["match"])   # the match is marked


def test_an_arabic_word_that_is_not_there_finds_nothing(server):
    assert search(server, "زززززز") == []


# --- Chinese, Russian, French, Spanish: substrings -----------------------------------------

def _labels(store, lang: str) -> list[tuple[str, str]]:
    return [(r["s"].value, r["label"].value) for r in rows(store, f"""SELECT ?s ?label WHERE {{
        ?s a schema:Organization ; schema:name ?label FILTER(lang(?label) = "{lang}") }} ORDER BY ?s""")]


def _expected(store, lang: str, q: str) -> set[str]:
    """Things with a literal in `lang` holding every term of `q` (normalised), from a scan of the store."""
    terms = normalise(q).split()
    found = set()
    for quad in store.quads_for_pattern(None, None, None, None):
        o = quad.object
        if isinstance(o, ox.Literal) and isinstance(quad.subject, ox.NamedNode) and o.language == lang:
            folded = normalise(o.value)
            if all(t in folded for t in terms):
                found.add(quad.subject.value)
    return found


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@pytest.mark.parametrize("lang", ["zh", "ru", "fr", "es"])
def test_a_substring_of_a_name_finds_the_thing(server, store, lang):
    rnd = random.Random(lang)
    labels = _labels(store, lang)
    assert len(labels) >= 5
    for subject, label in rnd.sample(labels, 3):
        if lang == "zh":
            queries = [label[1:3], label[1:4], label[-1]]          # no spaces: substrings of 2, 3 and 1 characters
        else:
            word = max(label.split(), key=len)
            middle = word[1:-1] if len(word) > 4 else word
            queries = [middle.upper(), _strip_accents(word).lower(), label.upper()]
        for q in queries:
            results = search(server, q, **{"in": lang})
            assert subject in things(results), (label, q)
            assert things(results) == _expected(store, lang, q), q
            assert all(r["matched_lang"] == lang for r in results)


def test_accents_and_case_do_not_matter_in_french(server, store):
    with_accents = [(s, label) for s, label in _labels(store, "fr") if label != _strip_accents(label)]
    assert with_accents
    subject, label = with_accents[0]
    assert things(search(server, _strip_accents(label).upper())) >= {subject}


def test_a_ligature_is_found_written_out_and_symbols_separate_words(server, store):
    """« mise en œuvre » was found only with the ligature typed; `^urban`, `<urban>` or
    `urban|agenda` found nothing, the symbol kept inside the word."""
    with_ligature = _expected(store, "fr", "mise en œuvre")
    assert with_ligature and things(search(server, "mise en oeuvre", **{"in": "fr"})) == with_ligature
    assert things(search(server, "MISE EN ŒUVRE", **{"in": "fr"})) == with_ligature
    plain = things(search(server, "urban agenda"))
    assert plain
    for odd in ("^urban agenda", "<urban> agenda", "urban|agenda", "+urban $agenda", "urban=agenda~"):
        assert things(search(server, odd)) == plain, odd


# --- SPARQL: the search service -------------------------------------------------------------

def sparql(server, query: str) -> list[dict]:
    client = SPARQLWrapper(server.url + "/sparql")
    client.setQuery(query)
    client.setReturnFormat(JSON)
    client.setMethod(POST)
    return client.query().convert()["results"]["bindings"]


def test_sparql_service_finds_what_contains_finds(server, store):
    query = PREFIXES + f"""SELECT ?thing ?score ?text ?property WHERE {{
      SERVICE <{BASE}search> {{ ?thing unm:matches "Commission" ; unm:lang "fr" ; unm:score ?score ;
                                unm:matchedText ?text ; unm:matchedProperty ?property }}
      ?thing a schema:Organization }}"""
    got = sparql(server, query)
    expected = {r["s"].value for r in rows(store, """SELECT DISTINCT ?s WHERE { ?s a schema:Organization ; ?p ?l
                 FILTER(isLiteral(?l) && lang(?l) = "fr" && CONTAINS(LCASE(STR(?l)), "commission")) }""")}
    assert len(expected) >= 5
    assert {b["thing"]["value"] for b in got} == expected
    for b in got:
        assert b["text"]["xml:lang"] == "fr" and "commission" in b["text"]["value"].lower()
        assert 0 < float(b["score"]["value"]) <= 1
        literal = ox.Literal(b["text"]["value"], language="fr")
        assert list(store.quads_for_pattern(ox.NamedNode(b["thing"]["value"]), ox.NamedNode(b["property"]["value"]),
                                            literal, None)), b


def test_sparql_service_normalises_arabic(server, store):
    # «اللجنه» (heh) is not in the data; «اللجنة» (teh marbuta) is
    query = PREFIXES + f"""SELECT DISTINCT ?thing WHERE {{
      ?thing a schema:Organization .
      SERVICE <{BASE}search> {{ ?thing unm:matches "اللجنه" ; unm:lang "ar" }} }}"""
    got = {b["thing"]["value"] for b in sparql(server, query)}
    expected = {r["s"].value for r in rows(store, """SELECT DISTINCT ?s WHERE { ?s a schema:Organization ; ?p ?l
                 FILTER(isLiteral(?l) && lang(?l) = "ar" && CONTAINS(STR(?l), "اللجنة")) }""")}
    assert expected and got == expected


@pytest.mark.parametrize("written", ['"\\u0627\\u0644\\u0644\\u062C\\u0646\\u0629"', '"اللجنة"^^xsd:string',
                                     '"اللجنة"@ar', '"""اللجنة"""^^<http://www.w3.org/2001/XMLSchema#string>'])
def test_sparql_service_reads_its_text_as_sparql_writes_a_literal(server, written):
    """\\u escapes, an xsd:string datatype or a language tag: the same search text."""
    plain = PREFIXES + f"""SELECT ?thing WHERE {{ SERVICE <{BASE}search> {{ ?thing unm:matches "اللجنة" }} }}"""
    query = plain.replace('"اللجنة"', written).replace("PREFIX", "PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>\nPREFIX", 1)
    expected = {b["thing"]["value"] for b in sparql(server, plain)}
    assert expected and {b["thing"]["value"] for b in sparql(server, query)} == expected


def test_sparql_service_refuses_a_text_of_another_datatype(server):
    query = PREFIXES + f"""SELECT ?thing WHERE {{ SERVICE <{BASE}search> {{
      ?thing unm:matches "12"^^<http://www.w3.org/2001/XMLSchema#integer> }} }}"""
    response = server.get("/sparql", params={"query": query}, headers={"Accept": "application/sparql-results+json"})
    assert response.status_code == 400 and "takes a string" in response.json()["detail"]


def test_sparql_service_limit_and_prefixed_service_iri(server):
    query = PREFIXES + f"""PREFIX unms: <{BASE}>
    SELECT ?thing WHERE {{ SERVICE unms:search {{ ?thing unm:matches "commission" ; unm:limit 2 . }} }}"""
    assert len(sparql(server, query)) == 2


def _post(server, query: str) -> requests.Response:
    return requests.post(server.url + "/sparql", data=query.encode(), timeout=30,
                         headers={"Content-Type": "application/sparql-query", "Accept": "application/sparql-results+json"})


def test_any_other_service_is_still_refused(server):
    search_block = f'SERVICE <{BASE}search> {{ ?s <{BASE}ontology#matches> "commission" }}'
    for query in ("SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }",
                  "SELECT * WHERE { SERVICE SILENT <http://127.0.0.1:9/sparql> { ?s ?p ?o } }",
                  f"SELECT * WHERE {{ {search_block} SERVICE <http://127.0.0.1:9/sparql> {{ ?s ?p ?o }} }}",
                  f"SELECT * WHERE {{ SERVICE <{BASE}search/x> {{ ?s ?p ?o }} }}",
                  "SELECT * WHERE { SERVICE ?endpoint { ?s ?p ?o } }"):
        response = _post(server, query)
        assert response.status_code == 400, query
        assert "SERVICE" in response.json()["title"], query


def test_a_bad_search_block_is_a_400_that_says_why(server):
    for body, why in ((f'?s <{BASE}ontology#lang> "fr"', "unm:matches"),
                      (f"?s <{BASE}ontology#matches> ?x", "string"),
                      (f'?s <{BASE}ontology#matches> "commission" ; <{BASE}ontology#colour> "red"', "colour"),
                      (f'?s <{BASE}ontology#matches> "ab"', "3"),
                      (f'?s <{BASE}ontology#matches> "commission" ; <{BASE}ontology#lang> "x y"', "language tag"),
                      (f'"x" <{BASE}ontology#matches> "commission"', "variable")):
        response = _post(server, f"SELECT * WHERE {{ SERVICE <{BASE}search> {{ {body} }} }}")
        assert response.status_code == 400, body
        assert why in response.json()["detail"], (body, response.json())


# --- bad input: 400, never 500 ----------------------------------------------------------------

@pytest.mark.parametrize("params", [
    {}, {"q": ""}, {"q": "   "}, {"q": "!!! ..."}, {"q": "ab"}, {"q": "ـــ"}, {"q": "x" * 201},
    {"q": "commission", "in": "xx"}, {"q": "commission", "limit": "0"}, {"q": "commission", "limit": "abc"},
    {"q": "commission", "limit": "100000"},
], ids=lambda p: repr(p)[:40])
def test_bad_inputs_are_400_with_a_message(server, params):
    for accept in ("application/json", "text/html"):
        response = server.get("/search", params=params, headers={"Accept": accept})
        assert response.status_code == 400, (params, accept)
        if accept == "application/json":
            assert response.json()["detail"]
        else:
            assert response.headers["Content-Type"].startswith("text/html")
            assert 'role="alert"' in response.text and 'name="q"' in response.text


def test_odd_inputs_never_fail(server):
    rnd = random.Random(11)
    alphabet = "aéب\u064E\u0640中\U0001F600\x00\u200f\"'<>&%*:^()-{}[]\\ ;#?"
    odd = ["%FF%FE", "%00commission", "%ED%A0%80abc", quote('"commission" OR x'), quote("NEAR(a b)"), quote("*com*")]
    odd += [quote("".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 30)))) for _ in range(60)]
    for raw in odd:
        response = requests.get(f"{server.url}/search?q={raw}", headers={"Accept": "application/json"}, timeout=30)
        assert response.status_code in (200, 400), (raw, response.status_code, response.text[:300])


# --- the page and the header box ------------------------------------------------------------

@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_page_header_has_a_search_box_in_its_language(server, meeting, lang):
    path = "/doc/" + meeting[0][len(BASE) + 3:]
    for page in (f"{path}?lang={lang}", f"/?lang={lang}", f"/search?q=commission&lang={lang}"):
        text = server.get(page, headers={"Accept": "text/html"}).text
        header = text[text.index('<header class="site">'):text.index("</header>")]
        assert 'role="search"' in header and 'action="/search"' in header, page
        assert f'aria-label="{words("search", lang)["label"]}"' in header and words("search", lang)["button"] in header, page
        assert f'<html lang="{lang}" dir="{"rtl" if lang == "ar" else "ltr"}"' in text, page


class _Heading(HTMLParser):
    """The elements inside <h2 id="results">, and the text of its <bdi>."""
    def __init__(self):
        super().__init__()
        self.inside, self.in_bdi, self.tags, self.bdi = False, False, [], ""

    def handle_starttag(self, tag, attrs):
        if tag == "h2" and ("id", "results") in attrs:
            self.inside = True
        elif self.inside:
            self.tags.append(tag)
            self.in_bdi = tag == "bdi"

    def handle_endtag(self, tag):
        self.inside = self.inside and tag != "h2"
        self.in_bdi = self.in_bdi and tag != "bdi"

    def handle_data(self, data):
        if self.in_bdi:
            self.bdi += data


@pytest.mark.parametrize("lang, text", [("ar", "urban agenda (2019-2022)!"), ("en", "الخطة الحضرية (2019-2022)!"),
                                        ("en", "<b>commission</b>"), ("ar", "zzqqxx </bdi><i>")])
def test_the_query_is_isolated_in_the_results_heading(server, lang, text):
    """The query's own direction must not reorder the sentence around it: an English query on
    an Arabic page rendered as «!urban agenda (2019-2022)»."""
    page = server.get("/search", params={"q": text, "lang": lang}, headers={"Accept": "text/html"})
    heading = _Heading()
    heading.feed(page.text)
    assert heading.tags == ["bdi"] and heading.bdi == text


def test_search_page_in_arabic_in_a_browser(server, browser, meeting):
    from selenium.webdriver.common.by import By
    iri, name = meeting
    browser.get(server.url + "/search?lang=ar&q=" + quote(_bare("للجان الاقليمية")))
    html = browser.find_element(By.TAG_NAME, "html")
    assert html.get_attribute("dir") == "rtl" and html.get_attribute("lang") == "ar"
    links = browser.find_elements(By.CSS_SELECTOR, "ol.search-results a.hit")
    hrefs = [a.get_attribute("href") for a in links]
    target = server.url + "/doc/" + iri[len(BASE) + 3:] + "?lang=ar"
    assert target in hrefs
    assert browser.find_elements(By.CSS_SELECTOR, "ol.search-results mark")
    box = browser.find_element(By.CSS_SELECTOR, "header.site form[role=search] input[name=q]")
    assert box.get_attribute("aria-label") == words("search", "ar")["label"]
    links[hrefs.index(target)].click()
    assert browser.current_url == target
    assert browser.find_element(By.TAG_NAME, "h1").text == name


def test_search_box_on_an_english_page_in_a_browser(server, browser, store):
    from selenium.webdriver.common.by import By
    browser.get(server.url + "/?lang=en")
    box = browser.find_element(By.CSS_SELECTOR, "header.site form[role=search] input[name=q]")
    box.send_keys("Commission économique")
    box.submit()
    # submit() may return before the browser has navigated: wait for the results page
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(browser, 10).until(lambda driver: "/search?" in driver.current_url)
    assert "/search?" in browser.current_url and "lang=en" in browser.current_url
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("dir") == "ltr"
    found = {a.get_attribute("href").split("?")[0] for a in browser.find_elements(By.CSS_SELECTOR, "ol.search-results a.hit")}
    expected = {server.url + "/doc/" + s[len(BASE) + 3:] for s in _expected(store, "fr", "commission economique")}
    assert expected and expected <= found
    assert browser.find_element(By.CSS_SELECTOR, "#results").text.startswith(str(len(found)))
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert not errors, errors


def test_json_answer(server, meeting):
    response = server.get("/search", params={"q": "commission", "limit": 3}, headers={"Accept": "application/json"})
    data = response.json()
    assert response.status_code == 200 and data["truncated"] is True and len(data["results"]) == 3
    for r in data["results"]:
        assert set(r) >= {"iri", "href", "label", "matched_text", "matched_lang", "score", "snippet", "property"}
        assert re.fullmatch(r"/doc/.+\?lang=\w\w(#.*)?|/ontology\?lang=\w\w#.+|https?://.+", r["href"]), r["href"]
        assert "commission" in normalise(r["matched_text"])


@pytest.mark.parametrize("lang", ["en", "ar", "ru"])
def test_the_results_heading_counts_in_the_languages_grammar(server, lang):
    """"More than 3 results" on a cut page (not "3 results"); the count's word in the form the
    language gives that number (Arabic: 1, 2, 3–10 and 11+ each differ)."""
    said = words("search", lang)
    for limit in (1, 2, 3, 11):
        page = server.get("/search", params={"q": "commission", "limit": limit, "lang": lang},
                          headers={"Accept": "text/html"}).text
        shown = len(re.findall(r'<a class="hit"', page))
        heading = html.unescape(re.sub(r"<[^>]+>", "", re.search(r'<h2 id="results">(.*?)</h2>', page, re.S).group(1)))
        assert shown == limit and heading == plural(said["found_more"], limit, lang).format(n=limit, q="commission")
        if lang == "ar":
            assert heading == {1: "أكثر من نتيجة واحدة لـ «commission»", 2: "أكثر من نتيجتين لـ «commission»",
                               3: "أكثر من 3 نتائج لـ «commission»", 11: "أكثر من 11 نتيجة لـ «commission»"}[limit]
    every = server.get("/search", params={"q": "commission", "limit": 1000, "lang": lang}, headers={"Accept": "application/json"})
    total = len(every.json()["results"])
    page = server.get("/search", params={"q": "commission", "limit": 1000, "lang": lang}, headers={"Accept": "text/html"}).text
    heading = html.unescape(re.sub(r"<[^>]+>", "", re.search(r'<h2 id="results">(.*?)</h2>', page, re.S).group(1)))
    assert every.json()["truncated"] is False and heading == plural(said["found"], total, lang).format(n=total, q="commission")


def test_every_term_of_the_search_pattern_dereferences(server):
    """unm:matches, unm:score … are the ontology's terms: each has labels in the six languages and
    a definition, in the ontology's RDF and as an anchor of its page (/ontology#matches)."""
    from rdflib import Graph, Literal, URIRef
    from rdflib.namespace import RDFS, SKOS

    from server.search_service import PARAMETERS
    ontology = Graph().parse(data=server.get("/ontology", headers={"Accept": "text/turtle"}).text, format="turtle")
    page = server.get("/ontology?lang=ar", headers={"Accept": "text/html"}).text
    for name in PARAMETERS:
        term = URIRef(BASE + "ontology#" + name)
        labels = {label.language for label in ontology.objects(term, RDFS.label) if isinstance(label, Literal)}
        assert labels == set(LANGUAGES), (name, labels)
        assert {d.language for d in ontology.objects(term, SKOS.definition)} >= {"ar", "en"}, name
        assert f'id="{name}"' in page, name


@pytest.mark.parametrize("text, term", [
    ("The regional commissions met in Beirut to discuss the localization and implementation of the New Urban "
     "Agenda, with mayors, ministers and experts from every region of the world, and agreed on a regional "
     "programme of work for the coming years, including sustainable infrastructure financing.", "mayors"),
    ("ناقشت اللجان الإقليمية في بيروت توطين الخطة الحضرية الجديدة وتنفيذها بحضور رؤساء البلديات والوزراء "
     "والخبراء من جميع مناطق العالم، واتفقت على برنامج عمل إقليمي للسنوات المقبلة يشمل تمويل البنية التحتية "
     "المستدامة وخدمات المدن الأساسية في المنطقة العربية كلها.", "البلديات"),
])
def test_a_snippet_cuts_the_text_between_words(text, term):
    from server.search_index import snippet
    parts = snippet(text, (normalise(term),), width=80)
    shown = "".join(piece for piece, _ in parts)
    assert shown.startswith("…") and shown.endswith("…") and [p for p, match in parts if match] == [term]
    inner = shown[1:-1]
    at = text.index(inner)
    assert text[at - 1].isspace() and text[at + len(inner)].isspace(), shown
