"""Release-scoped graph names: how a release's named graphs are called in a remote SPARQL store.

Several releases share one remote store, so release V's graph ``{base}graph/a/b`` is stored as
``{base}release/V/graph/a/b`` (and ``{base}ontology`` as ``{base}release/V/ontology``): one
prefix per release, which the publisher can drop as a whole, and the same order between graphs.
Graph IRIs are also resources (the provenance triples describe each graph), so the renaming is
applied to every IRI in the data sent to the store, in every query sent to it, and in reverse to
every result read back.

The renaming is a *swap*: a graph IRI G becomes its stored name S and S becomes G, every other
IRI is unchanged. It is its own inverse, so ``stored`` and ``published`` are the same map, and a
query that names S itself behaves as on the embedded store (S names nothing there; rewritten to
G, it names nothing in the remote store either).

With the remote dataset restricted to this release's graphs (the caller's job: default and named
graphs given as stored names, unless ``mentions_dataset``), a query gives exactly the answer of the embedded store, except:

- string functions applied to graph IRIs (``STR``, ``STRSTARTS``, ``REGEX``, ``MD5``, ...) and
  ``IRI("…")``/``URI("…")`` built from strings see or make the stored name;
- ``ORDER BY`` between a graph IRI and an IRI outside the graphs may differ (the order between
  graph IRIs is kept, not their place among other IRIs);
- the data must not use an IRI under ``{base}release/`` (the swap would rename it too);
- the scanner tells the ``<`` operator from an IRI by context (inside an expression, after an
  operand, it is the operator); a query so odd that this guess fails is passed on with that part
  unchanged.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import urljoin

import pyoxigraph as ox

# --- the SPARQL 1.1 terminals (https://www.w3.org/TR/sparql11-query/#grammar) -----------------
_PN_CHARS_BASE = ("A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u02FF\u0370-\u037D\u037F-\u1FFF"
                  "\u200C-\u200D\u2070-\u218F\u2C00-\u2FEF\u3001-\uD7FF\uF900-\uFDCF\uFDF0-\uFFFD"
                  "\U00010000-\U000EFFFF")
_PN_CHARS_U = _PN_CHARS_BASE + "_"
_PN_CHARS = _PN_CHARS_U + "\\-0-9\u00B7\u0300-\u036F\u203F-\u2040"
_PLX = r"%[0-9A-Fa-f]{2}|\\[_~.\-!$&'()*+,;=/?#@%]"
_PN_PREFIX = f"[{_PN_CHARS_BASE}](?:[{_PN_CHARS}.]*[{_PN_CHARS}])?"
_PN_LOCAL = f"(?:[{_PN_CHARS_U}:0-9]|{_PLX})(?:(?:[{_PN_CHARS}.:]|{_PLX})*(?:[{_PN_CHARS}:]|{_PLX}))?"
_VARNAME = f"[{_PN_CHARS_U}0-9][{_PN_CHARS_U}0-9\u00B7\u0300-\u036F\u203F-\u2040]*"
_UCHAR = r"\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8}"
_ECHAR = r"\\."  # lenient: the store judges the escapes, the scanner only needs the extent

_TOKEN = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in (
    ("ws", r"\s+"),
    ("comment", r"#[^\r\n]*"),
    ("string", f"'''(?:(?:'|'')?(?:[^'\\\\]|{_ECHAR}))*'''"
               f'|"""(?:(?:"|"")?(?:[^"\\\\]|{_ECHAR}))*"""'
               f"|'(?:[^'\\\\\\n\\r]|{_ECHAR})*'"
               f'|"(?:[^"\\\\\\n\\r]|{_ECHAR})*"'),
    ("bad", "['\"]"),  # a quote that starts no complete string
    ("iri", f"<(?:[^<>\"{{}}|^`\\\\\\x00-\\x20]|{_UCHAR})*>"),
    ("var", f"[?$]{_VARNAME}"),
    ("bnode", f"_:[{_PN_CHARS_U}0-9](?:[{_PN_CHARS}.]*[{_PN_CHARS}])?"),
    ("pname", f"(?P<prefix>{_PN_PREFIX})?:(?P<local>{_PN_LOCAL})?"),
    ("langtag", r"@[A-Za-z]+(?:-[A-Za-z0-9]+)*(?:--[A-Za-z]+)?"),
    ("number", r"[0-9]+\.[0-9]*[eE][+-]?[0-9]+|[0-9]*\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+(?:[eE][+-]?[0-9]+)?"),
    ("word", r"[A-Za-z_][A-Za-z0-9_]*"),
    ("punct", r"<<\(|\)>>|<<|>>|<=|>=|!=|&&|\|\||\^\^|\{\||\|\}|."),
)), re.DOTALL)
_LOCAL_ESCAPE = re.compile(r"\\(.)")
# "<scheme://…>" is an IRI even where "<" could be an operator: "//" never continues an expression
_HIERARCHICAL_IRI = re.compile(r"<[A-Za-z][A-Za-z0-9+.\-]*://[^<>\"{}|^`\\\x00-\x20]*>")
_IRI_ESCAPE = re.compile(_UCHAR)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
# after these, inside an expression, "<" is the less-than operator, not the start of an IRI
_OPERAND_ENDS = frozenset({"var", "string", "number", "iri", "pname", "langtag"})
_OPENERS = {"{": "group", "{|": "group", "[": "group", "<<": "term", "<<(": "term"}
_CLOSERS = frozenset({"}", "|}", "]", ")", ">>", ")>>"})
# a call after one of these words is an expression: FILTER <f>(...), ORDER BY <f>(...)
_CALL_AFTER = frozenset({"FILTER", "BY", "HAVING"})


class _LexError(ValueError):
    pass


class GraphNames:
    """The bijection between a release's graph IRIs and their names in the remote store."""

    def __init__(self, base: str, version: str, graphs: Iterable[str]):
        if not base.endswith("/"):
            raise ValueError(f"the base must end with '/': {base!r}")
        if not version or "/" in version:
            raise ValueError(f"a release version is one path segment: {version!r}")
        self.base, self.version = base, version
        self.stored_prefix = f"{base}release/{version}/"
        self._swap: dict[str, str] = {}
        for graph in graphs:
            if not graph.startswith(base) or graph.startswith(base + "release/"):
                raise ValueError(f"a graph IRI must be under {base} and not under {base}release/: {graph!r}")
            stored = self.stored_prefix + graph[len(base):]
            self._swap[graph], self._swap[stored] = stored, graph
        self._nodes = {iri: ox.NamedNode(other) for iri, other in self._swap.items()}

    @classmethod
    def for_release(cls, base: str, version: str, graph_iris: Iterable[str]) -> GraphNames:
        return cls(base, version, graph_iris)

    @property
    def graphs(self) -> list[str]:
        """The release's graph IRIs, sorted."""
        return sorted(iri for iri in self._swap if not iri.startswith(self.stored_prefix))

    def stored(self, iri: str) -> str:
        """G → its stored name (and a stored name → G); any other IRI unchanged."""
        return self._swap.get(iri, iri)

    published = stored  # the swap is its own inverse

    # --- terms, triples and quads ------------------------------------------------------------
    def term(self, term):
        """Rename the IRIs in a term (NamedNode, Literal datatype, quoted Triple); both ways."""
        if isinstance(term, ox.NamedNode):
            return self._nodes.get(term.value, term)
        if isinstance(term, ox.Triple):
            return self.triple(term)
        if isinstance(term, ox.Literal) and term.datatype.value in self._nodes:
            return ox.Literal(term.value, datatype=self._nodes[term.datatype.value])
        return term  # BlankNode, DefaultGraph, other literals, None

    term_forward = term_back = term

    def triple(self, triple: ox.Triple) -> ox.Triple:
        return ox.Triple(self.term(triple.subject), self.term(triple.predicate), self.term(triple.object))

    triple_forward = triple_back = triple

    def quad(self, quad: ox.Quad) -> ox.Quad:
        return ox.Quad(self.term(quad.subject), self.term(quad.predicate), self.term(quad.object),
                       self.term(quad.graph_name))

    quad_forward = quad_back = quad

    def solution_back(self, solution: ox.QuerySolution, variables: Iterable[ox.Variable]) -> tuple:
        """A solution read from the store as a tuple of published terms (None when unbound)."""
        return tuple(self.term(solution[v]) for v in variables)

    # --- queries -----------------------------------------------------------------------------
    def rewrite_query(self, sparql: str, base_iri: str | None = None,
                      prefixes: Mapping[str, str] | None = None) -> str:
        """The query with every IRI token that denotes a graph IRI (or a stored name) swapped.

        IRIs are resolved against the query's BASE, else ``base_iri``; prefixed names expand with
        ``prefixes`` (the endpoint's default ones, if any) and the query's PREFIX declarations.
        Strings, comments, declarations and every other byte are copied unchanged. A query the
        scanner cannot read (an unterminated string...) comes back unchanged: the store reports it.
        """
        try:
            return _Rewriter(self._swap, base_iri, dict(prefixes or {})).run(sparql)
        except _LexError:
            return sparql

    def mentions_dataset(self, sparql: str) -> bool:
        """Whether the query has FROM or FROM NAMED (then it defines its own dataset)."""
        try:
            return any(kind == "word" and text.upper() == "FROM" for kind, text, _ in _tokens(sparql))
        except _LexError:
            return False


