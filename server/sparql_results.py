"""Evaluating a query and writing its answer in a standard format.

`evaluate()` runs inside an evaluator process (see query_limits): it opens the release's store
read-only, lets Oxigraph parse and evaluate the query, reads at most `max_rows` + 1 solutions
(or triples), and writes them:

- SELECT: SPARQL 1.1 Query Results JSON, XML, CSV and TSV, written here (so a result cut at
  the row cap is still a complete, valid document, and says so in `head.link` / `<link>`);
- ASK: JSON and XML as the standards define; CSV and TSV (which the standard defines for
  SELECT only) as one column `_askResult` with one row `true` or `false`, as Apache Jena does;
- CONSTRUCT / DESCRIBE: Turtle, N-Triples, RDF/XML, JSON-LD, written by Oxigraph.
"""
from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable
from xml.sax.saxutils import escape, quoteattr

import pyoxigraph as ox

from . import search_service
from .namespaces import prefixes as dataset_prefixes
from .stores import Endpoint, RemoteStore, Solutions, StoreQueryError, StoreTimeout, StoreUnavailable
from .sparql_protocol import CSV, JSONLD, NTRIPLES, RDFXML, RESULTS_JSON, RESULTS_XML, TSV, TURTLE

XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
RDF_LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
RDF_DIR_LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#dirLangString"
_RDF_FORMATS = {TURTLE: ox.RdfFormat.TURTLE, NTRIPLES: ox.RdfFormat.N_TRIPLES,
                RDFXML: ox.RdfFormat.RDF_XML, JSONLD: ox.RdfFormat.JSON_LD}
_POSITION = re.compile(r"error at (\d+):(\d+)")


class EvaluationError(Exception):
    def __init__(self, status: int, title: str, detail: str, **extra):
        super().__init__(detail)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def open_store(spec, stores: dict):
    """The release's store, opened once per evaluator (one release at a time): a folder path
    (the embedded store, read-only) or a remote store's description (see server/stores.py)."""
    key = spec if isinstance(spec, str) else (spec["endpoint"]["query_url"], spec["version"])
    store = stores.get(key)
    if store is None:
        stores.clear()
        if isinstance(spec, str):
            store = ox.Store.read_only(spec)
        else:
            from .graph_names import GraphNames
            store = RemoteStore(Endpoint(**spec["endpoint"]), GraphNames(spec["base"], spec["version"], spec["graphs"]),
                                spec["base"])
        stores[key] = store
    return store


