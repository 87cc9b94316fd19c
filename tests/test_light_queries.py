"""Light queries, answered by the worker without an evaluator (server/light_queries.py,
server/query_patterns.py): which queries count as light, the release's fan-out figures they
are judged by, and that their answers are the evaluators' answers, byte for byte."""
from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import pytest
import requests
from rdflib import Dataset

from server import light_queries
from server.query_patterns import RDF_TYPE, Pattern, Term, union_branches
from server.sparql_protocol import analyse

from .test_operations import samples
from .test_sparql_limits import RUNAWAY, _live
from .test_sparql_support import parse_graph, parse_results, reference_graph, reference_select, solution_rows

SCHEMA = "https://schema.org/"
PREFIXES = "PREFIX schema: <https://schema.org/>\nPREFIX : <urn:ex:>\n"


def branches(query: str) -> list[list[Pattern]] | None:
    text = analyse(query)
    return union_branches(text.tokens, text.prefixes)


def patterns(query: str) -> list[Pattern] | None:
    """The patterns of a query that is one group (None for a UNION, or not read)."""
    read = branches(query)
    return read[0] if read and len(read) == 1 else None


def var(name: str) -> Term:
    return Term("var", name)


def iri(value: str) -> Term:
    return Term("iri", value)


# --------------------------------------------------------------------------------------------
# Reading the patterns
# --------------------------------------------------------------------------------------------

def test_a_lookup_is_read_into_its_triple_patterns():
    query = PREFIXES + """SELECT DISTINCT ?place ?name WHERE {
      :m a schema:Event; schema:location ?place , ?other .
      ?place schema:name "Beyrouth"@fr, 'x'^^schema:Text ; schema:size -3 ;.
      FILTER(lang(?name) = "ar") FILTER regex(?name, "^B")
      _:b schema:address ?place.
    } ORDER BY DESC(?place) LIMIT 10 OFFSET 2"""
    assert patterns(query) == [
        Pattern(iri("urn:ex:m"), iri(RDF_TYPE), iri(SCHEMA + "Event")),
        Pattern(iri("urn:ex:m"), iri(SCHEMA + "location"), var("place")),
        Pattern(iri("urn:ex:m"), iri(SCHEMA + "location"), var("other")),
        Pattern(var("place"), iri(SCHEMA + "name"), Term("literal", '"Beyrouth"@fr')),
        Pattern(var("place"), iri(SCHEMA + "name"), Term("literal", f"'x'^^{SCHEMA}Text")),
        Pattern(var("place"), iri(SCHEMA + "size"), Term("literal", "-3")),
        Pattern(var("_:b"), iri(SCHEMA + "address"), var("place")),
    ]


@pytest.mark.parametrize("query", [
    "ASK { <urn:ex:m> ?p ?o }",
    "ASK WHERE { <urn:ex:m> ?p ?o . }",
    "SELECT * FROM <urn:ex:g> WHERE { <urn:ex:m> ?p ?o }",
    "CONSTRUCT { <urn:ex:m> ?p ?o } WHERE { <urn:ex:m> ?p ?o }",
    "CONSTRUCT WHERE { <urn:ex:m> ?p ?o }",
    "SELECT ?p WHERE { GRAPH ?g { <urn:ex:m> ?p ?o } }",
    "SELECT (COUNT(*) AS ?n) { <urn:ex:m> ?p ?o }",
    "SELECT ?p (COUNT(DISTINCT ?o) AS ?n) (SAMPLE(?o) AS ?one) { <urn:ex:m> ?p ?o } GROUP BY ?p "
    "HAVING (COUNT(?o) > 1) ORDER BY DESC(?n) LCASE(STR(?p)) LIMIT 5 OFFSET 1",
    "SELECT ?p (GROUP_CONCAT(?o; SEPARATOR=', ') AS ?all) { <urn:ex:m> ?p ?o } GROUP BY ?p",
    "SELECT ?k (COUNT(*) AS ?n) { <urn:ex:m> ?p ?o } GROUP BY (STR(?p) AS ?k) ORDER BY ?n",
    "SELECT DISTINCT (UCASE(?o) AS ?up) { <urn:ex:m> ?p ?o } ORDER BY (?up)",
    f"SELECT (CONCAT({', '.join(['?o'] * 15)}) AS ?x) {{ <urn:ex:m> ?p ?o }}",  # 16 variables read in all
])
def test_every_form_of_the_lookup_shape_is_read(query):
    assert patterns(query) == [Pattern(iri("urn:ex:m"), var("p"), var("o"))]


