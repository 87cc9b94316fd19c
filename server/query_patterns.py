"""The triple patterns of a simple query, read from the lexer's tokens (sparql_protocol).

Only one shape is recognised, the one of lookups: ASK, SELECT [DISTINCT] (variables, *, or
expressions `(… AS ?x)`, aggregates included), or CONSTRUCT, whose WHERE is one group of triple
patterns and FILTERs, or a UNION of such groups followed by FILTERs (either optionally inside
one GRAPH), then GROUP BY / HAVING / ORDER BY / LIMIT / OFFSET. Anything else (OPTIONAL, triples
beside a UNION, nested groups, property paths, blank-node brackets, subqueries, EXISTS, BIND,
VALUES, SERVICE, BASE, relative IRIs, DESCRIBE) reads as None: not recognised. Nothing here
decides what the query means; Oxigraph evaluates the text itself. These patterns only feed the
estimate of how much work it is (server/light_queries.py), so a shape read as None costs
nothing but speed.

What comes after the patterns costs time in proportion to their solutions (grouping, sorting,
one expression per solution), as long as one solution's expressions cannot build a string much
longer than the values they read. So these are not recognised either:
- an expression that binds a variable `(… AS ?y)` and uses another bound that way,
  `(CONCAT(?x, ?x) AS ?y) (CONCAT(?y, ?y) AS ?z) …`, which doubles a string at each step;
- REPLACE, whose replacement can repeat the match (`"$0$0"`): nested 20 deep in one FILTER it
  made a 200-million-character string on a request thread, which no time limit can stop;
- expressions (FILTERs, projections, modifiers) that read variables more than
  MAX_EXPRESSION_VARIABLES times in all, `CONCAT(?x, ?x, ?x, …)`.
"""
from __future__ import annotations

from dataclasses import dataclass

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
_PATH_OPERATORS = frozenset("/|^*+?!(")
_MODIFIER_WORDS = frozenset({"GROUP", "HAVING", "ORDER", "BY", "ASC", "DESC", "LIMIT", "OFFSET"})
_REFUSED_IN_FILTERS = frozenset({"EXISTS", "SELECT", "SERVICE", "GRAPH", "REPLACE"})
#: variables read by all the expressions of a query, at most (see the module's docstring)
MAX_EXPRESSION_VARIABLES = 16


@dataclass(frozen=True)
class Term:
    kind: str    # "var", "iri" or "literal"
    value: str   # the variable's name, the absolute IRI, or the literal's token


@dataclass(frozen=True)
class Pattern:
    subject: Term
    predicate: Term
    object: Term


class _NotRecognised(Exception):
    pass


def union_branches(tokens: tuple[tuple[str, str], ...], prefixes: dict[str, str]) -> list[list[Pattern]] | None:
    """The triple patterns of each group the query's solutions come from (one, or one per
    branch of its UNION) if it has the shape described above, else None."""
    try:
        return _Reader(tokens, prefixes).query()
    except (_NotRecognised, IndexError):
        return None


def _bound_by(tokens) -> set[str]:
    """The names of the variables these tokens bind with `AS ?x` (`$x` is the same variable)."""
    return {value[1:] for (kind, word), (next_kind, value) in zip(tokens, tokens[1:])
            if kind == "name" and word.upper() == "AS" and next_kind == "var"}


def _split_final_dots(tokens):
    """The lexer reads `schema:Event.` as one name; a prefixed name cannot end with a dot."""
    for kind, value in tokens:
        if kind == "name" and value.endswith(".") and ":" in value:
            yield kind, value.rstrip(".")
            yield from (("other", ".") for _ in range(len(value) - len(value.rstrip("."))))
        else:
            yield kind, value


