"""The SPARQL 1.1 Protocol's request side: what operation a request carries, and in what format
the answer must be.

Nothing here evaluates anything. A light lexer reads the query text (comments, strings and IRIs
skipped) to learn its form (SELECT, ASK, CONSTRUCT, DESCRIBE), whether it is an update, and
whether it uses SERVICE, and to normalise it for ETags. The real parser is Oxigraph's, run in an
evaluator process (see query_limits): a query that the lexer accepts can still be a syntax
error there, and is answered 400 with Oxigraph's message and position.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes

import pyoxigraph as ox

from .lru import LRU

if TYPE_CHECKING:  # the evaluator processes import this module without Flask
    from flask import Request

#: https://www.w3.org/TR/sparql11-query/#rIRIREF (no spaces: `?a < ?b` is an operator).
#: A string's closing quote is optional, so that an unterminated string is one token (to the
#: end of its line, or of the text for a long string) and lexing stays linear: otherwise the
#: scan would restart from every later quote (quadratic; Oxigraph reports the error anyway).
_TOKEN = re.compile(r"""
    (?P<comment>\#[^\r\n]*)
  | (?P<string>'''(?:[^'\\]|\\.|'(?!''))*(?:''')?|\"\"\"(?:[^"\\]|\\.|"(?!""))*(?:\"\"\")?
              |'(?:[^'\\\r\n]|\\.)*'?|"(?:[^"\\\r\n]|\\.)*"?)
  | (?P<iri><[^<>"{}|^`\\\x00-\x20]*>)
  | (?P<var>[?$][\w\u00B7\u0300-\u036F\u203F-\u2040]+)
  | (?P<name>[\w][\w.\-]*:?(?:[\w.\-:%\\]|%[0-9A-Fa-f]{2})*|:(?:[\w.\-:%\\])*)
  | (?P<space>\s+)
  | (?P<other>.)
""", re.VERBOSE | re.DOTALL)

QUERY_FORMS = ("SELECT", "ASK", "CONSTRUCT", "DESCRIBE")
#: Oxigraph's parser and evaluator recurse: queries nested or chained far beyond any real use
#: would overflow the evaluator's stack. Refused (400) above these, which the evaluator's
#: 256 MiB stack handles with a wide margin (measured: 20 000 nested groups, 2 000 UNIONs).
MAX_NESTING = 1000          # ( { [ open at once
MAX_OPERATORS = 2000        # UNION MINUS BIND FILTER OPTIONAL ! + * / || && (| and & count half)
_OPERATOR_WORDS = frozenset({"UNION", "MINUS", "BIND", "FILTER", "OPTIONAL"})
_OPERATOR_WEIGHTS = {"!": 1.0, "+": 1.0, "*": 1.0, "/": 1.0, "|": 0.5, "&": 0.5}
VOLATILE_FUNCTIONS = frozenset({"NOW", "RAND", "UUID", "STRUUID"})
UPDATE_KEYWORDS = frozenset({"INSERT", "DELETE", "LOAD", "CLEAR", "CREATE", "DROP", "COPY", "MOVE", "ADD", "WITH"})


@dataclass(frozen=True)
class QueryText:
    """What the lexer learnt about a query string."""
    text: str
    form: str | None          # SELECT / ASK / CONSTRUCT / DESCRIBE, or None when unrecognisable
    is_update: bool
    uses_service: bool
    declares_dataset: bool    # FROM / FROM NAMED: the query names its own dataset
    nesting: int              # the deepest ( { [ nesting
    operators: int            # operators and chained clauses (see MAX_OPERATORS)
    normalised: str           # tokens joined by one space, comments dropped
    prefixes: dict[str, str] = field(default_factory=dict)
    tokens: tuple[tuple[str, str], ...] = ()  # (kind, text), comments and spaces dropped

    @property
    def gives_graph(self) -> bool:
        return self.form in ("CONSTRUCT", "DESCRIBE")

    @property
    def too_complex(self) -> bool:
        return self.nesting > MAX_NESTING or self.operators > MAX_OPERATORS

    @cached_property
    def volatile(self) -> bool:
        """Whether it calls a function whose value is new at each evaluation (SPARQL 1.1
        §17.4: NOW, RAND, UUID, STRUUID): its answer is neither kept nor revalidated."""
        return any(kind == "name" and value.upper() in VOLATILE_FUNCTIONS for kind, value in self.tokens)


#: texts up to this long have their analysis kept (per process, the last ANALYSED_KEPT of them)
ANALYSED_MAX_CHARS = 4096
ANALYSED_KEPT = 256


def analysed(text: str) -> QueryText:
    """`analyse(text)`, kept for short texts: a client repeating a query is not lexed again."""
    return _analysed_kept(text) if len(text) <= ANALYSED_MAX_CHARS else analyse(text)


@lru_cache(maxsize=ANALYSED_KEPT)
def _analysed_kept(text: str) -> QueryText:
    return analyse(text)


def analyse(text: str) -> QueryText:
    tokens: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind in ("comment", "space"):
            continue
        tokens.append((kind, match.group()))
    prefixes: dict[str, str] = {}
    form = None
    is_update = False
    i = 0
    # the prologue: BASE <iri> and PREFIX name: <iri>, in any order
    while i < len(tokens):
        kind, value = tokens[i]
        word = value.upper() if kind == "name" else ""
        if word == "BASE" and i + 1 < len(tokens):
            i += 2
        elif word == "PREFIX" and i + 2 < len(tokens):
            if tokens[i + 2][0] == "iri":
                prefixes[tokens[i + 1][1].rstrip(":")] = tokens[i + 2][1][1:-1]
            i += 3
        else:
            if word in QUERY_FORMS:
                form = word
            elif word in UPDATE_KEYWORDS:
                is_update = True
            break
    uses_service = any(kind == "name" and value.upper() == "SERVICE" for kind, value in tokens)
    declares_dataset = any(kind == "name" and value.upper() == "FROM" for kind, value in tokens)
    nesting = depth = 0
    operators = 0.0
    for kind, value in tokens:
        if kind == "other":
            if value in "({[":
                depth += 1
                nesting = max(nesting, depth)
            elif value in ")}]":
                depth -= 1
            else:
                operators += _OPERATOR_WEIGHTS.get(value, 0.0)
        elif kind == "name" and value.upper() in _OPERATOR_WORDS:
            operators += 1
    normalised = " ".join(value for _, value in tokens)
    return QueryText(text, form, is_update, uses_service, declares_dataset, nesting, int(operators),
                     normalised, prefixes, tuple(tokens))


# --------------------------------------------------------------------------------------------
# Reading the operation out of an HTTP request
# --------------------------------------------------------------------------------------------

class ProtocolError(Exception):
    def __init__(self, status: int, title: str, detail: str, **extra):
        super().__init__(detail)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


@dataclass(frozen=True)
class Operation:
    query: str | None                 # None: no query (service description or query page)
    default_graphs: tuple[str, ...]
    named_graphs: tuple[str, ...]
    format: str | None                # the `format` parameter(s), if any, comma-joined
    via: str                          # "get", "form" or "direct"

    def __post_init__(self) -> None:
        for parameter, iris in (("default-graph-uri", self.default_graphs), ("named-graph-uri", self.named_graphs)):
            for iri in iris:
                try:
                    ox.NamedNode(iri)  # Oxigraph's own check of an absolute IRI (RFC 3987)
                except ValueError as error:
                    raise ProtocolError(400, "Invalid graph IRI",
                                        f"The {parameter} {iri!r} is not an absolute IRI: {error}.") from None


FORM_TYPE = "application/x-www-form-urlencoded"
QUERY_TYPE = "application/sparql-query"
UPDATE_TYPE = "application/sparql-update"

_READ_ONLY = ("This endpoint is read-only: SPARQL Update is not accepted, and nothing was changed. "
              "Send a query (SELECT, ASK, CONSTRUCT or DESCRIBE) instead.")


def read_only_refusal() -> ProtocolError:
    return ProtocolError(403, "Updates are not allowed", _READ_ONLY)


def operation_from(request: Request) -> Operation:
    """The query and dataset of a Protocol request, or a ProtocolError saying what is wrong."""
    if request.method in ("GET", "HEAD"):
        query_string = request.query_string
        if len(query_string) <= GET_KEPT_MAX_BYTES:  # a refused one raises, and is not kept
            return _get_operations.get(query_string, lambda: _get_operation(request.args, query_string))
        return _get_operation(request.args, query_string)
    _read_chunked_body(request)
    args = request.args
    mimetype = request.mimetype
    if mimetype == UPDATE_TYPE:
        raise read_only_refusal()
    if mimetype == FORM_TYPE:
        charset = request.mimetype_params.get("charset", "utf-8")
        if charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
            raise ProtocolError(415, "Unsupported charset",
                                f"A form-encoded body is UTF-8 (the URL-encoded format), not {charset!r}.")
        _check_utf8(request.get_data(), "form-encoded body")  # may raise 413 (MAX_CONTENT_LENGTH)
        form = request.form
        if "update" in form or "update" in args:
            raise read_only_refusal()
        queries = form.getlist("query") + args.getlist("query")
        if not queries:
            raise ProtocolError(400, "No query", "A form-encoded POST must carry a `query` parameter.")
        if len(queries) > 1:
            raise ProtocolError(400, "More than one query", "The request carries the `query` parameter more than once; send exactly one query.")
        return Operation(queries[0], _graphs(form.getlist("default-graph-uri") + args.getlist("default-graph-uri")),
                         _graphs(form.getlist("named-graph-uri") + args.getlist("named-graph-uri")),
                         _one(form, "format") or _one(args, "format"), "form")
    if mimetype == QUERY_TYPE:
        if "query" in args:
            raise ProtocolError(400, "More than one query", "A POST with an application/sparql-query body must not also carry a `query` parameter.")
        if "update" in args:
            raise read_only_refusal()
        body = request.get_data(cache=False)  # may raise 413
        charset = request.mimetype_params.get("charset", "utf-8")
        try:
            text = body.decode(charset)
        except LookupError:
            raise ProtocolError(415, "Unsupported charset", f"The charset {charset!r} is unknown; send the query in UTF-8.") from None
        except UnicodeDecodeError as error:
            raise ProtocolError(400, "Query is not valid text", f"The body is not valid {charset}: {error.reason} at byte {error.start}.") from None
        text = text.removeprefix("\ufeff")  # a byte-order mark, as editors on Windows save .rq files
        if not text.strip():
            raise ProtocolError(400, "No query", "The application/sparql-query body is empty.")
        return Operation(text, _graphs(args.getlist("default-graph-uri")), _graphs(args.getlist("named-graph-uri")),
                         _one(args, "format"), "direct")
    raise ProtocolError(415, "Unsupported Media Type",
                        f"A SPARQL query is POSTed as {FORM_TYPE} (a `query` field) or as {QUERY_TYPE} "
                        f"(the query as the body), not as {mimetype or 'a body without Content-Type'}.",
                        accepted=[FORM_TYPE, QUERY_TYPE])


def _read_chunked_body(request: Request) -> None:
    """A body sent without Content-Length (chunked) read whole now, or 413 past the limit.
    werkzeug stops reading such a body at MAX_CONTENT_LENGTH and raises only on a read after
    that, which neither form parsing nor get_data makes: a longer query was cut there and the
    cut text evaluated."""
    environ = request.environ
    if environ.get("CONTENT_LENGTH") or "wsgi.input_terminated" not in environ:
        return
    limit = request.max_content_length
    body = environ["wsgi.input"].read() if limit is None else environ["wsgi.input"].read(limit + 1)
    if limit is not None and len(body) > limit:
        from werkzeug.exceptions import RequestEntityTooLarge  # (not in the evaluator processes)
        raise RequestEntityTooLarge()
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))


#: GET operations whose query string is up to this long are kept (per process, the last
#: GET_KEPT of them): decoding a query's percent-escapes is a tenth of a light query's cost
GET_KEPT_MAX_BYTES = 8192
GET_KEPT = 256
_get_operations = LRU(GET_KEPT)


def _get_operation(args, query_string: bytes) -> Operation:
    _check_utf8(query_string, "query string")
    if "update" in args:
        raise read_only_refusal()
    queries = args.getlist("query")
    if len(queries) > 1:
        raise ProtocolError(400, "More than one query", "The request carries the `query` parameter more than once; send exactly one query.")
    return Operation(queries[0] if queries else None, _graphs(args.getlist("default-graph-uri")),
                     _graphs(args.getlist("named-graph-uri")), _one(args, "format"), "get")


def _graphs(values: list[str]) -> tuple[str, ...]:
    """The graph IRIs of a dataset parameter; an empty one (a form's field left blank, as
    Virtuoso's and YASGUI's forms send it) names no graph."""
    return tuple(value for value in values if value)


def _check_utf8(urlencoded: bytes, what: str) -> None:
    """400 unless the percent-escapes of `urlencoded` decode as UTF-8: werkzeug keeps an escape
    that does not (`%E9`) as the text "%E9", which silently changes the query."""
    try:
        unquote_to_bytes(urlencoded.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError as error:
        raise ProtocolError(400, "Query is not valid text",
                            f"The {what} is not UTF-8 once its percent-escapes are decoded "
                            f"({error.reason} at byte {error.start}); percent-encode the UTF-8 bytes of "
                            "each character (é is %C3%A9).") from None


def _one(values, name: str) -> str | None:
    """All the values of a parameter, comma-joined (SPARQLWrapper repeats `format`, e.g.
    `format=json-ld&format=application/ld+json,application/x-json+ld`)."""
    found = [v for v in values.getlist(name) if v.strip()]
    return ",".join(found) if found else None


# --------------------------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------------------------

RESULTS_JSON = "application/sparql-results+json"
RESULTS_XML = "application/sparql-results+xml"
CSV = "text/csv"
TSV = "text/tab-separated-values"
TURTLE = "text/turtle"
NTRIPLES = "application/n-triples"
RDFXML = "application/rdf+xml"
JSONLD = "application/ld+json"
HTML = "text/html"

#: the media types each kind of answer is available in, the default first
RESULT_TYPES = (RESULTS_JSON, RESULTS_XML, CSV, TSV)
GRAPH_TYPES = (TURTLE, NTRIPLES, RDFXML, JSONLD)

#: other names clients use for the same types (Accept and `format`)
ALIASES = {
    "application/json": RESULTS_JSON,           # for results; JSON-LD for graphs (see below)
    "application/xml": RESULTS_XML,
    "text/xml": RESULTS_XML,
    "application/x-turtle": TURTLE,
    "application/turtle": TURTLE,
    "text/plain": NTRIPLES,
    "text/n3": TURTLE,                          # Turtle is a subset of N3
    "text/n-triples": NTRIPLES,
    "text/tsv": TSV,
}
FORMAT_NAMES = {
    "json": RESULTS_JSON, "srj": RESULTS_JSON,
    "xml": RESULTS_XML, "srx": RESULTS_XML,
    "csv": CSV, "tsv": TSV,
    "turtle": TURTLE, "ttl": TURTLE, "n3": TURTLE,
    "ntriples": NTRIPLES, "nt": NTRIPLES, "n-triples": NTRIPLES,
    "rdfxml": RDFXML, "rdf": RDFXML, "xml-rdf": RDFXML, "rdf+xml": RDFXML,
    "jsonld": JSONLD, "json-ld": JSONLD,
    "html": HTML,
}
CHARSET_TYPES = frozenset({RESULTS_JSON, RESULTS_XML, CSV, TSV, TURTLE, NTRIPLES, RDFXML, JSONLD, HTML})


class NotAcceptable(Exception):
    def __init__(self, available: tuple[str, ...], asked: str):
        super().__init__(asked)
        self.available, self.asked = available, asked


def _canonical(media_type: str, graph: bool) -> str:
    media_type = media_type.strip().lower()
    if graph and media_type in ("application/json", "json"):
        return JSONLD
    if graph and media_type in ("xml", "application/xml", "text/xml"):
        return RDFXML
    return FORMAT_NAMES.get(media_type) or ALIASES.get(media_type) or media_type


def choose_type(request: Request, format_param: str | None, available: tuple[str, ...],
                graph: bool, html: bool = False) -> str:
    """The media type to answer in: `format` if given, else the best of Accept (with q-values).

    `*/*`, no Accept, or only wildcards → the first available type. `html` adds text/html as a
    choice only when the client prefers it explicitly (a browser)."""
    if format_param:
        for name in format_param.split(","):
            chosen = _canonical(name.split(";")[0], graph)
            if chosen == HTML and html:
                return HTML
            if chosen in available:
                return chosen
        raise NotAcceptable(available, format_param)
    return _best_accepted(request.headers.get("Accept", ""), available, graph, html)


@lru_cache(maxsize=256)  # per Accept header: clients send a handful of different ones
def _best_accepted(accept_header: str, available: tuple[str, ...], graph: bool, html: bool) -> str:
    from werkzeug.datastructures import MIMEAccept
    from werkzeug.http import parse_accept_header
    accept = parse_accept_header(accept_header, MIMEAccept)
    if not accept or not accept_header.strip():
        return available[0]
    best, best_q = None, 0.0
    candidates = list(available) + ([HTML] if html else [])
    for position, candidate in enumerate(candidates):
        q = _quality(accept, candidate, graph)
        if candidate == HTML and _only_wildcard(accept, candidate):
            continue
        # ties go to the earlier (preferred) type
        if q > best_q:
            best, best_q = candidate, q
    if best is None:
        raise NotAcceptable(available, accept_header)
    return best


def _quality(accept, candidate: str, graph: bool) -> float:
    """The q-value Accept gives `candidate`, counting the aliases that name it."""
    best = 0.0
    best_specificity = -1
    for value, q in accept:
        mt = value.split(";")[0].strip().lower()
        canonical = _canonical(mt, graph)
        if mt == "*/*":
            specificity = 0
        elif mt.endswith("/*") and candidate.startswith(mt[:-1]):
            specificity = 1
        elif canonical == candidate:
            specificity = 3 if mt == candidate else 2
        else:
            continue
        if specificity > best_specificity:
            best, best_specificity = q, specificity
    return best


def _only_wildcard(accept, candidate: str) -> bool:
    return not any(v.split(";")[0].strip().lower() == candidate for v, q in accept if q > 0)


def content_type(media_type: str) -> str:
    return f"{media_type}; charset=utf-8" if media_type in CHARSET_TYPES else media_type