@pytest.mark.parametrize("query", [
    "DESCRIBE <urn:ex:m>",
    "BASE <urn:ex:> ASK { <m> ?p ?o }",
    "ASK { <m> ?p ?o }",                                          # relative IRI
    "ASK { ex:m ?p ?o }",                                         # undeclared prefix
    "ASK { <urn:ex:m> ?p ?o OPTIONAL { ?o ?q ?r } }",
    "ASK { { <urn:ex:m> ?p ?o } UNION { <urn:ex:n> ?p ?o } . <urn:ex:k> ?q ?r }",  # triples beside a union
    "ASK { <urn:ex:k> ?q ?r { <urn:ex:m> ?p ?o } UNION { <urn:ex:n> ?p ?o } }",
    "ASK { { <urn:ex:m> ?p ?o OPTIONAL { ?o ?q ?r } } UNION { <urn:ex:n> ?p ?o } }",
    "ASK { { { <urn:ex:m> ?p ?o } UNION { <urn:ex:n> ?p ?o } } UNION { <urn:ex:k> ?p ?o } }",
    "ASK { { GRAPH ?g { <urn:ex:m> ?p ?o } } UNION { <urn:ex:n> ?p ?o } }",
    "ASK { { <urn:ex:m> ?p ?o } MINUS { <urn:ex:n> ?p ?o } }",
    "ASK { <urn:ex:m> <urn:ex:p>/<urn:ex:q> ?o }",
    "ASK { <urn:ex:m> ^<urn:ex:p> ?o }",
    "ASK { <urn:ex:m> <urn:ex:p>* ?o }",
    "ASK { <urn:ex:m> <urn:ex:p> [ <urn:ex:q> ?o ] }",
    "ASK { <urn:ex:m> <urn:ex:p> (1 2) }",
    "ASK { <urn:ex:m> ?p ?o FILTER EXISTS { ?o ?q ?r } }",
    "ASK { <urn:ex:m> ?p ?o FILTER(NOT EXISTS { ?o ?q ?r }) }",
    "ASK { <urn:ex:m> ?p ?o BIND(1 AS ?x) }",
    "ASK { <urn:ex:m> ?p ?o VALUES ?o { 1 } }",
    "ASK { <urn:ex:m> ?p ?o MINUS { ?o ?q ?r } }",
    "ASK { SERVICE <urn:ex:s> { <urn:ex:m> ?p ?o } }",
    "ASK { <urn:ex:m> ?p ?o . GRAPH ?g { ?o ?q ?r } }",
    "SELECT (CONCAT(?o, ?o) AS ?x) (CONCAT(?x, ?x) AS ?y) { <urn:ex:m> ?p ?o }",  # a string doubled per step
    "SELECT (CONCAT($x, $x) AS ?y) { <urn:ex:m> ?p ?o } GROUP BY (CONCAT(?o, ?o) AS ?x)",
    'ASK { <urn:ex:m> ?p ?o FILTER(STRLEN(REPLACE(STR(?o), ".", "$0$0")) > 1) }',  # a string doubled per call
    'SELECT (REPLACE(STR(?o), ".", "$0$0") AS ?x) { <urn:ex:m> ?p ?o }',
    'SELECT ?o { <urn:ex:m> ?p ?o } ORDER BY replace(STR(?o), "a", "aa")',
    f"SELECT (CONCAT({', '.join(['?o'] * 16)}) AS ?x) {{ <urn:ex:m> ?p ?o }}",  # 17 variables read in all
    f"SELECT ?o {{ <urn:ex:m> ?p ?o FILTER(CONCAT({', '.join(['?o'] * 9)}) != CONCAT({', '.join(['?p'] * 9)})) }}",
    "SELECT (EXISTS { ?o ?q ?r } AS ?e) { <urn:ex:m> ?p ?o }",
    "SELECT ?p { <urn:ex:m> ?p ?o } HAVING EXISTS { ?o ?q ?r }",
    "SELECT ?p { <urn:ex:m> ?p ?o } ORDER BY ?p VALUES ?p { <urn:ex:q> }",
    "SELECT ?o { <urn:ex:m> ?p ?o { SELECT ?o { ?o ?q ?r } } }",
    "ASK { <urn:ex:m> ?p ?o } VALUES ?o { 1 }",
    "ASK { <urn:ex:m> ?p",
    "INSERT DATA { <urn:ex:m> <urn:ex:p> 1 }",
])
def test_anything_beyond_the_lookup_shape_is_not_read(query):
    assert branches(query) is None and patterns(query) is None


