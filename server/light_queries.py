"""Which queries are light enough to be answered in the worker, without an evaluator.

Queries are evaluated in separate processes so that they can be stopped at the time limit
(server/evaluators.py). For a lookup (one meeting's statements, an ASK about one thing) that
round trip is much of the cost: the worker's part of it, the evaluator's CPU and two process
switches came to 28 % of the CPU of an uncached ASK at 1M (docs/performance.md, "Light
queries"). A query whose work the data and its text bound cannot run away, so the worker evaluates
it on its own store handle. A query is light when:

- its text has the lookup shape that server/query_patterns.py reads (one group of triple
  patterns and FILTERs, or a UNION of such groups; no OPTIONAL, paths, subqueries, SERVICE …);
- its patterns can be joined one after another, each from something already known: a constant
  subject or object, counted in the store (the count stops past the bound), or a variable bound
  by an earlier pattern, bounded by the largest fan-out of that predicate in the release
  (computed when the release is built: `fanout_statistics`);
- the solutions of those steps, summed over the UNION's branches (each joined on its own),
  stay within `inline_query_max_bindings` (default 1,000; 0 sends every query to the
  evaluators);
- its brackets nest at most MAX_NESTING deep. A request thread has the default 8 MiB stack,
  and Oxigraph's parser and evaluator recurse ~8 KiB per nested call: a FILTER nesting ~990
  function calls overflowed it and killed the worker (segfault), where an evaluator's 256 MiB
  stack answers it;
- one solution's expressions cannot build a string much longer than what they read: no
  REPLACE, a few variables read in all (server/query_patterns.py), and a text of at most
  MAX_TEXT_CHARS. The worker cannot stop a query at the time limit, so what it evaluates must
  be bounded by the data and the text alone.

Everything else, and every query of a release built without these figures or served from a
remote store, goes to the evaluators as before. The estimate is an upper bound on what a join
from the constants produces; it assumes Oxigraph starts from the bound patterns, as its join
ordering does. The verdict is kept per query text and release.
"""
from __future__ import annotations

import pyoxigraph as ox

from .query_patterns import Pattern, union_branches

#: what the release's manifest keeps under this key (see fanout_statistics)
MANIFEST_KEY = "fanout"
#: the deepest bracket nesting of a query evaluated on a request thread's stack
MAX_NESTING = 64
#: the longest query text evaluated on a request thread: its constants are copied once per
#: solution by the expressions that use them (`CONCAT(?x, "…")`)
MAX_TEXT_CHARS = 4096

_EVERY_QUAD = "{ { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } }"


def fanout_statistics(store: ox.Store) -> dict:
    """The largest number of statements one subject has with each predicate (`out`), one object
    with each predicate (`in`), and with any predicate (`out_any`, `in_any`), counting a
    statement once per graph it is in (an upper bound for every dataset a query can ask for)."""
    def per_predicate(position: str) -> dict[str, int]:
        rows = store.query(f"""SELECT ?p (MAX(?n) AS ?most) {{
            SELECT ?p ?{position} (COUNT(*) AS ?n) {_EVERY_QUAD} GROUP BY ?p ?{position} }} GROUP BY ?p ORDER BY ?p""")
        return {row["p"].value: int(row["most"].value) for row in rows}

    def any_predicate(position: str) -> int:
        rows = list(store.query(f"""SELECT (MAX(?n) AS ?most) {{
            SELECT ?{position} (COUNT(*) AS ?n) {_EVERY_QUAD} GROUP BY ?{position} }}"""))
        most = rows[0]["most"] if rows else None
        return int(most.value) if most is not None else 0

    return {"out": per_predicate("s"), "in": per_predicate("o"),
            "out_any": any_predicate("s"), "in_any": any_predicate("o")}


def estimated_bindings(patterns: list[Pattern], store: ox.Store, fanout: dict, limit: int) -> int | None:
    """The solutions of a join from the constants, summed over its steps; None when a pattern
    cannot be reached from a constant or the sum passes `limit`."""
    exact = {pattern: _count(pattern, store, limit) for pattern in patterns}
    bound: set[str] = set()
    remaining = list(patterns)
    rows = 1
    work = 0
    while remaining:
        choices = [(f, p) for p in remaining if (f := _fanout(p, bound, exact[p], fanout)) is not None]
        if not choices:
            return None
        step, pattern = min(choices, key=lambda choice: choice[0])
        remaining.remove(pattern)
        bound.update(term.value for term in (pattern.subject, pattern.predicate, pattern.object) if term.kind == "var")
        rows *= step
        work += rows
        if work > limit:
            return None
    return work


def is_light(tokens: tuple, prefixes: dict[str, str], store, fanout: dict | None, limit: int) -> bool:
    """Whether the query these lexer tokens spell is light (see the module's docstring)."""
    if limit <= 0 or not fanout or not isinstance(store, ox.Store):
        return False
    branches = union_branches(tokens, prefixes)
    if not branches or not all(branches):
        return False
    budget = limit
    try:
        for patterns in branches:
            work = estimated_bindings(patterns, store, fanout, budget)
            if work is None:
                return False
            budget -= work
    except (ValueError, SyntaxError):  # not a valid IRI: Oxigraph will say so, from an evaluator
        return False
    return True


def _fanout(pattern: Pattern, bound: set[str], exact: int | None, fanout: dict) -> int | None:
    """How many solutions the pattern adds per solution so far, or None if nothing anchors it."""
    subject, predicate, object_ = pattern.subject, pattern.predicate, pattern.object
    predicate_iri = predicate.value if predicate.kind == "iri" else None
    bounds = [] if exact is None else [exact]
    if subject.kind == "var" and subject.value in bound:
        bounds.append(fanout["out"].get(predicate_iri, 0) if predicate_iri else fanout["out_any"])
    if object_.kind == "literal" or (object_.kind == "var" and object_.value in bound):
        bounds.append(fanout["in"].get(predicate_iri, 0) if predicate_iri else fanout["in_any"])
    return min(bounds) if bounds else None


def _count(pattern: Pattern, store: ox.Store, limit: int) -> int | None:
    """The statements matching a pattern with a constant subject, or a constant IRI object
    (counted by Oxigraph up to limit + 1); None for any other pattern."""
    subject, object_ = pattern.subject, pattern.object
    if subject.kind == "literal":
        return 0
    if subject.kind != "iri" and object_.kind != "iri":
        return None
    triple = " ".join(str(ox.NamedNode(term.value)) if term.kind == "iri" else variable
                      for term, variable in zip((subject, pattern.predicate, object_), ("?s", "?p", "?o")))
    rows = store.query(f"SELECT (COUNT(*) AS ?n) {{ SELECT * {{ {{ {triple} }} UNION {{ GRAPH ?g {{ {triple} }} }} }} "
                       f"LIMIT {limit + 1} }}")
    return int(next(iter(rows))["n"].value)
