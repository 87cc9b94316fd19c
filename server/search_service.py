"""Text search from SPARQL: the ``{base}search`` service, answered by pre-expanding the query.

A query may hold, anywhere a graph pattern may stand::

    SERVICE <https://w3id.org/un-meetings/search> {
        ?thing unm:matches "الخطة الحضرية" ;      # required: the search text
               unm:lang "ar" ;                    # optional: only literals in this language
               unm:limit 20 ;                     # optional: at most this many things (capped)
               unm:score ?score ;                 # optional: 0–1, the share of the literal matched
               unm:matchedText ?text ;            # optional: the literal that matched
               unm:matchedProperty ?property .    # optional: the property it is the value of
    }

(``unm:`` is ``{base}ontology#``; full IRIs work too.) Before the query reaches the store, the
block is looked up in the release's search index (server/search_index.py) and replaced, in
place, by the equivalent ``VALUES (?thing ?score …) { … }`` of its answers, so any SPARQL
engine (the embedded store or a remote one) evaluates the rest. Nothing else is rewritten;
any other SERVICE is refused by the endpoint (server/sparql.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import search_index
from .sparql_protocol import _TOKEN, analysed

#: the most things one search block expands to
MAX_RESULTS = 1000
#: the longest search text accepted
MAX_QUERY_CHARS = 200
PARAMETERS = ("matches", "lang", "limit", "score", "matchedText", "matchedProperty")


class SearchPatternError(ValueError):
    """A search block the service cannot answer; the message says why (a 400 for the client)."""


def service_iri(base: str) -> str:
    return base + "search"


@dataclass(frozen=True)
class _Token:
    kind: str
    value: str
    start: int
    end: int


def _tokens(query: str) -> list[_Token]:
    return [_Token(m.lastgroup, m.group(), m.start(), m.end()) for m in _TOKEN.finditer(query)
            if m.lastgroup not in ("comment", "space")]


def _prefixes(tokens: list[_Token]) -> dict[str, str]:
    out = {}
    for i, t in enumerate(tokens[:-2]):
        if t.kind == "name" and t.value.upper() == "PREFIX" and tokens[i + 2].kind == "iri":
            out[tokens[i + 1].value.rstrip(":")] = tokens[i + 2].value[1:-1]
    return out


def _iri(token: _Token, prefixes: dict[str, str]) -> str | None:
    """The IRI a token names (an <IRI> or a prefixed name), else None."""
    if token.kind == "iri":
        return token.value[1:-1]
    if token.kind == "name" and ":" in token.value:
        prefix, local = token.value.split(":", 1)
        if prefix in prefixes:
            return prefixes[prefix] + local
    return None


def _services(tokens: list[_Token]) -> list[int]:
    """Indexes of the tokens naming each SERVICE's endpoint (after SILENT, if any)."""
    found = []
    for i, t in enumerate(tokens):
        if t.kind == "name" and t.value.upper() == "SERVICE" and i + 1 < len(tokens):
            j = i + 1
            if tokens[j].kind == "name" and tokens[j].value.upper() == "SILENT" and j + 1 < len(tokens):
                j += 1
            found.append(j)
    return found


def only_search_services(query: str, base: str) -> bool:
    """True when every SERVICE of the query is the search service (a query without SERVICE too)."""
    tokens = _tokens(query)
    prefixes = _prefixes(tokens)
    return all(_iri(tokens[j], prefixes) == service_iri(base) for j in _services(tokens))


def uses_search(query: str, base: str) -> bool:
    # the lexer's verdict (kept per text), not the substring: an IRI may hold "services"
    if "SERVICE" not in query.upper() or not analysed(query).uses_service:
        return False
    tokens = _tokens(query)
    prefixes = _prefixes(tokens)
    return any(_iri(tokens[j], prefixes) == service_iri(base) for j in _services(tokens))


@dataclass(frozen=True)
class Block:
    """One search block: where it is in the query text and what it asks."""
    start: int
    end: int
    thing: str                 # variable name, without ?
    text: str
    lang: str | None
    limit: int
    outputs: dict[str, str]    # "score" / "matchedText" / "matchedProperty" → variable name


