"""The facts of the seed page are in the published data, asked the way a generic client asks:
SPARQL with schema.org terms only, over the release's store (default graph = union)."""
from __future__ import annotations

import pytest

UN = "https://w3id.org/un-meetings/"
PREFIXES = "PREFIX schema: <https://schema.org/> PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>\n"
LANGUAGES = {"ar", "en", "fr", "es", "ru", "zh"}


@pytest.fixture(scope="module")
def select(built):
    store = built.open_store()

    def run(query: str) -> list[dict[str, str]]:
        solutions = store.query(PREFIXES + query, use_default_graph_as_union=True)
        names = [v.value for v in solutions.variables]
        return [{n: s[n].value for n in names if s[n] is not None} for s in solutions]
    return run


def test_the_meeting_is_dated_in_beirut_time_with_its_offset(select):
    rows = select("""SELECT ?start ?end ?dt WHERE {
        ?m a schema:Event ; schema:name "Localization and implementation of the New Urban Agenda: Regional Commissions high-level meeting"@en ;
           schema:startDate ?start ; schema:endDate ?end . BIND(datatype(?start) AS ?dt) }""")
    assert rows == [{"start": "2022-04-28T10:00:00+03:00", "end": "2022-04-28T16:00:00+03:00",
                     "dt": "http://www.w3.org/2001/XMLSchema#dateTime"}]


def test_the_meeting_is_at_un_headquarters_with_an_address(select):
    rows = select(f"""SELECT ?street ?locality WHERE {{
        <{UN}id/meeting/nua-regional-commissions-2022> schema:location ?place .
        ?place a schema:Place ; schema:name "مقر الأمم المتحدة"@ar ;
               schema:address [ a schema:PostalAddress ; schema:streetAddress ?street ; schema:addressLocality ?locality ] }}""")
    assert rows == [{"street": "760 United Nations Plaza", "locality": "New York"}]


def test_five_commissions_organise_it_each_named_in_the_six_languages(select):
    rows = select(f"""SELECT ?org (GROUP_CONCAT(DISTINCT lang(?name)) AS ?langs) (COUNT(?name) AS ?names) WHERE {{
        <{UN}id/meeting/nua-regional-commissions-2022> schema:organizer ?org . ?org schema:name ?name }}
        GROUP BY ?org""")
    assert {r["org"].rsplit("/", 1)[1] for r in rows} == {"eca", "ece", "eclac", "escap", "escwa"}
    for row in rows:
        assert set(row["langs"].split()) == LANGUAGES and row["names"] == "6", row


def test_escwa_has_its_official_arabic_and_english_names(select):
    rows = select(f"""SELECT ?ar ?en WHERE {{ <{UN}id/organization/escwa> schema:name ?ar, ?en .
        FILTER(lang(?ar) = "ar" && lang(?en) = "en") }}""")
    assert rows == [{"ar": "اللجنة الاقتصادية والاجتماعية لغربي آسيا",
                     "en": "Economic and Social Commission for Western Asia"}]


def test_six_objectives_in_page_order_in_arabic_and_english(select):
    rows = select("""SELECT ?pos ?ar ?en WHERE {
        ?o a schema:Intangible ; schema:position ?pos ; schema:text ?ar, ?en .
        FILTER(lang(?ar) = "ar" && lang(?en) = "en") } ORDER BY ?pos""")
    assert [r["pos"] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    assert rows[0]["en"].startswith("Contribute to positioning the NUA strategically as a road map")
    assert rows[5]["ar"].startswith("حشد الزخم لبناء الشراكات في تمويل الهياكل الأساسية المستدامة")
    assert "adaption" in rows[2]["en"]  # the official English text, verbatim


def test_three_outcome_points_in_order_arabic_verbatim(select):
    rows = select(f"""SELECT ?pos ?ar ?en WHERE {{
        <{UN}id/document/nua-regional-commissions-2022-outcome> schema:hasPart ?p .
        ?p a schema:CreativeWork ; schema:position ?pos ; schema:text ?ar, ?en .
        FILTER(lang(?ar) = "ar" && lang(?en) = "en") }} ORDER BY ?pos""")
    assert [r["pos"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["ar"].startswith("هناك حاجة إلى تعددية أطراف جديدة")
    assert rows[2]["ar"].startswith("سلطت الإسكوا الضوء على مركزية القدرات المعززة للحكومات المحلية")
    assert all(r["en"] for r in rows)


def test_the_progress_report_2019_2022_by_the_five_commissions(select):
    rows = select("""SELECT ?ar (COUNT(DISTINCT ?author) AS ?authors) ?coverage WHERE {
        ?r a schema:Report ; schema:name ?ar ; schema:author ?author ; schema:temporalCoverage ?coverage .
        FILTER(lang(?ar) = "ar") } GROUP BY ?ar ?coverage""")
    assert len(rows) == 1
    assert "(2019-2022)" in rows[0]["ar"] and rows[0]["authors"] == "5" and rows[0]["coverage"] == "2019/2022"


def test_the_closing_paragraph_keeps_the_arabic_error_and_translates_what_was_meant(select):
    rows = select("""SELECT ?ar ?en ?note WHERE {
        ?doc schema:text ?ar, ?en . FILTER(lang(?ar) = "ar" && lang(?en) = "en")
        FILTER(CONTAINS(?ar, "الاتحاد الوطني للجامعات"))
        ?doc <http://www.w3.org/2004/02/skos/core#editorialNote> ?note . FILTER(lang(?note) = "en") }""")
    assert rows, "the closing statement with its editorial note"
    assert "New Urban Agenda" in rows[0]["en"] and "Universities" not in rows[0]["en"]
    assert "National Union of Universities" in rows[0]["note"]


def test_every_name_and_label_is_language_tagged(select):
    rows = select("""SELECT ?s ?p ?o WHERE { VALUES ?p { schema:name <http://www.w3.org/2000/01/rdf-schema#label>
        <http://www.w3.org/2004/02/skos/core#prefLabel> } ?s ?p ?o . FILTER(lang(?o) = "") }""")
    assert rows == []