def evaluate(job: dict, stores: dict) -> dict:
    """Evaluate `job` (a plain dict, sent over a pipe) and return the serialised answer.

    job: store, query, base, default_graphs, named_graphs, union, media_type, max_rows, link, base_prefixes
    returns: {"body": bytes, "rows": int, "truncated": bool, "form": str}
    """
    job = search_service.expand_job(job, EvaluationError)  # {base}search blocks → VALUES (docs/sparql.md)
    store = open_store(job["store"], stores)
    options: dict = {"base_iri": job.get("base")}
    if job["default_graphs"] or job["named_graphs"]:
        options["default_graph"] = [ox.NamedNode(g) for g in job["default_graphs"]]
        options["named_graphs"] = [ox.NamedNode(g) for g in job["named_graphs"]]
    elif job.get("union", True):
        # no dataset from the protocol nor from FROM / FROM NAMED in the query: the default
        # graph is the union of the named graphs (Oxigraph would let this flag override FROM)
        options["use_default_graph_as_union"] = True
    if isinstance(store, RemoteStore):
        options["timeout"] = job.get("timeout") or None
    try:
        results = store.query(job["query"], **options)
    except StoreTimeout:
        raise EvaluationError(503, "Query timed out",
                              f"The query ran longer than this endpoint's time limit of {job['timeout']:g} seconds "
                              "and was stopped. Narrow it down (a LIMIT, more specific patterns) and try again.",
                              time_limit_seconds=job["timeout"]) from None
    except StoreUnavailable as error:
        raise EvaluationError(503, "Store unavailable", f"The triple store did not answer: {error}. "
                              "Try again shortly.", retry_after=5) from None
    except StoreQueryError as error:
        raise EvaluationError(400, "Query refused by the store",
                              f"The triple store refused the query: {error}") from None
    except SyntaxError as error:
        message = str(error)
        extra = {}
        position = _POSITION.search(message)
        if position:
            extra = {"line": int(position.group(1)), "column": int(position.group(2))}
        raise EvaluationError(400, "Malformed query", f"The query is not valid SPARQL 1.1: {message}", **extra) from None
    except ValueError as error:  # e.g. an invalid graph IRI
        raise EvaluationError(400, "Bad request", str(error)) from None
    max_rows = job["max_rows"]
    media_type = job["media_type"]
    link = job.get("link")
    try:
        if isinstance(results, ox.QueryBoolean):
            return {"body": write_boolean(bool(results), media_type), "rows": 1, "truncated": False, "form": "ASK"}
        if isinstance(results, (ox.QuerySolutions, Solutions)):
            variables = [v.value for v in results.variables]
            rows = []
            for solution in results:
                if len(rows) == max_rows:
                    return {"body": write_solutions(variables, rows, media_type, link), "rows": len(rows),
                            "truncated": True, "form": "SELECT"}
                rows.append(list(solution))
            return {"body": write_solutions(variables, rows, media_type, None), "rows": len(rows),
                    "truncated": False, "form": "SELECT"}
        triples = []
        truncated = False
        for triple in results:
            if len(triples) == max_rows:
                truncated = True
                break
            triples.append(triple)
        return {"body": write_triples(triples, media_type, job.get("base_prefixes") or {}, truncated,
                                      job.get("base"), job.get("jsonld_profile", "compacted")),
                "rows": len(triples), "truncated": truncated, "form": "GRAPH"}
    except (OSError, RuntimeError, ValueError, TypeError) as error:
        raise EvaluationError(400, "Query evaluation failed", f"The query could not be evaluated: {error}") from None


# --------------------------------------------------------------------------------------------
# SELECT and ASK
# --------------------------------------------------------------------------------------------

def write_boolean(value: bool, media_type: str) -> bytes:
    word = "true" if value else "false"
    if media_type == RESULTS_JSON:
        return ('{"head":{},"boolean":%s}\n' % word).encode()
    if media_type == RESULTS_XML:
        return ('<?xml version="1.0" encoding="utf-8"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#">\n'
                f'<head></head>\n<boolean>{word}</boolean>\n</sparql>\n').encode()
    if media_type == CSV:
        return f"_askResult\r\n{word}\r\n".encode()
    if media_type == TSV:
        return f"?_askResult\n{word}\n".encode()
    raise ValueError(media_type)


def write_solutions(variables: list[str], rows: list[list], media_type: str, link: str | None) -> bytes:
    if media_type == RESULTS_JSON:
        return _json(variables, rows, link)
    if media_type == RESULTS_XML:
        return _xml(variables, rows, link)
    if media_type == CSV:
        return _csv(variables, rows)
    if media_type == TSV:
        return _tsv(variables, rows)
    raise ValueError(media_type)


def _json_term(term) -> dict:
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, ox.Literal):
        out = {"type": "literal", "value": term.value}
        datatype = term.datatype.value
        if term.language:
            out["xml:lang"] = term.language
            if getattr(term, "direction", None):
                out["its:dir"] = str(term.direction.value if hasattr(term.direction, "value") else term.direction).lower()
        elif datatype != XSD_STRING:
            out["datatype"] = datatype
        return out
    if isinstance(term, ox.Triple):
        return {"type": "triple", "value": {"subject": _json_term(term.subject),
                                            "predicate": _json_term(term.predicate),
                                            "object": _json_term(term.object)}}
    raise TypeError(term)


_JSON_TEXT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _json(variables, rows, link) -> bytes:
    # Row by row, each binding encoded at once: the whole answer as one JSON structure, then as
    # one text and its copy with the newline, took 8 times the answer's bytes at the 10,000-row
    # cap (43 MiB of Python heap for 5.4 MiB at 1M triples, in the evaluator, at its peak).
    head = {"vars": variables}
    if link:
        head["link"] = [link]
    parts = [b'{"head":' + _JSON_TEXT(head).encode() + b',"results":{"bindings":[']
    for row in rows:
        parts.append(_JSON_TEXT({v: _json_term(t) for v, t in zip(variables, row) if t is not None}).encode())
        parts.append(b",")
    if rows:
        parts.pop()
    parts.append(b"]}}\n")
    return b"".join(parts)


