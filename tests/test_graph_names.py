"""server/graph_names.py: renamed data + rewritten query + results mapped back = the original answer.

The oracle is Oxigraph itself: the real dataset (data/, ontology/) in one embedded store, and in
a second store the same release renamed by GraphNames next to another release renamed the same
way (as in a shared remote store). Every query is evaluated on the first store as the endpoint
does, and rewritten on the second with the dataset restricted to the release's stored graphs;
the answers, mapped back, must be equal.
"""
from __future__ import annotations

import re
from collections import Counter

import pyoxigraph as ox
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from server import search_service
from server.config import PROJECT_ROOT, Settings
from server.graph_names import GraphNames
from server.loading import all_quads, data_files, ontology_file, parse_files

SETTINGS = Settings()
B = SETTINGS.base
SOURCE_AR = B + "graph/meeting/source-ar"
PREFIXES = f"""PREFIX unm: <{B}ontology#>
PREFIX graph: <{B}graph/>
PREFIX base: <{B}>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
"""

QUERIES = {
    "graph join with provenance, ordered": """
        SELECT ?g ?kind (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } ?g a ?kind }
        GROUP BY ?g ?kind ORDER BY ?g ?kind""",
    "graph join in GRAPH provenance": """
        SELECT ?g ?p ?o WHERE { GRAPH <graph/provenance> { ?g ?p ?o } GRAPH ?g { ?s a ?t } }""",
    "GRAPH constant, absolute": f"SELECT ?s ?p ?o WHERE {{ GRAPH <{SOURCE_AR}> {{ ?s ?p ?o }} }}",
    "GRAPH constant, relative without BASE": "SELECT * WHERE { GRAPH <graph/meeting/source-ar> { ?s ?p ?o } }",
    "BASE": f"""BASE <{B}graph/meeting/>
        SELECT * WHERE {{ GRAPH <source-ar> {{ ?s ?p ?o }} <source-ar> ?gp ?go }}""",
    "relative BASE, then <>, ../": """BASE <graph/meeting/source-ar>
        SELECT * WHERE { GRAPH <> { ?s ?p ?o } <> ?gp ?go . OPTIONAL { <../provenance> ?pp ?po } }""",
    "relative forms": f"""BASE <{B}graph/meeting/translation?q#f>
        SELECT ?g (COUNT(*) AS ?n) WHERE {{ VALUES ?g {{ <source-ar> <./source-ar> <../meeting/./source-ar>
          <//w3id.org/un-meetings/ontology> </un-meetings/graph/provenance> <?x> <#f> <> <../../ontology> }}
          GRAPH ?g {{ ?s ?p ?o }} }} GROUP BY ?g""",
    "FROM": "SELECT ?s ?p ?o FROM <graph/meeting/source-ar> FROM <graph/meeting/translation> WHERE { ?s ?p ?o }",
    "FROM NAMED": f"""{PREFIXES}SELECT ?g (COUNT(*) AS ?n) FROM NAMED graph:meeting\\/source-ar
        FROM NAMED <{B}ontology> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }} GROUP BY ?g""",
    "FROM and FROM NAMED together": f"""{PREFIXES}SELECT * FROM graph:provenance FROM NAMED base:ontology
        WHERE {{ ?g a ?kind . GRAPH ?g {{ ?s a ?t }} }}""",
    "prefixed names with escapes": f"""{PREFIXES}SELECT ?p ?o WHERE {{
        {{ graph:meeting\\/source-ar ?p ?o }} UNION {{ base:ontology ?p ?o }} UNION {{ base:graph\\/provenance ?p ?o }} }}""",
    "PNAME_NS that is a graph": f"""PREFIX g: <{SOURCE_AR}>
        SELECT * WHERE {{ GRAPH g: {{ ?s ?p ?o }} }}""",
    "VALUES": f"""{PREFIXES}SELECT ?g ?label WHERE {{
        VALUES ?g {{ <graph/meeting/source-ar> graph:provenance base:ontology <{B}id/nothing> }}
        OPTIONAL {{ ?g ?p ?label FILTER(isLiteral(?label)) }} }}""",
    "VALUES rows": f"""{PREFIXES}SELECT * WHERE {{
        VALUES (?g ?x) {{ (graph:provenance 1) (<graph/meeting/source-ar> 2) (UNDEF 3) }} GRAPH ?g {{ ?s a ?t }} }}""",
    "IN list": f"""{PREFIXES}SELECT ?g (COUNT(*) AS ?n) WHERE {{ GRAPH ?g {{ ?s ?p ?o }}
        FILTER(?g IN (<graph/meeting/source-ar>, base:ontology)) }} GROUP BY ?g""",
    "NOT IN, sameTerm, =": f"""{PREFIXES}SELECT DISTINCT ?g WHERE {{ GRAPH ?g {{ ?s ?p ?o }}
        FILTER(?g NOT IN (graph:provenance) && !sameTerm(?g, <{SOURCE_AR}>) && ?g != base:ontology) }}""",
    "BIND a graph IRI": f"""{PREFIXES}SELECT ?x ?kind WHERE {{ BIND(graph:provenance AS ?x) OPTIONAL {{ ?x a ?kind }} }}""",
    "strings and comments are untouched": f"""{PREFIXES}
        # GRAPH <graph/meeting/source-ar> in a comment; it's "not" code
        SELECT ?g ?a ?b ?c WHERE {{ GRAPH ?g {{ ?s ?p ?o }}
          BIND("<{SOURCE_AR}>" AS ?a) BIND('graph:provenance # not a comment' AS ?b)
          BIND('''it's <graph/meeting/source-ar> \\'''' AS ?c) # <{SOURCE_AR}>
        }}""",
    "< comparisons without spaces": f"""{PREFIXES}SELECT ?g ?n WHERE {{
        {{ SELECT ?g (COUNT(*) AS ?n) WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }} GROUP BY ?g }}
        FILTER(0<?n&&?g=base:ontology&&?n>0) FILTER(?n<=?n) FILTER(?n < 3 || ?n >= 3) }}""",
    "a<b between variables": """SELECT ?a ?b WHERE { VALUES ?a { 1 2 3 } VALUES ?b { 1 2 3 } FILTER(?a<?b) }""",
    "ASK true": "ASK { GRAPH <graph/meeting/source-ar> { ?s ?p ?o } }",
    "ASK false: a stored name names nothing": f"ASK {{ GRAPH <{B}release/v2/graph/meeting/source-ar> {{ ?s ?p ?o }} }}",
    "ASK about the provenance": f"{PREFIXES}ASK {{ graph:meeting\\/source-ar a unm:SourceGraph }}",
    "CONSTRUCT": """CONSTRUCT { ?g ?p ?o . ?g <urn:x:in> <graph/provenance> } WHERE { GRAPH <graph/provenance> { ?g ?p ?o } }""",
    "DESCRIBE": "DESCRIBE <graph/meeting/source-ar> <ontology>",
    "EXISTS and a sub-query projection": f"""{PREFIXES}SELECT ?g WHERE {{
        {{ SELECT ?g (MAX(?g) AS ?m) WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }} GROUP BY ?g }}
        FILTER EXISTS {{ GRAPH ?g {{ ?x a unm:Meeting }} }}
        FILTER NOT EXISTS {{ FILTER(?g = <graph/meeting/translation>) }} }}""",
    "ORDER BY graphs": "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } } ORDER BY DESC(?g)",
    "property path over graph resources": f"""{PREFIXES}SELECT ?g ?l WHERE {{ ?g a/rdfs:label ?l }}""",
    "triple terms (SPARQL 1.2)": f"""{PREFIXES}SELECT ?t ?u WHERE {{
        BIND(<<( <graph/provenance> <urn:x:p> graph:meeting\\/source-ar )>> AS ?t)
        BIND(TRIPLE(base:ontology, <urn:x:p>, 1) AS ?u) FILTER(SUBJECT(?u)=<ontology>&&isTRIPLE(?t)) }}""",
    "\\u escape in an IRI": r"SELECT * WHERE { GRAPH <graph/meeting/source\u002Dar> { ?s ?p ?o } }",
}
ORDERED = {"graph join with provenance, ordered", "ORDER BY graphs"}


