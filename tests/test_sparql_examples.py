"""The example queries (queries/*.rq): each, sent to the live endpoint, gives exactly what
rdflib's own engine gives over the release's dump, and some hard facts are asserted literally."""
from __future__ import annotations

from collections import Counter

import pytest
import requests
from rdflib.compare import isomorphic
from SPARQLWrapper import JSON, POST, SPARQLWrapper

from server import search_service

from .test_sparql_support import (QUERIES, norm, parse_graph, parse_results, reference_dataset, reference_graph,
                                  reference_ordered, reference_select, shared_server, solution_rows)

BASE = "https://w3id.org/un-meetings/"
#: examples whose ORDER BY keys are unique: the order itself must match
ORDERED = {"01-outcome-points", "02-objectives-topics", "04-commission-labels", "06-commissions-wikidata",
           "11-report-authors", "03-meetings-by-commission", "10-topics-sdg-unbis"}


@pytest.fixture(scope="module")
def server(built, settings, store_env):
    return shared_server(settings, store_env)


def run(server, name: str) -> dict:
    query = (server_queries()[name]).read_text(encoding="utf-8")
    response = requests.post(server.url + "/sparql", data=query.encode("utf-8"),
                             headers={"Content-Type": "application/sparql-query",
                                      "Accept": "application/sparql-results+json"})
    assert response.status_code == 200, response.text
    return response.json()


def server_queries() -> dict:
    return {path.stem: path for path in QUERIES}


def values(data: dict, variable: str) -> list[str]:
    return [b[variable]["value"] for b in data["results"]["bindings"] if variable in b]


def test_there_are_at_least_ten_examples():
    assert len(QUERIES) >= 10


@pytest.mark.parametrize("path", QUERIES, ids=[p.stem for p in QUERIES])
def test_example_matches_rdflib(server, built, path):
    query = path.read_text(encoding="utf-8")
    # rdflib answers the text search service's blocks as the endpoint does: the index's answers as VALUES
    reference = search_service.expand(query, BASE, search_service.release_index(built.path))
    form = reference_dataset(built).query(reference).type
    if form in ("CONSTRUCT", "DESCRIBE"):
        response = requests.get(server.url + "/sparql", params={"query": query}, headers={"Accept": "text/turtle"})
        assert response.status_code == 200
        graph = parse_graph(response.content, "text/turtle")
        expected = reference_graph(built, reference)
        assert len(graph) == len(expected) > 0
        assert isomorphic(graph, expected)
        return
    client = SPARQLWrapper(server.url + "/sparql")
    client.setQuery(query)
    client.setReturnFormat(JSON)
    client.setMethod(POST)
    body = client.query().response.read()
    result = parse_results(body, "application/sparql-results+json")
    if form == "ASK":
        assert result.askAnswer == reference_dataset(built).query(reference).askAnswer
        return
    variables, expected = reference_select(built, reference)
    assert [str(v) for v in result.vars] == variables
    assert canon(solution_rows(result)) == canon(expected)
    assert sum(expected.values()) > 0
    if path.stem in ORDERED:
        got = [tuple(norm(row.get(v)) for v in result.vars) for row in result.bindings]
        assert [canon_row(r) for r in got] == [canon_row(r) for r in reference_ordered(built, reference)]


def canon_row(row: tuple) -> tuple:
    """GROUP_CONCAT's order is unspecified: compare its parts sorted."""
    def sort_parts(cell):
        if isinstance(cell, str) and " | " in cell and cell.startswith('"') and cell.endswith('"'):
            return '"' + " | ".join(sorted(cell[1:-1].split(" | "))) + '"'
        return cell
    return tuple(sort_parts(c) for c in row)


def canon(rows: Counter) -> Counter:
    out = Counter()
    for row, n in rows.items():
        out[canon_row(row)] += n
    return out


def test_outcome_points_in_order_in_arabic_and_english(server):
    data = run(server, "01-outcome-points")
    assert values(data, "position") == ["1", "2", "3"]
    assert values(data, "point") == [f"{BASE}id/outcome-point/nua-regional-commissions-2022-{i}" for i in (1, 2, 3)]
    for binding in data["results"]["bindings"]:
        assert binding["arabic"]["xml:lang"] == "ar" and binding["english"]["xml:lang"] == "en"
    assert values(data, "english")[2].startswith("ESCWA highlighted the centrality")