def blocks(query: str, base: str, max_results: int = MAX_RESULTS) -> list[Block]:
    tokens = _tokens(query)
    prefixes = _prefixes(tokens)
    found = []
    for j in _services(tokens):
        if _iri(tokens[j], prefixes) != service_iri(base):
            continue
        service = j - 1 if tokens[j - 1].value.upper() == "SERVICE" else j - 2
        found.append(_block(tokens, service, j + 1, prefixes, base, max_results))
    return found


def _block(tokens: list[_Token], service: int, i: int, prefixes: dict[str, str], base: str,
           max_results: int) -> Block:
    def fail(why: str):
        raise SearchPatternError(f"The search service block ({service_iri(base)}) is not understood: {why}. Its form: "
                                 f'SERVICE <{service_iri(base)}> {{ ?thing unm:matches "text" }}, optionally with '
                                 "unm:lang \"ar\", unm:limit 10, unm:score ?s, unm:matchedText ?t, unm:matchedProperty ?p "
                                 f"(unm: = <{base}ontology#>).")
    if i >= len(tokens) or tokens[i].value != "{":
        fail("'{' expected after the service IRI")
    end = i + 1
    depth = 1
    while end < len(tokens) and depth:
        depth += {"{": 1, "}": -1}.get(tokens[end].value, 0) if tokens[end].kind == "other" else 0
        end += 1
    if depth:
        fail("the block is not closed")
    body = tokens[i + 1:end - 1]
    if not body or body[0].kind != "var":
        fail("it must start with the variable of the things found, as in ?thing unm:matches \"…\"")
    thing = body[0].value[1:]
    given: dict[str, _Token] = {}
    k = 1
    while k < len(body):
        if body[k].value in (";", "."):
            k += 1
            continue
        if k + 1 >= len(body):
            fail(f"no value after {body[k].value}")
        iri = _iri(body[k], prefixes) or ""
        name = iri[len(base + "ontology#"):] if iri.startswith(base + "ontology#") else None
        if name not in PARAMETERS:
            fail(f"{body[k].value} is not one of unm:{', unm:'.join(PARAMETERS)}")
        if name in given:
            fail(f"unm:{name} is given twice")
        given[name] = body[k + 1]
        k += 2 + _annotation_length(body, k + 2, prefixes, name, fail)
    def string(name: str) -> str | None:
        token = given.get(name)
        if token is None:
            return None
        if token.kind != "string":
            fail(f"unm:{name} takes a string")
        return _unquote(token.value)
    text = string("matches")
    if text is None:
        fail('unm:matches "search text" is missing')
    outputs = {}
    for name in ("score", "matchedText", "matchedProperty"):
        if name in given:
            if given[name].kind != "var":
                fail(f"unm:{name} takes a variable")
            outputs[name] = given[name].value[1:]
    limit = max_results
    if "limit" in given:
        if not given["limit"].value.isdigit() or int(given["limit"].value) < 1:
            fail("unm:limit takes a positive integer")
        limit = min(int(given["limit"].value), max_results)
    return Block(tokens[service].start, tokens[end - 1].end, thing, text, string("lang"), limit, outputs)


def _annotation_length(body: list[_Token], k: int, prefixes: dict[str, str], name: str, fail) -> int:
    """How many tokens of a language tag (``"…"@en``, read as its text) or of an ``xsd:string``
    datatype (``"…"^^xsd:string``, the same literal) follow a string value at `k`."""
    def at(i: int, kind: str, value: str | None = None) -> bool:
        return i < len(body) and body[i].kind == kind and (value is None or body[i].value == value)
    if at(k, "other", "@") and at(k + 1, "name"):
        return 2
    if at(k, "other", "^") and at(k + 1, "other", "^") and k + 2 < len(body):
        if _iri(body[k + 2], prefixes) != search_index.XSD_STRING:
            fail(f"unm:{name} takes a string, not a literal of type {body[k + 2].value}")
        return 3
    return 0


