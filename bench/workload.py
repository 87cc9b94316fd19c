"""The SPARQL mix and the document mix, with the right answer of each request.

Right answers come from an oracle: the release's own Oxigraph store, opened read-only in this
process and queried with the union of all graphs as default graph (the project's contract).
Each request carries a `check(status, headers, body)` that parses the answer and compares it
with the oracle's; it returns None when the answer is right, else a short reason.
"""
from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyoxigraph as ox

SPARQL_JSON = "application/sparql-results+json"
TURTLE = "text/turtle"
JSONLD = "application/ld+json"
SCHEMA = "https://schema.org/"


def prologue(base: str) -> str:
    return (f"PREFIX schema: <{SCHEMA}>\nPREFIX unm: <{base}ontology#>\n"
            "PREFIX dcterms: <http://purl.org/dc/terms/>\nPREFIX skos: <http://www.w3.org/2004/02/skos/core#>\n"
            f"PREFIX organization: <{base}id/organization/>\nPREFIX topic: <{base}id/topic/>\n")


@dataclass
class Sample:
    """The things the mixes ask about, and facts about them from the oracle."""
    meeting: str          # IRI
    meeting_name_ar: str
    commission: str       # IRI
    commission_name_ar: str

    def doc_path(self, iri: str, base: str) -> str:
        return "/doc/" + iri[len(base) + len("id/"):]


def _bounded_child(store_path: str, text: str, connection) -> None:
    try:
        results = ox.Store.read_only(store_path).query(text, use_default_graph_as_union=True)
        if isinstance(results, ox.QueryBoolean):
            connection.send(("boolean", bool(results)))
        elif isinstance(results, ox.QuerySolutions):
            names = [v.value for v in results.variables]
            connection.send(("rows", [{n: _term(s[n]) for n in names if s[n] is not None} for s in results]))
        else:
            connection.send(("triples", None))
    except Exception as error:  # noqa: BLE001 - reported to the parent
        connection.send(("error", str(error)))


class Oracle:
    def __init__(self, store_path: Path, base: str):
        self.store_path = str(store_path)
        self.store = ox.Store.read_only(self.store_path)
        self.base = base

    def bounded(self, text: str, seconds: float):
        """("rows", [...]) / ("boolean", b) / ("triples", None) / ("error", why), or None if the
        oracle itself needs more than `seconds` (an Oxigraph query cannot be interrupted in-process)."""
        import multiprocessing
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe(duplex=False)
        process = context.Process(target=_bounded_child, args=(self.store_path, text, child), daemon=True)
        process.start()
        child.close()
        try:
            if parent.poll(seconds):
                try:
                    return parent.recv()
                except EOFError:
                    return ("error", "the oracle process died")
            return None
        finally:
            if process.is_alive():
                process.kill()
            process.join(5)

    def query(self, text: str):
        return self.store.query(text, use_default_graph_as_union=True)

    def expand(self, text: str) -> str:
        """The query with its text search blocks answered from the release's index, as our
        endpoint does before evaluating (server/search_service.py); unchanged without one."""
        from server import search_service
        release = Path(self.store_path).parent
        return search_service.expand(text, self.base, search_service.release_index(release))

    def sample(self) -> Sample:
        p = prologue(self.base)
        row = next(iter(self.query(p + """SELECT ?m ?name WHERE {
            ?m a schema:Event ; unm:hasOutcomeDocument ?d ; schema:organizer organization:escwa ;
               schema:name ?name . FILTER(lang(?name) = "ar") } ORDER BY ?m LIMIT 1""")))
        commission = self.base + "id/organization/escwa"
        name = next(iter(self.query(p + f'SELECT ?n WHERE {{ <{commission}> schema:name ?n FILTER(lang(?n)="ar") }}')))
        return Sample(row["m"].value, row["name"].value, commission, name["n"].value)

    def rows(self, text: str) -> list[dict]:
        solutions = self.query(text)
        names = [v.value for v in solutions.variables]
        return [{n: _term(s[n]) for n in names if s[n] is not None} for s in solutions]


def _term(term) -> str:
    if isinstance(term, ox.Literal):
        if term.language:
            return f"{term.value}@{term.language.lower()}"
        return term.value
    return term.value


def _json_rows(body: bytes) -> list[dict]:
    data = json.loads(body)
    rows = []
    for binding in data["results"]["bindings"]:
        row = {}
        for var, term in binding.items():
            lang = term.get("xml:lang") or term.get("lang")
            row[var] = f"{term['value']}@{lang.lower()}" if lang else term["value"]
        rows.append(row)
    return rows


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _number(value: str) -> float:
    return float(value)


# -- checks --------------------------------------------------------------------------------
def check_status(status: int) -> str | None:
    return None if status == 200 else f"HTTP {status}"