def test_a_union_of_lookups_is_read_into_one_group_per_branch():
    query = PREFIXES + """SELECT ?thing ?label WHERE {
      { ?thing a schema:Concept ; schema:prefLabel ?label }
      UNION { ?thing a schema:Organization ; schema:name ?label . FILTER(?label != "x") }
      UNION { :m schema:name ?label }
      FILTER(lang(?label) = "ar") }"""
    assert branches(query) == [
        [Pattern(var("thing"), iri(RDF_TYPE), iri(SCHEMA + "Concept")),
         Pattern(var("thing"), iri(SCHEMA + "prefLabel"), var("label"))],
        [Pattern(var("thing"), iri(RDF_TYPE), iri(SCHEMA + "Organization")),
         Pattern(var("thing"), iri(SCHEMA + "name"), var("label"))],
        [Pattern(iri("urn:ex:m"), iri(SCHEMA + "name"), var("label"))],
    ]
    assert patterns(query) is None, "not one group"
    # one braced group is the group itself; in a GRAPH too
    assert branches("ASK { { <urn:ex:m> ?p ?o } }") == [[Pattern(iri("urn:ex:m"), var("p"), var("o"))]]
    assert branches("ASK { GRAPH ?g { { <urn:ex:m> ?p ?o } UNION { <urn:ex:n> ?p ?o } } }") == [
        [Pattern(iri("urn:ex:m"), var("p"), var("o"))], [Pattern(iri("urn:ex:n"), var("p"), var("o"))]]


# --------------------------------------------------------------------------------------------
# The release's fan-out figures, and the estimate
# --------------------------------------------------------------------------------------------

def _dump(built) -> Dataset:
    return _parsed(str(built.file("dataset.trig")))


@lru_cache(maxsize=2)
def _parsed(path: str) -> Dataset:
    dataset = Dataset()
    dataset.parse(path, format="trig")
    return dataset


def test_the_releases_fan_out_figures_are_the_largest_rdflib_counts_in_its_dump(built):
    """Computed at build time by Oxigraph; checked against rdflib's reading of the TriG dump."""
    out, into, out_any, in_any = Counter(), Counter(), Counter(), Counter()
    for s, p, o, _ in _dump(built).quads((None, None, None, None)):
        out[(str(p), s)] += 1
        into[(str(p), o)] += 1
        out_any[s] += 1
        in_any[o] += 1
    expected_out, expected_in = {}, {}
    for (p, _), n in out.items():
        expected_out[p] = max(expected_out.get(p, 0), n)
    for (p, _), n in into.items():
        expected_in[p] = max(expected_in.get(p, 0), n)
    figures = built.manifest[light_queries.MANIFEST_KEY]
    assert figures == {"out": expected_out, "in": expected_in,
                       "out_any": max(out_any.values()), "in_any": max(in_any.values())}