def without_dataset_clauses(sparql: str) -> str:
    """The query without its FROM / FROM NAMED clauses: when the protocol gives a dataset, it
    replaces the query's (SPARQL 1.1 Protocol §2.1.4), and not every store applies that rule."""
    try:
        tokens = list(_tokens(sparql))
    except _LexError:
        return sparql
    out, skip = [], 0
    for i, (kind, text, match) in enumerate(tokens):
        if skip:
            skip -= kind not in ("ws", "comment")
            continue
        if kind == "word" and text.upper() == "FROM":
            following = [t for t in tokens[i + 1:i + 6] if t[0] not in ("ws", "comment")]
            skip = 2 if following and following[0][0] == "word" and following[0][1].upper() == "NAMED" else 1
            out.append(" ")
            continue
        out.append(text)
    return "".join(out)


def _tokens(sparql: str):
    """(kind, text, match) for every token, without telling "<" operators from IRIs."""
    pos = 0
    while pos < len(sparql):
        match = _TOKEN.match(sparql, pos)
        if match.lastgroup == "bad":
            raise _LexError(f"unterminated string at {pos}")
        kind = "pname" if match.group("pname") is not None else match.lastgroup
        yield kind, match.group(), match
        pos = match.end()


def _resolve(iri: str, base: str | None) -> str:
    iri = _IRI_ESCAPE.sub(lambda m: chr(int(m.group()[2:], 16)), iri)
    if base is None or _SCHEME.match(iri):
        return iri
    return urljoin(base.partition("#")[0], iri)  # RFC 3986 never uses the base's fragment