def _xml_term(term) -> str:
    if isinstance(term, ox.NamedNode):
        return f"<uri>{escape(term.value)}</uri>"
    if isinstance(term, ox.BlankNode):
        return f"<bnode>{escape(term.value)}</bnode>"
    if isinstance(term, ox.Literal):
        if term.language:
            return f"<literal xml:lang={quoteattr(term.language)}>{_xml_text(term.value)}</literal>"
        if term.datatype.value != XSD_STRING:
            return f"<literal datatype={quoteattr(term.datatype.value)}>{_xml_text(term.value)}</literal>"
        return f"<literal>{_xml_text(term.value)}</literal>"
    if isinstance(term, ox.Triple):
        return (f"<triple><subject>{_xml_term(term.subject)}</subject><predicate>{_xml_term(term.predicate)}"
                f"</predicate><object>{_xml_term(term.object)}</object></triple>")
    raise TypeError(term)


def _xml_text(text: str) -> str:
    # XML 1.0 cannot carry most C0 controls, U+FFFE and U+FFFF even escaped; they cannot occur
    # in RDF literals from our data, but a query can BIND them: write them as the replacement
    # character
    return escape(_NOT_XML.sub("\uFFFD", text))


_NOT_XML = re.compile("[\x00-\x08\x0B\x0C\x0E-\x1F\uD800-\uDFFF\uFFFE\uFFFF]")


def _xml(variables, rows, link) -> bytes:
    head = ['<?xml version="1.0" encoding="utf-8"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#">\n<head>\n']
    head += [f"  <variable name={quoteattr(v)}/>\n" for v in variables]
    if link:
        head.append(f"  <link href={quoteattr(link)}/>\n")
    head.append("</head>\n<results>\n")
    parts = ["".join(head).encode("utf-8")]
    for row in rows:  # each result encoded at once, as in _json
        bindings = "".join(f"<binding name={quoteattr(v)}>{_xml_term(t)}</binding>"
                           for v, t in zip(variables, row) if t is not None)
        parts.append(f"  <result>{bindings}</result>\n".encode("utf-8"))
    parts.append(b"</results>\n</sparql>\n")
    return b"".join(parts)


