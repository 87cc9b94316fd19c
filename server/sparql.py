"""/sparql: the SPARQL 1.1 Protocol endpoint, its service description and its query page.

- request parsing and content negotiation: sparql_protocol
- evaluation and result formats: sparql_results (run in evaluator processes)
- evaluation in killable processes, with the time limit: evaluators; light queries in the worker: light_queries
- row cap: sparql_results; per-client limit, result cache: query_limits
- the service description: service_description
See docs/sparql.md for the behaviour, status codes and choices.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, current_app, g, render_template, request
from werkzeug.exceptions import HTTPException

from . import search_service
from . import evaluators, light_queries, metrics, query_limits, response_cache
from .lru import LRU
from .app import error_response, host_url, publication, settings
from .config import PROJECT_ROOT
from .i18n import chosen_language, direction, words
from .namespaces import prefixes as dataset_prefixes
from .negotiation import best_match, jsonld_profile
from .rdfterms import to_rdflib
from .service_description import describe, limit_terms_query
from .sparql_protocol import (
    GRAPH_TYPES, HTML, JSONLD, NTRIPLES, RDFXML, RESULT_TYPES, RESULTS_JSON, TURTLE,
    MAX_NESTING, MAX_OPERATORS, NotAcceptable, ProtocolError, analysed, choose_type, content_type, operation_from, read_only_refusal,
)
from .sparql_results import RDF_LANG_STRING, XSD_STRING

blueprint = Blueprint("sparql", __name__)

ALLOWED_METHODS = "GET, HEAD, POST, OPTIONS"
EXPOSED = ("ETag, Last-Modified, Link, Content-Location, Content-Language, Vary, Retry-After, "
           "X-Result-Truncated, X-Result-Row-Limit, X-Release")
SD_TYPES = (TURTLE, JSONLD, RDFXML, NTRIPLES)
_RDFLIB_FORMATS = {TURTLE: "turtle", JSONLD: "json-ld", RDFXML: "xml", NTRIPLES: "nt"}
FORMAT_CHOICES = (("json", "JSON"), ("xml", "XML"), ("csv", "CSV"), ("tsv", "TSV"),
                  ("turtle", "Turtle"), ("ntriples", "N-Triples"), ("rdfxml", "RDF/XML"), ("jsonld", "JSON-LD"))


@blueprint.route("/sparql", methods=["GET", "POST", "OPTIONS"], provide_automatic_options=False)
def endpoint():
    if request.method == "OPTIONS":
        return _preflight()
    limit = settings().max_request_bytes
    if len(request.query_string) > limit:
        return _problem(414, "URI Too Long",
                        f"The request URI is longer than this endpoint's limit of {limit} bytes; "
                        "send a long query by POST (application/sparql-query or a form).", limit_bytes=limit)
    try:
        operation = operation_from(request)
        if operation.query is None:
            return _no_query(operation.format)
        return _answer(operation)
    except ProtocolError as error:
        return _problem(error.status, error.title, error.detail, **error.extra)
    except HTTPException as error:  # 413 from reading the body, and the like
        return _problem(error.code or 400, error.name, error.description or error.name)
    except NotAcceptable as error:
        return _problem(406, "Not Acceptable",
                        f"This answer is available as {', '.join(error.available)}, not as {error.asked!r}.",
                        available=list(error.available))


def _store_spec(pub):
    """What an evaluator process opens: the release's store folder, or how to reach the remote
    store and which release in it (picklable, as it crosses a pipe)."""
    if pub.remote:
        return {"endpoint": dataclasses.asdict(pub.store.endpoint), "base": pub.settings.base,
                "version": pub.version, "graphs": list(pub.store.names.graphs)}
    return str(pub.release.path / "store")


def _release_part(pub) -> dict:
    """What every evaluation job of this release carries: the same for every query."""
    return {
        "store": _store_spec(pub),
        "release": str(pub.release.path),  # its search index answers {base}search blocks
        "base": pub.settings.base,
        "base_prefixes": dataset_prefixes(pub.settings.base),
    }


def _preflight():
    response = current_app.response_class(status=204)
    response.headers["Allow"] = ALLOWED_METHODS
    response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
    asked = request.headers.get("Access-Control-Request-Headers")
    response.headers["Access-Control-Allow-Headers"] = asked or "Accept, Content-Type, If-None-Match, Cache-Control"
    response.headers["Access-Control-Max-Age"] = "86400"
    response.headers["Vary"] = "Access-Control-Request-Headers"
    return response


def _prefers_html() -> bool:
    """A browser: text/html named in Accept and preferred (a bare */* gets problem JSON)."""
    accept = request.accept_mimetypes
    named = any(v.split(";")[0].strip().lower() == HTML and q > 0 for v, q in accept)
    return named and best_match(accept, [HTML, "application/problem+json", "application/json"]) == HTML


def _problem(status: int, title: str, detail: str, retry_after: int | None = None, **extra):
    """An RFC 9457 problem document (JSON), or the site's HTML error page for a browser."""
    if _prefers_html():
        response = error_response(status, title, detail, **extra)
    else:
        body = json.dumps({"type": "about:blank", "status": status, "title": title, "detail": detail, **extra},
                          ensure_ascii=False, indent=1) + "\n"
        response = current_app.response_class(body.encode("utf-8"), status=status)
        response.headers["Content-Type"] = "application/problem+json; charset=utf-8"
    response.vary.add("Accept")
    response.headers["Access-Control-Expose-Headers"] = EXPOSED
    response.headers["Cache-Control"] = "no-store"
    if "publication" in g:  # the release that answered, once one did (a malformed request: none)
        response.headers["X-Release"] = g.publication.version
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    if status == 405:
        response.headers["Allow"] = ALLOWED_METHODS
    return response


# --------------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------------

def _answer(operation):
    s = settings()
    text = analysed(operation.query)
    if text.is_update:
        raise read_only_refusal()
    if text.uses_service and not search_service.only_search_services(operation.query, s.base):
        raise ProtocolError(400, "SERVICE is not supported",
                            "This endpoint evaluates no SERVICE (federated query) but its own text search, "
                            f"SERVICE <{s.base}search>; it makes no outbound "
                            "requests. Query the other endpoint yourself, or remove the SERVICE clause.")
    if text.too_complex:
        raise ProtocolError(400, "Query too complex",
                            f"The query nests brackets {text.nesting} deep and chains {text.operators} operators; "
                            f"this endpoint accepts at most {MAX_NESTING} and {MAX_OPERATORS}. Simplify it "
                            "(VALUES instead of long UNION or FILTER chains, fewer nested groups).",
                            max_nesting=MAX_NESTING, max_operators=MAX_OPERATORS)
    available = GRAPH_TYPES if text.gives_graph else RESULT_TYPES
    media_type = choose_type(request, operation.format, available, graph=text.gives_graph,
                             html=request.method in ("GET", "HEAD"))
    pub = publication()
    link = host_url() + "sparql#result-row-limit"
    profile = ""
    if media_type == JSONLD:  # as every JSON-LD of the site: compacted unless expanded is asked for
        profile = "expanded" if jsonld_profile(request.accept_mimetypes, request.args.get("profile")) == "expanded" \
            else "compacted"
    key_parts = [text.normalised, "\x1f".join(operation.default_graphs), "\x1f".join(operation.named_graphs),
                 media_type, profile, pub.version, str(s.max_result_rows), s.base]
    if media_type == HTML:  # the page's own words are in the language chosen
        key_parts.append(chosen_language())
    tag = hashlib.sha256("\x1e".join(key_parts).encode()).hexdigest()[:32]
    etag = f'W/"{tag}"'
    cache_key = tag + "\x1e" + link
    cacheable = request.method in ("GET", "HEAD") and not text.volatile
    environ = request.environ
    conditional = cacheable and ("HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MODIFIED_SINCE" in environ)
    if conditional and _not_modified(tag, pub, answered=False):
        return _finish(current_app.response_class(status=304), etag, pub, {}, html=media_type == HTML)

    cache = pub.memo("sparql-result-cache", query_limits.ResultCache)
    cached = None if text.volatile else cache.get(cache_key)
    if cached is None:
        job = {
            **pub.memo("sparql-job-release-part", lambda: _release_part(pub)),
            "query": operation.query,
            "default_graphs": list(operation.default_graphs),
            "named_graphs": list(operation.named_graphs),
            "union": not text.declares_dataset,
            "media_type": (TURTLE if text.gives_graph else RESULTS_JSON) if media_type == HTML else media_type,
            "max_rows": s.max_result_rows,
            "timeout": s.query_timeout,
            "jsonld_profile": profile or "compacted",
            "link": link,
        }
        if text.prefixes:
            job["base_prefixes"] = {**job["base_prefixes"], **text.prefixes}
        try:
            answer = _evaluate(job, text, pub, s)
        except query_limits.TooManyQueries:
            return _problem(429, "Too Many Requests",
                            f"You already have {s.max_concurrent_queries_per_client} queries running; wait for "
                            "one to finish before sending another.", retry_after=1,
                            limit=s.max_concurrent_queries_per_client)
        except evaluators.QueryTimeout:
            metrics.sparql_timeout()
            return _problem(503, "Query timed out",
                            f"The query ran longer than this endpoint's time limit of {s.query_timeout:g} seconds "
                            "and was stopped. Narrow it down (a LIMIT, more specific patterns) and try again.",
                            time_limit_seconds=s.query_timeout)
        except evaluators.ServerBusy:
            metrics.sparql_busy(s.sparql_queue_timeout)
            return _problem(503, "Server busy",
                            f"Every query evaluator stayed busy for {s.sparql_queue_timeout:g} seconds, the longest "
                            "a query waits for one here; try again shortly.",
                            retry_after=2, queue_limit_seconds=s.sparql_queue_timeout)
        except evaluators.PoolUnavailable:
            return _problem(503, "Query evaluators unavailable",
                            "This server's SPARQL evaluator processes are not running; the server starts "
                            "them again within seconds (its readiness check fails meanwhile).", retry_after=5)
        except evaluators.EvaluatorFailed:
            return _problem(503, "Query evaluation failed",
                            "The process evaluating the query stopped before answering, most likely because the "
                            f"query needed more than the memory limit of {s.sparql_memory_mb} MiB. "
                            "Narrow it down and try again.", memory_limit_mib=s.sparql_memory_mb)
        if answer[0] == "error":
            _, status, title, detail, extra = answer
            if status == 503:  # a remote store stopped the query at the limit, or did not answer
                (metrics.sparql_timeout if "time_limit_seconds" in extra else metrics.store_error)()
            if media_type == HTML:
                return _page(query=operation.query, error={"title": title, "detail": detail, **extra}, status=status)
            return _problem(status, title, detail, **extra)
        result = answer[1]
        meta = {"truncated": result["truncated"], "rows": result["rows"]}
        body = result["body"]
        if not text.volatile:
            cache.put(cache_key, body, meta)
    else:
        body, meta = cached
    if conditional and _not_modified(tag, pub):  # the same question, now that there is an answer ("*" matches)
        return _finish(current_app.response_class(status=304), etag, pub, {}, html=media_type == HTML)

    if media_type == HTML and text.gives_graph:
        response = _page(query=operation.query, graph_text=body.decode("utf-8"), truncated=meta["truncated"])
    elif media_type == HTML:
        response = _page(query=operation.query, results=json.loads(body), truncated=meta["truncated"])
    else:
        response = current_app.response_class(body, status=200)
        response.headers["Content-Type"] = content_type(media_type)
    if cacheable and query_limits.CACHE_BYTES > 0:
        response_cache.keep()  # the same for every identical GET in this release
    if meta["truncated"]:
        response.headers["X-Result-Truncated"] = "true"
        response.headers["X-Result-Row-Limit"] = str(s.max_result_rows)
        response.headers["Link"] = f'<{link}>; rel="describedby"'
    response = _finish(response, etag if cacheable else None, pub, meta)
    if text.volatile:  # NOW(), RAND(): new at each evaluation
        response.headers["Cache-Control"] = "no-store"
    return response


def _evaluate(job: dict, text, pub, s) -> tuple:
    """A light query here, on the worker's store handle (it holds no evaluator, so it takes none
    of the client's slots); any other in an evaluator, in one of the client's slots."""
    if _is_light(text, pub, s.inline_query_max_bindings):
        metrics.sparql_evaluated("worker")
        stores = pub.memo("sparql-worker-stores", lambda: {job["store"]: pub.store})
        return evaluators.answer_job(job, stores)
    metrics.sparql_evaluated("evaluator")
    limiter = query_limits.client_limiter(s.releases, f"{s.host}:{s.port}", s.max_concurrent_queries_per_client)
    with limiter.slot(request.remote_addr or "unknown"):
        return evaluators.run(job, s.query_timeout, queue_timeout=s.sparql_queue_timeout,
                              on_taken=metrics.sparql_waited)


def _is_light(text, pub, limit: int) -> bool:
    if limit <= 0 or pub.remote or text.nesting > light_queries.MAX_NESTING \
            or len(text.normalised) > light_queries.MAX_TEXT_CHARS:
        return False
    # (verdict, size of its key): the texts kept are bounded by their length, not their number
    verdicts = pub.memo("light-query-verdicts", lambda: LRU(4 << 20, lambda kept: kept[1] + 100))
    fanout = pub.release.manifest.get(light_queries.MANIFEST_KEY)
    return verdicts.get(text.normalised, lambda: (light_queries.is_light(
        text.tokens, text.prefixes, pub.store, fanout, limit), len(text.normalised)))[0]


def _not_modified(tag: str, pub, answered: bool = True) -> bool:
    """Whether the client's copy is current (RFC 9110 §13.2.2): its ETag, or, when it sends none,
    its If-Modified-Since date against the release's (an answer changes only with the release).
    "If-None-Match: *" asks whether there is an answer at all: not known before the query has
    `answered` (one that fails is answered 4xx/5xx, never 304)."""
    if request.if_none_match:
        if request.if_none_match.star_tag:
            return answered
        return request.if_none_match.contains_weak(tag)
    since = request.if_modified_since
    return since is not None and pub.created <= since


def _finish(response, etag, pub, meta, html: bool | None = None):
    """`html`: whether the answer is a page (a 304 says so here: it has no Content-Type)."""
    html = response.mimetype == HTML if html is None else html
    response.headers["Vary"] = "Accept, Accept-Language" if html else "Accept"
    response.headers["Access-Control-Expose-Headers"] = EXPOSED
    response.headers["X-Release"] = pub.version  # which release answered: for reproducible research
    if etag:
        response.headers["ETag"] = etag
        response.headers["Cache-Control"] = "public, max-age=60"
        response.headers["Last-Modified"] = pub.last_modified
    else:
        response.headers["Cache-Control"] = "no-store" if request.method == "POST" else "public, max-age=60"
    return response


# --------------------------------------------------------------------------------------------
# No query: the service description, or the query page for a browser
# --------------------------------------------------------------------------------------------

def _no_query(format_param):
    media_type = choose_type(request, format_param, SD_TYPES, graph=True, html=request.method in ("GET", "HEAD"))
    if media_type == HTML:
        return _page(query=None)
    pub = publication()
    host = host_url()
    # bounded: the Host header is the client's to choose
    cache = pub.memo("sparql-service-descriptions", lambda: query_limits.ResultCache(max_bytes=8 << 20))
    cached = cache.get(f"{host}\x1e{media_type}")
    if cached is None:
        body = _service_description(host, media_type)
        cache.put(f"{host}\x1e{media_type}", body, {})
    else:
        body = cached[0]
    tag = "sd-" + hashlib.sha256(f"{pub.version}{host}{media_type}".encode()).hexdigest()[:24]
    etag = f'W/"{tag}"'
    if _not_modified(tag, pub):
        return _finish(current_app.response_class(status=304), etag, pub, {}, html=False)
    response = current_app.response_class(body, status=200)
    response.headers["Content-Type"] = content_type(media_type)
    response_cache.keep()
    return _finish(response, etag, pub, {})


def _service_description(host: str, media_type: str) -> bytes:
    pub = publication()
    count = pub.store.query("SELECT (COUNT(*) AS ?n) { ?s ?p ?o }", use_default_graph_as_union=True)
    default_triples = int(next(iter(count))["n"].value)
    sizes = dict(pub.release.manifest.get("graphs", {}))
    base = settings().base
    terms = [tuple(to_rdflib(row[name]) for name in ("term", "p", "o"))
             for row in pub.store.query(limit_terms_query(base), use_default_graph_as_union=True)]
    graph = describe(settings(), host + "sparql", host, sizes, default_triples, terms)
    data = graph.serialize(format=_RDFLIB_FORMATS[media_type], encoding="utf-8")
    return data


# --------------------------------------------------------------------------------------------
# The query page
# --------------------------------------------------------------------------------------------

_HEADER = re.compile(r"^#\s*(title|description)(?:@(\w+))?\s*:\s*(.*)$")


def queries_folder() -> Path:
    own = settings().root / "queries"
    return own if own.is_dir() else PROJECT_ROOT / "queries"


def load_examples(folder: Path) -> list[dict]:
    """The example queries: queries/NN-slug.rq, each starting with a comment block of
    `# title@en: …`, `# title@ar: …`, `# description@en: …` (and @ar) lines."""
    examples = []
    for path in sorted(folder.glob("*.rq")):
        text = path.read_text(encoding="utf-8")
        titles, descriptions = {}, {}
        for line in text.splitlines():
            if not line.startswith("#"):
                break
            match = _HEADER.match(line)
            if match:
                target = titles if match.group(1) == "title" else descriptions
                lang = match.group(2) or "en"
                target[lang] = (target.get(lang, "") + " " + match.group(3)).strip()
        examples.append({"slug": path.stem, "titles": titles, "descriptions": descriptions, "query": text})
    return examples


@lru_cache(maxsize=8)
def _examples_cached(folder: str, stamp: tuple) -> list[dict]:
    return load_examples(Path(folder))


#: the base the example files are written with; replaced by the configured base when served
EXAMPLES_BASE = "https://w3id.org/un-meetings/"


def examples() -> list[dict]:
    folder = queries_folder()
    stamp = tuple((p.name, p.stat().st_mtime_ns) for p in sorted(folder.glob("*.rq")))
    base = settings().base
    return [{**e, "query": e["query"].replace(EXAMPLES_BASE, base)} for e in _examples_cached(str(folder), stamp)]


def _cell(term: dict, base: str, host: str) -> dict:
    kind = term["type"]
    value = term["value"]
    if kind == "uri":
        href = host + value[len(base):] if value.startswith(base) else (value if re.match(r"https?://", value) else None)
        return {"kind": "uri", "text": value, "href": href}
    if kind == "bnode":
        return {"kind": "bnode", "text": "_:" + value}
    if kind == "literal":
        datatype = term.get("datatype")
        suffix = "@" + term["xml:lang"] if "xml:lang" in term else (
            "" if datatype in (None, XSD_STRING, RDF_LANG_STRING) else "^^" + datatype)
        return {"kind": "literal", "text": value, "lang": term.get("xml:lang"), "suffix": suffix}
    return {"kind": "other", "text": json.dumps(value, ensure_ascii=False)}


def _page(query: str | None, results: dict | None = None, error: dict | None = None,
          truncated: bool = False, status: int = 200, graph_text: str | None = None):
    s = settings()
    ui_lang = chosen_language()
    ui = words("sparql", ui_lang)
    all_examples = examples()
    table = None
    if results is not None:
        if "boolean" in results:
            table = {"boolean": results["boolean"]}
        else:
            variables, host = results["head"]["vars"], host_url()
            rows = [[_cell(b[v], s.base, host) if v in b else None for v in variables]
                    for b in results["results"]["bindings"]]
            table = {"vars": variables, "rows": rows}
    body = render_template(
        "sparql.html", lang=ui_lang, dir=direction(ui_lang), ui=ui,
        examples=[{**e, "title": e["titles"].get(ui_lang) or e["titles"].get("en") or e["slug"],
                   "description": e["descriptions"].get(ui_lang) or e["descriptions"].get("en", "")}
                  for e in all_examples],
        prefixes=dataset_prefixes(s.base), query=query if query is not None else (all_examples[0]["query"] if all_examples else "SELECT * WHERE { ?s ?p ?o } LIMIT 10"),
        table=table, graph_text=graph_text, result_formats=FORMAT_CHOICES[:4], graph_formats=FORMAT_CHOICES[4:], error=error, truncated=truncated, formats=FORMAT_CHOICES, settings=s,
        ran=query is not None,
        limits=ui["limits"].format(t=f"{s.query_timeout:g}", n=s.max_result_rows, c=s.max_concurrent_queries_per_client),
        truncated_text=ui["truncated"].format(n=s.max_result_rows),
    )
    response = current_app.response_class(body, status=status, mimetype="text/html")
    response.headers["Content-Language"] = ui_lang
    return _finish(response, None, publication(), {})