def same_rows(expected: list[dict], numeric: tuple[str, ...] = (), concat_separator: str | None = None) -> Callable:
    """The same multiset of rows. Values of `numeric` variables compare as numbers; with a
    GROUP_CONCAT separator, a value compares as the sorted list of its parts (the order of
    GROUP_CONCAT is not defined by SPARQL)."""
    def value(k, v):
        if k in numeric:
            return _number(v)
        if concat_separator and concat_separator in v:
            return concat_separator.join(sorted(v.split(concat_separator)))
        return v

    def norm(rows):
        return sorted(tuple(sorted((k, value(k, v)) for k, v in r.items())) for r in rows)
    want = norm(expected)

    def check(status, headers, body):
        if status != 200:
            return f"HTTP {status}"
        try:
            got = norm(_json_rows(body))
        except (ValueError, KeyError, TypeError) as error:
            return f"unparsable results: {error}"
        if got != want:
            return f"{len(got)} rows, expected {len(want)} (or different values)"
        return None
    return check


def boolean(expected: bool) -> Callable:
    def check(status, headers, body):
        if status != 200:
            return f"HTTP {status}"
        try:
            value = json.loads(body)["boolean"]
        except (ValueError, KeyError) as error:
            return f"unparsable boolean result: {error}"
        return None if value is expected else f"boolean {value}, expected {expected}"
    return check


def triples_about(subject: str, name_ar: str, expected_count: int | None, base: str, fmt: str) -> Callable:
    """The answer parses as RDF, names `subject` in Arabic, and (if given) has that many triples about it."""
    def check(status, headers, body):
        if status != 200:
            return f"HTTP {status}"
        if fmt == "jsonld":
            # compacted JSON-LD refers to a remote @context that is not fetched here: check the JSON
            # parses, names the subject (full or compact IRI) and holds its Arabic name
            try:
                strings = set(_strings(json.loads(body)))
            except ValueError as error:
                return f"unparsable JSON-LD: {error}"
            slug = subject.rsplit("/", 1)[-1]
            if not any(s.endswith(slug) for s in strings):
                return f"{subject} is not in the JSON-LD"
            return None if name_ar in strings else f"the Arabic name of {subject} is missing"
        try:
            triples = list(ox.parse(body, format=ox.RdfFormat.TURTLE, base_iri=base))
        except (SyntaxError, ValueError) as error:
            return f"unparsable {fmt}: {str(error)[:120]}"
        node = ox.NamedNode(subject)
        about = {(t.predicate, t.object) for t in triples if t.subject == node}
        if (ox.NamedNode(SCHEMA + "name"), ox.Literal(name_ar, language="ar")) not in about:
            return f"the Arabic name of {subject} is missing"
        if expected_count is not None and len(about) < expected_count:
            return f"{len(about)} triples about the subject, expected {expected_count}"
        return None
    return check


def html_names(name_ar: str) -> Callable:
    forms = {name_ar, html.escape(name_ar), html.escape(name_ar, quote=False)}

    def check(status, headers, body):
        if status != 200:
            return f"HTTP {status}"
        if "text/html" not in headers.get("content-type", ""):
            return f"content-type {headers.get('content-type')}"
        text = body.decode("utf-8", "replace")
        if "</html>" not in text.lower():
            return "truncated HTML"
        return None if any(f in text for f in forms) else "the Arabic name is missing from the page"
    return check


# -- the mixes -------------------------------------------------------------------------------
@dataclass
class Item:
    """One request of a mix, independent of the server: how to ask and how to check."""
    name: str
    mix: str                 # "sparql" or "documents"
    query: str | None        # SPARQL query, for SPARQL servers
    accept: str
    check: Callable
    doc_path: str | None = None   # document path on our server (documents mix)
    replay_ext: str = "srj"       # file extension when its bytes are replayed by nginx/bare Flask
    ours_only: bool = False       # uses our text search service, which the SPARQL anchors lack


#: example queries left out of a run, and why
SKIPPED: dict[str, str] = {}