def _first_meeting(store) -> str:
    rows = store.query(f"SELECT ?m {{ ?m a <{SCHEMA}Event> }} ORDER BY ?m LIMIT 1", use_default_graph_as_union=True)
    return next(iter(rows))["m"].value


def test_a_join_from_a_constant_is_light_and_a_scan_is_not(built):
    store = built.open_store()
    figures = built.manifest[light_queries.MANIFEST_KEY]
    meeting = _first_meeting(store)
    statements = sum(1 for _ in _dump(built).quads((_ref(meeting), None, None, None)))

    def estimate(query, limit=1000):
        return light_queries.estimated_bindings(patterns(PREFIXES + query), store, figures, limit)

    # a constant subject: its statements, counted exactly
    assert estimate(f"CONSTRUCT {{ <{meeting}> ?p ?o }} WHERE {{ <{meeting}> ?p ?o }}") == statements
    assert estimate(f"ASK {{ <{meeting}> ?p ?o }}", limit=statements - 1) is None
    # through a bound variable: the predicate's largest fan-out, per solution so far
    places = sum(1 for _ in _dump(built).quads((_ref(meeting), _ref(SCHEMA + "location"), None, None)))
    per_place = figures["out"][SCHEMA + "address"]
    assert estimate(f"ASK {{ <{meeting}> schema:location ?place . ?place schema:address ?a }}") == \
        places + places * per_place
    # nothing to start from: a scan, never light
    assert estimate("ASK { ?s ?p ?o }") is None
    assert estimate("ASK { ?s schema:name ?name }") is None
    # a constant object: its statements, counted up to the limit
    events = sum(1 for _ in _dump(built).quads((None, _ref(RDF_TYPE), _ref(SCHEMA + "Event"), None)))
    assert estimate("SELECT ?m { ?m a schema:Event }") == events
    assert estimate("SELECT ?m { ?m a schema:Event }", limit=events - 1) is None


def test_a_union_is_light_when_its_branches_together_are(built):
    store = built.open_store()
    figures = built.manifest[light_queries.MANIFEST_KEY]
    meeting = _first_meeting(store)
    statements = sum(1 for _ in _dump(built).quads((_ref(meeting), None, None, None)))

    def light(query: str, limit: int) -> bool:
        text = analyse(PREFIXES + query)
        return light_queries.is_light(text.tokens, text.prefixes, store, figures, limit)

    lookup = f"{{ <{meeting}> ?p ?o }}"
    assert light(f"SELECT * {{ {lookup} UNION {lookup} }}", 2 * statements)
    assert not light(f"SELECT * {{ {lookup} UNION {lookup} }}", 2 * statements - 1), "each fits, not both"
    assert not light(f"SELECT * {{ {lookup} UNION {{ ?s schema:name ?o }} }}", 1000), "a branch is a scan"


def test_no_query_is_light_without_fan_out_figures_or_with_the_setting_at_zero(built):
    store = built.open_store()
    text = analyse(f"ASK {{ <{_first_meeting(store)}> ?p ?o }}")
    figures = built.manifest[light_queries.MANIFEST_KEY]
    assert light_queries.is_light(text.tokens, text.prefixes, store, figures, 1000)
    assert not light_queries.is_light(text.tokens, text.prefixes, store, None, 1000)  # a release built before
    assert not light_queries.is_light(text.tokens, text.prefixes, store, figures, 0)


def _ref(value: str):
    from rdflib import URIRef
    return URIRef(value)


# --------------------------------------------------------------------------------------------
# Over HTTP: the worker answers light queries, the evaluators the others, the same bytes
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def inline(built, settings):
    live = _live(settings, LODPUB_SPARQL_CACHE_BYTES=0)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def evaluators_only(built, settings):
    live = _live(settings, LODPUB_SPARQL_CACHE_BYTES=0, LODPUB_INLINE_QUERY_MAX_BINDINGS=0)
    yield live
    live.stop()