def _csv_field(term) -> str:
    if term is None:
        return ""
    if isinstance(term, ox.BlankNode):
        text = "_:" + term.value
    elif isinstance(term, ox.Triple):
        text = _nt(term)
    else:
        text = term.value
    if any(c in text for c in '",\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv(variables, rows) -> bytes:
    return _encoded_lines(",".join(variables), (",".join(_csv_field(t) for t in row) for row in rows), "\r\n")


def _encoded_lines(header: str, lines: Iterable[str], end: str) -> bytes:
    """The header and each line encoded as it is written (as in _json)."""
    return b"".join((line + end).encode("utf-8") for line in itertools.chain((header,), lines))


_NT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _nt(term) -> str:
    """A term in N-Triples / Turtle syntax (TSV cells)."""
    if isinstance(term, ox.NamedNode):
        return f"<{term.value}>"
    if isinstance(term, ox.BlankNode):
        return f"_:{term.value}"
    if isinstance(term, ox.Literal):
        text = '"' + "".join(_NT_ESCAPES.get(c, c) for c in term.value) + '"'
        if term.language:
            return f"{text}@{term.language}"
        if term.datatype.value != XSD_STRING:
            return f"{text}^^<{term.datatype.value}>"
        return text
    if isinstance(term, ox.Triple):
        return f"<<( {_nt(term.subject)} {_nt(term.predicate)} {_nt(term.object)} )>>"
    raise TypeError(term)


def _tsv(variables, rows) -> bytes:
    return _encoded_lines("\t".join("?" + v for v in variables),
                          ("\t".join("" if t is None else _nt(t) for t in row) for row in rows), "\n")


# --------------------------------------------------------------------------------------------
# CONSTRUCT and DESCRIBE
# --------------------------------------------------------------------------------------------

_loaders: dict = {}
#: pyld compacts ~1 000 triples a second: larger graphs are sent expanded (the same graph, still
#: JSON-LD), so that the format does not decide whether a query fits in the time limit
COMPACT_MAX_TRIPLES = 2000


def write_jsonld(triples: list, base: str, profile: str) -> bytes:
    """JSON-LD as every RDF document of the site: compacted with the published context
    ({base}context.jsonld) by default, expanded when the client asks for that profile, or
    when the graph cannot be compacted with our context (an IRI such as <schema:x>, whose
    scheme is one of its prefixes: JSON-LD 1.1 refuses to compact it, IRI confused with prefix)."""
    from pyld.jsonld import JsonLdError

    from . import jsonld
    form = jsonld.expanded(triples)
    if profile != "expanded" and len(triples) <= COMPACT_MAX_TRIPLES:
        loader = _loaders.get(base) or _loaders.setdefault(base, jsonld.Loader(base))
        try:
            form = jsonld.compacted(form, loader)
        except JsonLdError:
            pass  # the expanded form is the same graph
    return (json.dumps(form, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def write_triples(triples: list, media_type: str, prefixes: dict[str, str], truncated: bool,
                  base: str | None = None, profile: str = "compacted") -> bytes:
    if media_type == JSONLD and base:
        return write_jsonld(triples, base, profile)
    rdf_format = _RDF_FORMATS[media_type]
    if rdf_format == ox.RdfFormat.RDF_XML:
        _refuse_iris_without_xml_names(triples)
    if rdf_format in (ox.RdfFormat.TURTLE, ox.RdfFormat.RDF_XML):
        used = _used_prefixes(triples, prefixes)
        body = ox.serialize(triples, format=rdf_format, prefixes=used)
    else:
        body = ox.serialize(triples, format=rdf_format)
    if body is None:
        body = b""
    if truncated and rdf_format in (ox.RdfFormat.TURTLE, ox.RdfFormat.N_TRIPLES):
        body = (f"# Truncated: only the first {len(triples)} triples of the result "
                "(the endpoint's row limit; see X-Result-Truncated).\n").encode() + body
    if rdf_format == ox.RdfFormat.JSON_LD and not triples:
        body = b"[]"
    return body


_RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
#: an XML name that can end an IRI (the element's local name): a letter or "_", then name characters
_XML_LOCAL_NAME = re.compile(r"(?:[^\W\d]|_)[\w.\-\u00B7\u0300-\u036F\u203F\u2040]*\Z")


def _refuse_iris_without_xml_names(triples: list) -> None:
    """RDF/XML writes each predicate, and each class a node is typed with, as an element named by
    a namespace and a local name; an IRI that does not end in an XML name (<http://x.org/p/1>)
    cannot be written (RDF/XML 1.1 §2.1), and Oxigraph wrote an element `<oxprefix:>`, which is
    not XML. The graph is refused as RDF/XML instead: 406, with the formats that can carry it."""
    for t in triples:
        for term in (t.predicate, t.object if t.predicate == _RDF_TYPE else None):
            if isinstance(term, ox.NamedNode) and not _XML_LOCAL_NAME.search(term.value):
                raise EvaluationError(
                    406, "Not Acceptable",
                    f"This graph cannot be written as RDF/XML: <{term.value}> does not end in an XML name, "
                    "which RDF/XML needs for every predicate and class. Ask for Turtle, N-Triples or JSON-LD.",
                    available=[TURTLE, NTRIPLES, JSONLD])


def _used_prefixes(triples: list, prefixes: dict[str, str]) -> dict[str, str]:
    iris = set()
    for t in triples:
        for term in (t.subject, t.predicate, t.object):
            if isinstance(term, ox.NamedNode):
                iris.add(term.value)
            elif isinstance(term, ox.Literal):
                iris.add(term.datatype.value)
    lines = "\n" + "\n".join(iris)  # one substring search (in C) per namespace; no IRI holds a newline
    return {p: ns for p, ns in prefixes.items() if "\n" + ns in lines}


def default_prefixes(base: str) -> dict[str, str]:
    return dataset_prefixes(base)