@pytest.fixture(scope="module")
def release() -> list[ox.Quad]:
    parsed = parse_files(data_files(SETTINGS) + ontology_file(SETTINGS), B)
    return all_quads(parsed)


@pytest.fixture(scope="module")
def names(release) -> GraphNames:
    return GraphNames.for_release(B, "v2", {q.graph_name.value for q in release})


@pytest.fixture(scope="module")
def stores(release, names) -> tuple[ox.Store, ox.Store]:
    original, remote = ox.Store(), ox.Store()
    original.extend(release)
    remote.extend(names.quad_forward(q) for q in release)
    older = GraphNames(B, "v1", names.graphs)  # another release in the same store
    remote.extend(older.quad_forward(q) for q in release if q.graph_name.value != SOURCE_AR)
    return original, remote


def _answer(store: ox.Store, sparql: str, names: GraphNames | None, own_dataset: bool):
    options: dict = {"base_iri": B}
    if names is not None and not own_dataset:  # the remote store: only this release's graphs
        graphs = [ox.NamedNode(names.stored(g)) for g in names.graphs]
        options.update(default_graph=graphs, named_graphs=graphs)
    elif not own_dataset:
        options["use_default_graph_as_union"] = True
    results = store.query(sparql, **options)
    if isinstance(results, ox.QueryBoolean):
        return bool(results)
    if isinstance(results, ox.QueryTriples):
        return Counter(names.triple_back(t) if names else t for t in results)
    variables = results.variables
    if names:
        return [names.solution_back(row, variables) for row in results], variables
    return [tuple(row[v] for v in variables) for row in results], variables