def _evaluations(url: str) -> dict[str, float]:
    values = samples(url)
    return {where: values.get(("lodpub_sparql_evaluations_total", (("where", where),)), 0.0)
            for where in ("worker", "evaluator")}


def test_a_light_query_is_answered_by_the_worker_and_a_scan_by_an_evaluator(inline, built):
    meeting = _first_meeting(built.open_store())
    describe = f"CONSTRUCT {{ <{meeting}> ?p ?o }} WHERE {{ <{meeting}> ?p ?o }}"
    before = _evaluations(inline.url)
    response = requests.get(inline.url + "/sparql", params={"query": describe}, headers={"Accept": "text/turtle"})
    assert response.status_code == 200
    assert parse_graph(response.content, "text/turtle").isomorphic(reference_graph(built, describe))
    middle = _evaluations(inline.url)
    assert (middle["worker"] - before["worker"], middle["evaluator"] - before["evaluator"]) == (1, 0)
    response = requests.get(inline.url + "/sparql", params={"query": "ASK { ?s ?p ?o }"})
    assert response.json()["boolean"] is True
    after = _evaluations(inline.url)
    assert (after["worker"] - middle["worker"], after["evaluator"] - middle["evaluator"]) == (0, 1)


def test_a_deeply_nested_lookup_is_left_to_the_evaluators_stacks(inline, built):
    """A lookup's FILTER nesting 990 function calls (within the endpoint's nesting limit)
    overflowed a request thread's stack and killed the worker that evaluated it."""
    meeting = _first_meeting(built.open_store())
    depth, tail = 990, ', "b")' * 990
    query = f"ASK {{ <{meeting}> ?p ?o FILTER(STRLEN({'CONCAT(' * depth}STR(?o){tail}) > {depth}) }}"
    response = _answered_by_an_evaluator(inline, query)
    assert response.status_code == 200 and response.json()["boolean"] is True
    assert requests.get(inline.url + "/health/ready").status_code == 200


def _answered_by_an_evaluator(inline, query: str) -> requests.Response:
    """The answer to `query` POSTed, checked to come from an evaluator, not the worker."""
    before = _evaluations(inline.url)
    response = requests.post(inline.url + "/sparql", data={"query": query},
                             headers={"Accept": "application/sparql-results+json"}, timeout=60)
    after = _evaluations(inline.url)
    assert (after["worker"] - before["worker"], after["evaluator"] - before["evaluator"]) == (0, 1)
    return response


def test_a_lookup_that_builds_a_huge_string_is_stopped_at_the_time_limit(inline, built):
    """Each REPLACE doubles the meeting's name: 24 of them, in one small FILTER on a lookup, ran
    on a request thread for minutes (no time limit can stop one) and grew a gigabyte string."""
    meeting = _first_meeting(built.open_store())
    doubled = "STR(?o)"
    for _ in range(24):
        doubled = f'REPLACE({doubled}, ".", "$0$0")'
    query = f"ASK {{ <{meeting}> <https://schema.org/name> ?o FILTER(STRLEN({doubled}) > 0) }}"
    response = _answered_by_an_evaluator(inline, query)
    assert response.status_code == 503 and response.json()["title"] == "Query timed out"
    assert requests.get(inline.url + "/health/ready").status_code == 200


def test_a_long_lookup_is_left_to_the_evaluators(inline, built):
    """A lookup's constants are copied once per solution by the expressions using them: a text
    longer than MAX_TEXT_CHARS goes to an evaluator, which the time limit can stop."""
    meeting = _first_meeting(built.open_store())
    padding = "x" * light_queries.MAX_TEXT_CHARS
    query = f'ASK {{ <{meeting}> ?p ?o FILTER(STRLEN(CONCAT(STR(?o), "{padding}")) > 0) }}'
    response = _answered_by_an_evaluator(inline, query)
    assert response.status_code == 200 and response.json()["boolean"] is True