class _Rewriter:
    """One pass over a query: the scanner, the prologue's state and the output."""

    def __init__(self, swap: dict[str, str], base: str | None, prefixes: dict[str, str]):
        self.swap, self.base, self.prefixes = swap, base, prefixes
        self.contexts: list[str] = []  # "group" ({ [ {|), "term" (<<), "expr" or "list" for (
        self.previous: tuple[str, str] = ("", "")  # (kind, text) of the last significant token
        self.before: tuple[str, str] = ("", "")  # and of the one before it
        self.declaring: str | None = None  # "PREFIX" / "BASE" while reading a declaration
        self.declared_prefix = ""
        self.projecting = False  # in SELECT …, GROUP BY …, ORDER BY … or HAVING …: "(" is an expression

    def run(self, sparql: str) -> str:
        out: list[str] = []
        pos = 0
        while pos < len(sparql):
            if sparql[pos] == "<" and self._less_than() and not _HIERARCHICAL_IRI.match(sparql, pos):
                text = "<=" if sparql.startswith("<=", pos) else "<"
                kind, replacement = "punct", None
            else:
                match = _TOKEN.match(sparql, pos)
                kind = match.lastgroup
                if kind == "bad":
                    raise _LexError(f"unterminated string at {pos}")
                text = match.group()
                if match.group("pname") is not None:
                    kind = "pname"
                replacement = self._significant(kind, text, match) if kind not in ("ws", "comment") else None
            if replacement is not None:
                if out and out[-1].endswith("<"):
                    replacement = " " + replacement  # "?a<" + "<S>" would read as "<<"
                out.append(replacement)
            else:
                out.append(text)
            if kind not in ("ws", "comment"):
                self.before, self.previous = self.previous, (kind, text)
            pos += len(text)
        return "".join(out)

    def _less_than(self) -> bool:
        return bool(self.contexts) and self.contexts[-1] == "expr" and (
            self.previous[0] in _OPERAND_ENDS or self.previous[1] == ")"
            or (self.previous[0] == "word" and self.previous[1].lower() in ("true", "false")))

    def _significant(self, kind: str, text: str, match: re.Match) -> str | None:
        """Track the context; the replacement text for this token, or None to copy it."""
        if kind == "word" and text.upper() in ("PREFIX", "BASE"):
            self.declaring = text.upper()
            return None
        if self.declaring:
            return self._declaration(kind, text, match)
        if kind == "word":
            word = text.upper()
            if word in ("SELECT", "BY", "HAVING"):
                self.projecting = True
            elif word in ("WHERE", "LIMIT", "OFFSET", "VALUES", "FROM"):
                self.projecting = False
            return None
        if kind == "punct":
            if text in ("{", "}"):
                self.projecting = False
            self._bracket(text)
            return None
        if kind == "iri":
            return self._renamed(_resolve(text[1:-1], self.base))
        if kind == "pname":
            namespace = self.prefixes.get(match.group("prefix") or "")
            if namespace is None:
                return None  # undeclared: the store reports it
            return self._renamed(namespace + _LOCAL_ESCAPE.sub(r"\1", match.group("local") or ""))
        return None

    def _declaration(self, kind: str, text: str, match: re.Match) -> None:
        if self.declaring == "PREFIX" and kind == "pname":
            self.declared_prefix = match.group("prefix") or ""
        elif kind == "iri":
            iri = _resolve(text[1:-1], self.base)
            if self.declaring == "BASE":
                self.base = iri
            else:
                self.prefixes[self.declared_prefix] = iri
            self.declaring = None
        else:
            self.declaring = None  # malformed: the store reports it
        return None

    def _bracket(self, text: str) -> None:
        if text in _OPENERS:
            self.contexts.append(_OPENERS[text])
        elif text == "(":
            self.contexts.append("expr" if self._expression_paren() else "list")
        elif text in _CLOSERS and self.contexts:
            self.contexts.pop()

    def _expression_paren(self) -> bool:
        """Whether "(" opens an expression (else an RDF collection or a VALUES row)."""
        if not self.contexts or self.contexts[-1] == "expr":
            return True  # SELECT (…), ORDER BY (…) of the query, or nested in an expression
        if self.contexts[-1] != "group":
            return False
        kind, text = self.previous
        if kind == "word":
            return text != "a"  # FILTER(, BIND(, STR(, EXISTS… ; but "?s a (…)" is a list
        if self.projecting:
            return True  # SELECT ?x (… AS ?y) or ORDER BY ?x (…) of a sub-query
        return kind in ("iri", "pname") and self.before[0] == "word" and self.before[1].upper() in _CALL_AFTER

    def _renamed(self, iri: str) -> str | None:
        other = self.swap.get(iri)
        return None if other is None else f"<{other}>"