def _same_answer(original: ox.Store, remote: ox.Store, names: GraphNames, sparql: str, ordered: bool):
    own_dataset = names.mentions_dataset(sparql)
    rewritten = names.rewrite_query(sparql, B)
    expected = _answer(original, sparql, None, own_dataset)
    got = _answer(remote, rewritten, names, own_dataset)
    if isinstance(expected, tuple) and not ordered:
        expected, got = (Counter(expected[0]), expected[1]), (Counter(got[0]), got[1])
    assert got == expected, rewritten
    return expected


@pytest.mark.parametrize("label", QUERIES)
def test_rewritten_query_on_renamed_store_gives_the_same_answer(stores, names, label):
    expected = _same_answer(*stores, names, QUERIES[label], label in ORDERED)
    assert "false" in label or expected, "a query that finds nothing tests little"


#: the example queries a store answers (a text search is answered by the release's search index
#: before any store sees it: tests/test_search.py)
STORE_EXAMPLES = [p for p in sorted((PROJECT_ROOT / "queries").glob("*.rq"))
                  if not search_service.uses_search(p.read_text(encoding="utf-8"), B)]


@pytest.mark.parametrize("path", STORE_EXAMPLES, ids=lambda p: p.name)
def test_example_queries_give_the_same_answer(stores, names, path):
    _same_answer(*stores, names, path.read_text(encoding="utf-8"), ordered=False)  # their ORDER BY keys have ties


def test_the_renamed_store_holds_nothing_under_the_published_graph_names(stores, names):
    _, remote = stores
    assert not remote.query(f"ASK {{ {{ <{SOURCE_AR}> ?p ?o }} UNION {{ GRAPH <{SOURCE_AR}> {{ ?s ?p ?o }} }} }}")
    assert remote.query(f"ASK {{ GRAPH <{names.stored(SOURCE_AR)}> {{ ?s ?p ?o }} }}")


def test_stored_names_share_the_release_prefix_and_swap_back(names):
    assert names.stored_prefix == B + "release/v2/"
    assert names.stored(SOURCE_AR) == B + "release/v2/graph/meeting/source-ar"
    assert names.stored(B + "ontology") == B + "release/v2/ontology"
    assert names.published(names.stored(SOURCE_AR)) == SOURCE_AR
    assert names.stored(B + "ontology#Meeting") == B + "ontology#Meeting"
    assert names.published(B + "release/v1/graph/meeting/source-ar") == B + "release/v1/graph/meeting/source-ar"
    assert sorted(names.stored(g) for g in names.graphs) == [names.stored(g) for g in sorted(names.graphs)]


def test_terms_in_quoted_triples_and_datatypes_are_renamed(names):
    g, s = ox.NamedNode(SOURCE_AR), ox.NamedNode(names.stored(SOURCE_AR))
    other = ox.NamedNode(B + "id/x")
    assert names.term_back(ox.Triple(s, other, s)) == ox.Triple(g, other, g)
    assert names.term_back(ox.Literal("1", datatype=s)) == ox.Literal("1", datatype=g)
    assert names.term_back(ox.Literal("x", language="en")) == ox.Literal("x", language="en")
    assert names.term_back(ox.BlankNode("b")) == ox.BlankNode("b")
    assert names.quad_forward(ox.Quad(other, other, g, g)) == ox.Quad(other, other, s, s)