class _Reader:
    def __init__(self, tokens, prefixes: dict[str, str]):
        self.tokens, self.prefixes, self.i = list(_split_final_dots(tokens)), prefixes, 0
        self.branches: list[list[Pattern]] = [[]]
        #: the variables an expression binds (`AS ?x`), wherever they are in the text
        self.bound_by_expressions = _bound_by(self.tokens)
        self.expression_variables = 0

    # -- tokens ---------------------------------------------------------------------------
    def peek(self, ahead: int = 0) -> tuple[str, str]:
        if self.i + ahead >= len(self.tokens):
            return ("end", "")
        return self.tokens[self.i + ahead]

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "end":
            raise _NotRecognised()
        self.i += 1
        return token

    def word(self) -> str:
        kind, value = self.peek()
        return value.upper() if kind == "name" else ""

    def expect(self, value: str) -> None:
        if self.take()[1] != value:
            raise _NotRecognised()

    def skip_balanced(self, opening: str, closing: str, refused: frozenset = frozenset()) -> None:
        self.expect(opening)
        depth = 1
        while depth:
            kind, value = self.take()
            if kind == "other" and value == opening:
                depth += 1
            elif kind == "other" and value == closing:
                depth -= 1
            elif kind == "name" and value.upper() in refused:
                raise _NotRecognised()

    # -- the query ------------------------------------------------------------------------
    def query(self) -> list[list[Pattern]]:
        while self.word() == "PREFIX":
            self.i += 3
        form = self.word()
        self.i += 1
        if form == "SELECT":
            self.projection()
        elif form == "CONSTRUCT" and self.peek()[1] == "{":
            self.skip_balanced("{", "}", refused=frozenset({"GRAPH"}))
        elif form not in ("ASK", "CONSTRUCT"):
            raise _NotRecognised()
        while self.word() == "FROM":
            self.i += 1
            if self.word() == "NAMED":
                self.i += 1
            self.take()
        if self.word() == "WHERE":
            self.i += 1
        self.where()
        self.modifiers()
        return self.branches

    def projection(self) -> None:
        if self.word() in ("DISTINCT", "REDUCED"):
            self.i += 1
        if self.peek()[1] == "*":
            self.i += 1
            return
        if self.peek()[0] != "var" and self.peek()[1] != "(":
            raise _NotRecognised()
        while self.peek()[0] == "var" or self.peek()[1] == "(":
            if self.peek()[0] == "var":
                self.i += 1
            else:
                self.expression()

    def where(self) -> None:
        self.expect("{")
        if self.word() == "GRAPH":
            self.i += 1
            self.term()
            self.expect("{")
            self.group_or_union()
            self.expect("}")
        else:
            self.group_or_union()
        self.expect("}")

    def group_or_union(self) -> None:
        if self.peek()[1] != "{":
            self.group_body()
            return
        self.branches = []
        self.branch()
        while self.word() == "UNION":
            self.i += 1
            self.branch()
        while self.peek()[1] != "}":  # FILTERs on the union's solutions, nothing else
            if self.peek()[1] == ".":
                self.i += 1
            elif self.word() == "FILTER":
                self.filter()
            else:
                raise _NotRecognised()

    def branch(self) -> None:
        self.expect("{")
        self.branches.append([])
        self.group_body()
        self.expect("}")

    def modifiers(self) -> None:
        while self.peek()[0] != "end":
            kind, value = self.peek()
            if kind == "var" or (kind == "name" and (value.upper() in _MODIFIER_WORDS or value.isdigit())):
                self.i += 1
            elif kind == "other" and value == "(":
                self.expression()
            elif kind == "name" and self.peek(1)[1] == "(" and value.upper() not in _REFUSED_IN_FILTERS:
                self.i += 1  # a function call: ORDER BY LCASE(?name), HAVING BOUND(?x)
                self.expression()
            else:
                raise _NotRecognised()

    def expression(self) -> None:
        """A bracketed expression, `(… AS ?x)` included, which uses no variable bound by another."""
        tokens = self.bracketed_expression()
        binds = _bound_by(tokens)
        if binds and any(kind == "var" and value[1:] in self.bound_by_expressions - binds for kind, value in tokens):
            raise _NotRecognised()

    def bracketed_expression(self) -> list[tuple[str, str]]:
        start = self.i
        self.skip_balanced("(", ")", refused=_REFUSED_IN_FILTERS)
        tokens = self.tokens[start:self.i]
        self.expression_variables += sum(kind == "var" for kind, _ in tokens)
        if self.expression_variables > MAX_EXPRESSION_VARIABLES:
            raise _NotRecognised()
        return tokens

    # -- the group ------------------------------------------------------------------------
    def group_body(self) -> None:
        while self.peek()[1] != "}":
            if self.peek()[1] == ".":
                self.i += 1
            elif self.word() == "FILTER":
                self.filter()
            else:
                self.triples()

    def filter(self) -> None:
        self.i += 1
        if self.peek()[0] == "name":  # FILTER regex(…), FILTER langMatches(…)
            if self.word() in _REFUSED_IN_FILTERS or self.word() == "NOT":
                raise _NotRecognised()
            self.i += 1
        self.bracketed_expression()

    def triples(self) -> None:
        subject = self.term()
        while True:
            predicate = self.verb()
            while True:
                self.branches[-1].append(Pattern(subject, predicate, self.term()))
                if self.peek()[1] != ",":
                    break
                self.i += 1
            if self.peek()[1] != ";":
                return
            while self.peek()[1] == ";":
                self.i += 1
            if self.peek()[1] in (".", "}"):
                return

    def verb(self) -> Term:
        if self.peek() == ("name", "a"):
            self.i += 1
            term = Term("iri", RDF_TYPE)
        else:
            term = self.term()
            if term.kind == "literal":
                raise _NotRecognised()
        if self.peek()[0] == "other" and self.peek()[1] in _PATH_OPERATORS:
            raise _NotRecognised()
        return term

    def term(self) -> Term:
        kind, value = self.take()
        if kind == "var":
            return Term("var", value[1:])
        if kind == "iri":
            iri = value[1:-1]
            if ":" not in iri:
                raise _NotRecognised()  # relative to a base: left to Oxigraph
            return Term("iri", iri)
        if kind == "string":
            return self.literal_suffix(value)
        if kind == "other" and value in "+-" and self.peek()[0] == "name" and self.peek()[1][:1].isdigit():
            return Term("literal", value + self.take()[1])
        if kind == "name":
            if value.startswith("_:"):
                return Term("var", value)  # a blank node in a pattern is a variable
            if ":" in value:
                prefix, _, local = value.partition(":")
                if prefix not in self.prefixes or "\\" in local or "%" in local:
                    raise _NotRecognised()
                return Term("iri", self.prefixes[prefix] + local)
            if value[:1].isdigit() or value in ("true", "false"):
                return Term("literal", value)
        raise _NotRecognised()

    def literal_suffix(self, text: str) -> Term:
        if self.peek()[1] == "@":
            self.i += 1
            text += "@" + self.take()[1]
        elif self.peek()[1] == "^" and self.peek(1)[1] == "^":
            self.i += 2
            text += "^^" + self.term().value
        return Term("literal", text)