def test_six_objectives_in_order_with_their_topics(server):
    data = run(server, "02-objectives-topics")
    assert values(data, "position") == ["1", "2", "3", "4", "5", "6"]
    topics = values(data, "topics")
    assert set(topics[0].split(" | ")) == {"Sustainable development", "Climate action"}
    assert topics[1] == "COVID-19 recovery"


def test_five_commissions_each_organised_the_meeting(server):
    data = run(server, "03-meetings-by-commission")
    assert len(data["results"]["bindings"]) == 5
    assert set(values(data, "meetings")) == {"1"}
    assert "Economic and Social Commission for Western Asia" in values(data, "name")


def test_escwa_has_names_in_the_six_languages(server):
    data = run(server, "04-commission-labels")
    assert values(data, "language") == ["ar", "en", "es", "fr", "ru", "zh"]
    names = dict(zip(values(data, "language"), values(data, "name")))
    assert names["en"] == "Economic and Social Commission for Western Asia"
    assert names["ar"] == "اللجنة الاقتصادية والاجتماعية لغربي آسيا"


def test_commissions_with_wikidata(server):
    data = run(server, "06-commissions-wikidata")
    found = dict(zip(values(data, "acronym"), values(data, "wikidata")))
    assert found == {
        "ECA": "http://www.wikidata.org/entity/Q1144508", "ECE": "http://www.wikidata.org/entity/Q659012",
        "ECLAC": "http://www.wikidata.org/entity/Q32874", "ESCAP": "http://www.wikidata.org/entity/Q1142901",
        "ESCWA": "http://www.wikidata.org/entity/Q1355485"}


def test_meeting_date_time_zone_and_venue(server):
    (row,) = run(server, "07-meeting-when-where")["results"]["bindings"]
    assert row["start"]["value"] == "2022-04-28T10:00:00+03:00"
    assert row["start"]["datatype"] == "http://www.w3.org/2001/XMLSchema#dateTime"
    assert row["end"]["value"] == "2022-04-28T16:00:00+03:00"
    assert row["timeZone"]["value"] == "Asia/Beirut"
    assert row["venue"]["value"] == "United Nations Headquarters"
    assert (row["street"]["value"], row["locality"]["value"], row["postalCode"]["value"]) == \
        ("760 United Nations Plaza", "New York", "10017")


def test_statements_by_graph_kind(server, built):
    data = run(server, "08-statements-by-graph-kind")
    kinds = {(b["kind"]["value"].rsplit("#", 1)[1], b["graph"]["value"].replace(BASE + "graph/", "")): int(b["statements"]["value"])
             for b in data["results"]["bindings"]}
    assert ("SourceGraph", "meeting/source-ar") in kinds and ("SourceGraph", "meeting/source-en") in kinds
    assert ("TranslationGraph", "meeting/translation") in kinds
    assert ("EditorialGraph", "meeting/editorial") in kinds
    for (_, graph), count in kinds.items():
        assert count == built.manifest["graphs"][BASE + "graph/" + graph]


def test_editorial_notes_in_both_languages(server):
    data = run(server, "09-editorial-notes")
    about = values(data, "about")
    assert f"{BASE}id/meeting/nua-regional-commissions-2022" in about
    assert all("arabic" in b for b in data["results"]["bindings"])


def test_progress_report_has_the_five_commissions_as_authors(server):
    data = run(server, "11-report-authors")
    assert len(data["results"]["bindings"]) == 5
    assert set(values(data, "coverage")) == {"2019/2022"}


def test_counts_by_class(server):
    data = run(server, "12-count-by-class")
    counts = {b["class"]["value"]: int(b["count"]["value"]) for b in data["results"]["bindings"]}
    assert counts[BASE + "ontology#RegionalCommission"] == 5
    assert counts[BASE + "ontology#Objective"] == 6
    assert counts[BASE + "ontology#OutcomePoint"] == 3


def test_six_objectives_ask(server):
    query = server_queries()["15-six-objectives"].read_text(encoding="utf-8")
    response = requests.get(server.url + "/sparql", params={"query": query})
    assert response.json() == {"head": {}, "boolean": True}