def test_a_query_without_graph_iris_is_returned_byte_for_byte(names):
    sparql = f"""{PREFIXES}BASE <{B}id/>
        SELECT ?s (STR(?o) AS ?t) WHERE {{ ?s a unm:Meeting ; ?p ?o . ?o a <{B}ontology#Outcome>
        FILTER(?o<?p && ?x<='z' || ?y>="#") BIND(<organization/escwa> AS ?e) }} # <{SOURCE_AR}>"""
    assert names.rewrite_query(sparql, B) is sparql or names.rewrite_query(sparql, B) == sparql


@pytest.mark.parametrize("sparql", [
    f'SELECT * WHERE {{ GRAPH <{SOURCE_AR}> {{ ?s ?p "unterminated }} }}',
    f"SELECT * WHERE {{ GRAPH <{SOURCE_AR}> {{ ?s ?p '''never closed }} }}",
    f"SELECT * WHERE {{ GRAPH <{SOURCE_AR}> {{ ?s ?p 'line\nbreak' }} }}",
])
def test_a_query_the_scanner_cannot_read_comes_back_unchanged(names, sparql):
    assert names.rewrite_query(sparql, B) == sparql


def test_only_the_graph_tokens_change(names):
    sparql = f"""{PREFIXES}SELECT * WHERE {{ GRAPH graph:provenance {{ ?g a ?k }} BIND("{SOURCE_AR}" AS ?s) }} # graph:provenance"""
    rewritten = names.rewrite_query(sparql, B)
    assert rewritten == sparql.replace("GRAPH graph:provenance", f"GRAPH <{B}release/v2/graph/provenance>")


def test_a_less_than_operator_before_an_iri_stays_an_operator(names):
    # "?g<" + "<S>" would read as "<<" (a quoted triple): the replacement gets a space before it
    sparql = f"SELECT * WHERE {{ FILTER(?g<<{SOURCE_AR}>) FILTER(?n<3&&?g=<ontology>) }}"
    assert names.rewrite_query(sparql, B) == (
        f"SELECT * WHERE {{ FILTER(?g< <{B}release/v2/graph/meeting/source-ar>) "
        f"FILTER(?n<3&&?g=<{B}release/v2/ontology>) }}")


RFC3986_REFERENCES = ("g:h g ./g g/ /g //g ?y g?y #s g#s g?y#s ;x g;x g;x?y#s . ./ .. ../ ../g ../.. ../../ "
                      "../../g ../../../g ../../../../g /./g /../g g. .g g.. ..g ./../g ./g/. g/./h g/../h "
                      "g;x=1/./y g;x=1/../y g?y/./x g?y/../x g#s/./x g#s/../x http:g").split() + [""]


@pytest.mark.parametrize("base", ["http://a/b/c/d;p?q", "http://a/b/c/d;p?q#f", B, B + "ontology#x"])
def test_relative_iris_resolve_as_oxigraph_resolves_them(base):
    """RFC 3986 section 5.4's examples: each, as a graph IRI, is found whichever way it is written."""
    store = ox.Store()
    for reference in RFC3986_REFERENCES:
        expected = next(iter(store.query(f"SELECT (<{reference}> AS ?x) {{}}", base_iri=base)))["x"].value
        root = re.match(r"[a-z]+://[^/]*/", expected)
        if root is None:
            continue  # g:h
        names = GraphNames(root.group(), "v", [expected])
        rewritten = names.rewrite_query(f"ASK {{ <{reference}> ?p ?o }}", base)
        assert rewritten == f"ASK {{ <{names.stored(expected)}> ?p ?o }}", (reference, expected)


def test_graphs_outside_the_base_are_refused():
    with pytest.raises(ValueError):
        GraphNames(B, "v1", ["http://example.org/graph/x"])