def sparql_mix(oracle: Oracle, sample: Sample, queries_dir: Path | None, oracle_seconds: float = 30.0) -> list[Item]:
    p = prologue(oracle.base)
    m = sample.meeting
    items: list[Item] = []
    describe = f"CONSTRUCT {{ <{m}> ?p ?o }} WHERE {{ <{m}> ?p ?o }}"
    n_about = len({(t.predicate, t.object) for t in oracle.query(describe)})
    items.append(Item("describe-meeting", "sparql", describe, TURTLE,
                      triples_about(m, sample.meeting_name_ar, n_about, oracle.base, "ttl"), replay_ext="ttl"))
    labels = p + """SELECT ?thing ?label WHERE {
  { ?thing a skos:Concept ; skos:prefLabel ?label } UNION { ?thing a schema:Organization ; schema:name ?label }
  FILTER(lang(?label) = "ar") }"""
    items.append(Item("labels-ar", "sparql", labels, SPARQL_JSON, same_rows(oracle.rows(labels))))
    by_commission = p + """SELECT ?commission (COUNT(DISTINCT ?meeting) AS ?meetings) WHERE {
  ?meeting a schema:Event ; schema:organizer ?commission . ?commission a unm:RegionalCommission }
GROUP BY ?commission"""
    items.append(Item("count-by-commission", "sparql", by_commission, SPARQL_JSON,
                      same_rows(oracle.rows(by_commission), numeric=("meetings",))))
    join = p + """SELECT DISTINCT ?meeting ?name WHERE {
  ?meeting schema:organizer organization:escwa ; unm:hasObjective ?objective ; schema:name ?name .
  ?objective dcterms:subject topic:climate-action .
  FILTER(lang(?name) = "en") }"""
    items.append(Item("join-4-patterns", "sparql", join, SPARQL_JSON, same_rows(oracle.rows(join))))
    ask = p + f"ASK {{ <{m}> a schema:Event ; schema:location ?place . ?place schema:address ?address }}"
    items.append(Item("ask", "sparql", ask, SPARQL_JSON, boolean(bool(oracle.query(ask)))))
    contains = p + """SELECT (COUNT(?text) AS ?n) WHERE {
  ?objective a unm:Objective ; schema:text ?text . FILTER(CONTAINS(LCASE(STR(?text)), "housing")) }"""
    items.append(Item("text-contains", "sparql", contains, SPARQL_JSON,
                      same_rows(oracle.rows(contains), numeric=("n",))))
    # text search (ours only): the last words of the sample meeting's Arabic name, harakat and
    # hamza seats dropped as people type them; the oracle evaluates the pre-expanded query
    words = " ".join(sample.meeting_name_ar.split()[-2:])
    typed = "".join(c for c in words if not "\u064B" <= c <= "\u0652").replace("إ", "ا").replace("أ", "ا")
    search = p + f"""SELECT ?thing ?score ?text WHERE {{
  SERVICE <{oracle.base}search> {{ ?thing unm:matches "{typed}" ; unm:limit 100 ; unm:score ?score ; unm:matchedText ?text }} }}"""
    items.append(Item("text-search", "sparql", search, SPARQL_JSON,
                      same_rows(oracle.rows(oracle.expand(search)), numeric=("score",)), ours_only=True))
    if queries_dir and queries_dir.is_dir():
        for path in sorted(queries_dir.glob("*.rq")):
            text = path.read_text(encoding="utf-8")
            name = "example-" + path.stem
            answer = oracle.bounded(oracle.expand(text), oracle_seconds)
            if answer is None:
                SKIPPED[name] = f"the oracle (pyoxigraph, in-process) needs more than {oracle_seconds:.0f} s"
                continue
            kind, value = answer
            ours_only = oracle.expand(text) != text
            if kind == "boolean":
                items.append(Item(name, "sparql", text, SPARQL_JSON, boolean(value), ours_only=ours_only))
            elif kind == "rows":
                separator = re.search(r'separator\s*=\s*"([^"]+)"', text, re.IGNORECASE)
                items.append(Item(name, "sparql", text, SPARQL_JSON,
                                  same_rows(value, concat_separator=separator and separator.group(1)),
                                  ours_only=ours_only))
    return items


def document_mix(oracle: Oracle, sample: Sample) -> list[Item]:
    items = []
    for label, iri, name in (("meeting", sample.meeting, sample.meeting_name_ar),
                             ("commission", sample.commission, sample.commission_name_ar)):
        construct = f"CONSTRUCT {{ <{iri}> ?p ?o }} WHERE {{ <{iri}> ?p ?o }}"
        n_about = len({(t.predicate, t.object) for t in oracle.query(construct)})
        path = sample.doc_path(iri, oracle.base)
        items.append(Item(f"{label}.html", "documents", None, "text/html", html_names(name), doc_path=path + ".html",
                          replay_ext="html"))
        items.append(Item(f"{label}.jsonld", "documents", construct, JSONLD,
                          triples_about(iri, name, None, oracle.base, "jsonld"), doc_path=path + ".jsonld",
                          replay_ext="jsonld"))
        # our document may hold more than the subject's own triples; it must hold all of them
        items.append(Item(f"{label}.ttl", "documents", construct, TURTLE,
                          triples_about(iri, name, n_about, oracle.base, "ttl"), doc_path=path + ".ttl",
                          replay_ext="ttl"))
    return items


def crawl_mix(oracle: Oracle, limit: int = 2000) -> list[Item]:
    """Distinct meetings, each asked once per pass: documents that are not in any cache yet.
    For our server `.html` of each; for the SPARQL anchors the CONSTRUCT of each, in Turtle."""
    p = prologue(oracle.base)
    rows = oracle.rows(p + f"""SELECT ?m ?name WHERE {{ ?m a schema:Event ; unm:hasOutcomeDocument ?d ;
        schema:name ?name . FILTER(lang(?name) = "ar") }} ORDER BY ?m LIMIT {limit}""")
    items = []
    for row in rows:
        iri, name = row["m"], row["name"].rsplit("@", 1)[0]
        construct = f"CONSTRUCT {{ <{iri}> ?p ?o }} WHERE {{ <{iri}> ?p ?o }}"
        path = "/doc/" + iri[len(oracle.base) + len("id/"):]
        items.append(Item("crawl", "crawl", construct, TURTLE, triples_about(iri, name, None, oracle.base, "ttl"),
                          doc_path=path + ".html", replay_ext="html"))
        items[-1].html_check = html_names(name)
    return items