_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def _unquote(token: str) -> str:
    quote = 3 if token[:3] in ('"""', "'''") else 1
    inner = token[quote:-quote] if len(token) >= 2 * quote else token[quote:]
    out, i = [], 0
    while i < len(inner):
        if inner[i] == "\\" and i + 1 < len(inner) and inner[i + 1] in "uU":
            digits = 4 if inner[i + 1] == "u" else 8  # \u0627, \U0001F600 (SPARQL 1.1 §19.2)
            code = inner[i + 2:i + 2 + digits]
            if len(code) == digits and all(c in "0123456789abcdefABCDEF" for c in code) \
                    and int(code, 16) <= 0x10FFFF and not 0xD800 <= int(code, 16) <= 0xDFFF:
                out.append(chr(int(code, 16)))
                i += 2 + digits
                continue
            out.append(inner[i + 1])
            i += 2
        elif inner[i] == "\\" and i + 1 < len(inner):
            out.append(_ESCAPES.get(inner[i + 1], inner[i + 1]))
            i += 2
        else:
            out.append(inner[i])
            i += 1
    return "".join(out)


def _literal(text: str, lang: str | None = None) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"' + (f"@{lang}" if lang else "")


def values_block(block: Block, hits: list[search_index.Hit]) -> str:
    """The VALUES clause equivalent to a search block's answers."""
    names = [block.thing] + [block.outputs[n] for n in ("score", "matchedText", "matchedProperty") if n in block.outputs]
    rows = []
    for hit in hits:
        cells = [f"<{hit.subject}>"]
        if "score" in block.outputs:
            cells.append(f"{hit.score:.4E}")
        if "matchedText" in block.outputs:
            cells.append(_literal(hit.text, hit.lang or None))
        if "matchedProperty" in block.outputs:
            cells.append(f"<{hit.property}>")
        rows.append("(" + " ".join(cells) + ")")
    return f"VALUES ({' '.join('?' + n for n in names)}) {{ {' '.join(rows)} }}"


def expand(query: str, base: str, index: search_index.SearchIndex | None, max_results: int = MAX_RESULTS) -> str:
    """The query with each search block replaced by the VALUES of its answers (a pure function of
    the query and the index); SearchPatternError for a block it cannot answer."""
    found = blocks(query, base, max_results)
    if not found:
        return query
    if index is None:
        raise search_index.IndexUnavailable("this release has no search index")
    out, last = [], 0
    for block in found:
        try:
            hits, _ = index.search(search_index.plan(block.text, MAX_QUERY_CHARS), block.limit, block.lang)
        except search_index.QueryError as error:
            raise SearchPatternError(f"unm:matches / unm:lang: {error}") from None
        out += [query[last:block.start], values_block(block, hits)]
        last = block.end
    out.append(query[last:])
    return "".join(out)


_indexes: dict[str, search_index.SearchIndex | None] = {}


def release_index(release: str | Path) -> search_index.SearchIndex | None:
    """The search index of a release folder, opened once per process (None if it has none);
    one release at a time, as the store."""
    key = str(release)
    found = _indexes.get(key, _indexes)   # (the dict itself: not there)
    if found is not _indexes:
        return found
    try:
        index = search_index.SearchIndex(Path(key) / search_index.FILE_NAME)
    except search_index.IndexUnavailable:
        index = None
    _indexes.clear()
    _indexes[key] = index
    return index


def expand_job(job: dict, error_class: type[Exception]) -> dict:
    """An evaluator job with its query pre-expanded (the same job when it has no search block);
    a bad block raises `error_class(400, title, detail)`."""
    base = job.get("base") or ""
    if not base or not uses_search(job["query"], base):
        return job
    release = job.get("release") or (str(Path(job["store"]).parent) if isinstance(job.get("store"), str) else None)
    try:
        query = expand(job["query"], base, release_index(release) if release else None)
    except SearchPatternError as error:
        raise error_class(400, "Bad search pattern", str(error)) from None
    except search_index.IndexUnavailable as error:
        raise error_class(503, "Search unavailable", f"The text search service cannot answer: {error}.") from None
    return {**job, "query": query}