# --- properties: any sequence of tokens, each rewritten on its own -----------------------------
STORED_AR = B + "release/v2/graph/meeting/source-ar"
# (fragment, what the rewrite must make of it) for a query with PREFIX g: <{B}graph/>
FRAGMENTS = [
    (f"<{SOURCE_AR}>", f"<{STORED_AR}>"), (f"<{STORED_AR}>", f"<{SOURCE_AR}>"),
    ("<graph/meeting/source-ar>", f"<{STORED_AR}>"), ("g:meeting\\/source-ar", f"<{STORED_AR}>"),
    (f"<{B}ontology>", f"<{B}release/v2/ontology>"), ("<ontology#Meeting>", None), ("g:meeting", None),
    (f"<{B}release/v1/graph/meeting/source-ar>", None), ("<graph/meeting/source-ar#x>", None),
    (f'"<{SOURCE_AR}>"', None), ("'g:meeting\\/source-ar'", None), (f'"""a "" <{SOURCE_AR}> \\""""', None),
    (f"'''it''s\n<{SOURCE_AR}>'''", None), (f"# <{SOURCE_AR}> it's\n", None), ('"\\"#"', None),
    ("?g", None), ("$x", None), ("_:b", None), ("a", None), ("GRAPH", None), ("FILTER", None), ("{", None), ("}", None), ("[", None), ("]", None), ("<", None), ("<=", None), (">", None),
    ("&&", None), ("||", None), (",", None), (";", None), (".", None), ("1", None), ("2.5e-3", None),
    ("@en", None), ("^^", None), ("<<", None), (">>", None), ("true", None), ("IN", None),
]


@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40), st.sampled_from([" ", "\n", "\t "]))
@hsettings(max_examples=300, derandomize=True, database=None, deadline=None)
def test_each_token_is_rewritten_on_its_own(names, fragments, space):
    """The scanner alone: no "(", so no expression where "<" could be an operator."""
    head = f"PREFIX g: <{B}graph/>\n"
    sparql = head + space.join(text for text, _ in fragments)
    expected = head + space.join(text if new is None else new for text, new in fragments)
    assert names.rewrite_query(sparql, B) == expected


OPERANDS = [
    (f"<{SOURCE_AR}>", f"<{STORED_AR}>"), ("<graph/meeting/source-ar>", f"<{STORED_AR}>"),
    ("g:meeting\\/source-ar", f"<{STORED_AR}>"), ("<ontology>", f"<{B}release/v2/ontology>"),
    ("<graph/meeting>", None), ("g:provenance", f"<{B}release/v2/graph/provenance>"), ("?g", None), ("?n", None),
    ("3", None), (".5", None), ("'it''s'", None), ("'#'", None), ('"<g:x>"', None), ("true", None),
    (f"STR(<{SOURCE_AR}>)", f"STR(<{STORED_AR}>)"), ("(?n)", None),
]
OPERATORS = ["<", "<=", ">", ">=", "=", "!=", "&&", "||", "+", "-", "*", "/"]


@given(st.lists(st.tuples(st.sampled_from(OPERATORS), st.sampled_from(OPERANDS)), max_size=12),
       st.sampled_from(OPERANDS), st.sampled_from(["", " "]), st.sampled_from(["FILTER(", "BIND(", "SELECT ?x ("]))
@hsettings(max_examples=400, derandomize=True, database=None, deadline=None)
def test_operators_and_operands_without_spaces(names, rest, first, space, opening):
    """Inside an expression "<" after an operand is the operator, whatever follows it."""
    pieces = [first] + [piece for pair in rest for piece in pair]
    head = f"PREFIX g: <{B}graph/>\nSELECT * WHERE {{ {opening}"
    sparql, expected = head, head
    for i, piece in enumerate(pieces):
        text, new = piece if isinstance(piece, tuple) else (piece, None)
        glued = space if i else ""
        if not glued and text[0] in "-." and isinstance(pieces[i - 1], tuple) and pieces[i - 1][0].startswith("g:"):
            glued = " "  # "g:a-" would be one prefixed name
        sparql += glued + text
        if new is not None and new.startswith("<") and not glued and expected.endswith("<"):
            new = " " + new
        expected += glued + (text if new is None else new)
    assert names.rewrite_query(sparql + ") }", B) == expected + ") }"


@given(st.text(alphabet=st.sampled_from(list("<>=?$'\"#\\:/ \n(){}[]aAgrph0.-_&|^@")), max_size=60))
@hsettings(max_examples=300, derandomize=True, database=None, deadline=None)
def test_any_text_is_answered_without_raising(names, text):
    assert isinstance(names.rewrite_query(f"SELECT * WHERE {{ {text} }}", B), str)