def test_a_union_of_lookups_is_answered_by_the_worker_as_rdflib_answers_it(inline, built):
    """The benchmark's Arabic labels query: concepts' and organisations' names, a UNION."""
    query = """PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
PREFIX schema: <https://schema.org/>
SELECT ?thing ?label WHERE {
  { ?thing a skos:Concept ; skos:prefLabel ?label } UNION { ?thing a schema:Organization ; schema:name ?label }
  FILTER(lang(?label) = "ar") }"""
    before = _evaluations(inline.url)
    response = requests.get(inline.url + "/sparql", params={"query": query},
                            headers={"Accept": "application/sparql-results+json"})
    assert response.status_code == 200
    assert _evaluations(inline.url)["worker"] - before["worker"] == 1
    rows = solution_rows(parse_results(response.content, "application/sparql-results+json"))
    assert rows == reference_select(built, query)[1] and len(rows) > 10


@pytest.mark.parametrize("form, formats", [
    ("select", ["json", "xml", "csv", "tsv"]),
    ("ask", ["json", "xml", "csv"]),
    ("construct", ["turtle", "ntriples", "rdfxml", "jsonld"]),
    ("aggregate", ["json", "xml", "csv", "tsv"]),
])
def test_the_worker_answers_light_queries_with_the_evaluators_bytes(inline, evaluators_only, built, form, formats):
    meeting = _first_meeting(built.open_store())
    query = {
        "select": f"SELECT ?p ?o WHERE {{ <{meeting}> ?p ?o }} ORDER BY ?p ?o",
        "ask": f"PREFIX schema: <{SCHEMA}> ASK {{ <{meeting}> a schema:Event ; schema:location ?place }}",
        "construct": f"CONSTRUCT {{ <{meeting}> ?p ?o }} WHERE {{ <{meeting}> ?p ?o }}",
        "aggregate": f"SELECT ?p (COUNT(?o) AS ?n) (MIN(STR(?o)) AS ?first) WHERE {{ <{meeting}> ?p ?o }} "
                     "GROUP BY ?p HAVING (COUNT(?o) > 0) ORDER BY DESC(?n) ?p",
    }[form]
    before = _evaluations(inline.url)
    for format_name in formats:
        ours = requests.get(inline.url + "/sparql", params={"query": query, "format": format_name})
        reference = requests.get(evaluators_only.url + "/sparql", params={"query": query, "format": format_name})
        assert ours.status_code == reference.status_code == 200
        assert ours.headers["Content-Type"] == reference.headers["Content-Type"]
        assert ours.content == reference.content, format_name
    assert _evaluations(inline.url)["worker"] - before["worker"] == len(formats)
    if form in ("select", "aggregate"):
        assert solution_rows(parse_results(ours.content, "text/tab-separated-values")) == \
            reference_select(built, query)[1]


def test_a_light_query_takes_none_of_the_clients_slots(built, settings):
    """The per-client limit shares out the evaluators: a client whose one slot is busy with a
    runaway still gets its lookups answered, and its other heavy queries a 429."""
    live = _live(settings, LODPUB_SPARQL_CACHE_BYTES=0, LODPUB_MAX_CONCURRENT_QUERIES_PER_CLIENT=1,
                 LODPUB_QUERY_TIMEOUT=3, LODPUB_SPARQL_MEMORY_MB=8192)
    try:
        url = live.url + "/sparql"
        meeting = _first_meeting(built.open_store())
        with ThreadPoolExecutor(1) as pool:
            runaway = pool.submit(requests.post, url, data={"query": RUNAWAY}, timeout=30)
            time.sleep(0.5)
            light = requests.get(url, params={"query": f"ASK {{ <{meeting}> ?p ?o }}"}, timeout=30)
            heavy = requests.get(url, params={"query": "ASK { ?s ?p ?o } # another"}, timeout=30)
            assert runaway.result().status_code == 503
        assert (light.status_code, light.json()["boolean"]) == (200, True)
        assert heavy.status_code == 429
    finally:
        live.stop()
