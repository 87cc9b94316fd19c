"""/search: text search over the labels and texts of the release, for people and programs.

``GET /search?q=…`` answers an HTML page in the page's language (``lang``, else
Accept-Language), or JSON for ``Accept: application/json`` (or ``format=json``). Optional:
``in=ar`` (only literals in that language), ``limit`` (1–1000, default 50). A missing, empty,
too short or too long ``q``, or a bad parameter, is a 400 that says why. The lookup is the
release's index (server/search_index.py); the same search is a SPARQL service
(server/search_service.py). The search box in every page's header sends here.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template, request
from markupsafe import Markup

from . import html_pages, i18n, search_index, search_service
from .app import publication
from .negotiation import best_match

blueprint = Blueprint("search", __name__)

PAGE_SIZE = 50
SCHEMA_POSITION = "https://schema.org/position"


@blueprint.app_context_processor
def _search_box() -> dict:
    """The header's search box words, for every template (base.html)."""
    return {"search_words": i18n.words_by_language("search")}


class BadSearch(ValueError):
    pass


@blueprint.get("/search")
def search():
    lang = i18n.chosen_language()
    as_json = request.args.get("format") == "json" or (
        request.args.get("format") is None and
        best_match(request.accept_mimetypes, ["text/html", "application/json"]) == "application/json")
    text = request.args.get("q", "")
    try:
        asked = _parameters()
        query = search_index.plan(text, search_service.MAX_QUERY_CHARS)
    except (BadSearch, search_index.QueryError) as error:
        return _bad(str(error), as_json, lang, text)
    index = search_service.release_index(publication().release.path)
    try:
        if index is None:
            raise search_index.IndexUnavailable("this release was built without a search index")
        hits, more = index.search(query, asked["limit"], asked["in"])
    except search_index.IndexUnavailable as error:
        return _problem(503, "Search unavailable", f"The search cannot answer: {error}.", as_json, lang, text)
    labels = html_pages.labels_of([h.subject for h in hits] + [h.property for h in hits])
    parts = _parts(hits, labels)
    labels.update(html_pages.labels_of(t for types, _ in parts.values() for t in types))
    results = [_result(hit, query, lang, parts, labels) for hit in hits]
    if as_json:
        response = jsonify({"q": text, "normalised": query.folded, "in": asked["in"], "limit": asked["limit"],
                            "truncated": more, "release": publication().version, "results": results})
    else:
        response = _page(lang, text, asked, results, more, 200)
    response.headers["Vary"] = "Accept, Accept-Language"
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def _parameters() -> dict:
    only = request.args.get("in") or None
    if only is not None and only not in i18n.LANGUAGES:
        raise BadSearch(f"in= must be one of {', '.join(i18n.LANGUAGES)} (the language of the matched text).")
    raw = request.args.get("limit", str(PAGE_SIZE))
    if not raw.isdigit() or not 1 <= int(raw) <= search_service.MAX_RESULTS:
        raise BadSearch(f"limit= must be a whole number from 1 to {search_service.MAX_RESULTS}.")
    return {"in": only, "limit": int(raw)}


def _result(hit: search_index.Hit, query: search_index.Plan, lang: str, parts: dict, labels: dict) -> dict:
    pub = publication()
    base = pub.settings.base
    title, title_lang = _title(hit, lang, parts, labels)
    return {
        "iri": hit.subject, "href": html_pages.page_href(hit.subject, base, lang),
        "label": title, "label_lang": title_lang,
        "property": hit.property, "property_label": _label(hit.property, lang, labels)[0],
        "matched_text": hit.text, "matched_lang": hit.lang or None, "score": hit.score,
        "snippet": [{"text": t, "match": m} for t, m in search_index.snippet(hit.text, query.terms)],
    }


def _label(iri: str, lang: str, labels: dict) -> tuple[str, str | None]:
    found = i18n.pick(labels.get(iri, {}), lang)
    if found:
        return found[0], found[1] or None
    return iri.rsplit("#", 1)[-1].rsplit("/", 1)[-1], None


def _title(hit: search_index.Hit, lang: str, parts: dict, labels: dict) -> tuple[str, str | None]:
    """The thing's label in the page's language; an unlabelled part (an objective, a point) is
    named by its type and position, as on its page."""
    if hit.subject in labels or hit.subject not in parts:
        return _label(hit.subject, lang, labels)
    types, position = parts[hit.subject]
    own = [t for t in types if t.startswith(publication().settings.base)] or types
    text, text_lang = _label(own[0], lang, labels)
    return f"{text} {position}".strip(), text_lang


def _parts(hits: list[search_index.Hit], labels: dict) -> dict[str, tuple[list[str], str]]:
    """Types and position of the unlabelled things among the hits, in one query (embedded or remote store)."""
    subjects = [h.subject for h in hits if h.subject not in labels]
    if not subjects:
        return {}
    values = " ".join(f"<{s}>" for s in subjects)
    found: dict[str, tuple[list[str], str]] = {}
    for row in publication().store.query(
            f"SELECT ?s ?type ?position WHERE {{ VALUES ?s {{ {values} }} ?s a ?type "
            f"OPTIONAL {{ ?s <{SCHEMA_POSITION}> ?position }} }}", use_default_graph_as_union=True):
        types, position = found.setdefault(row["s"].value, ([], ""))
        types.append(row["type"].value)
        if row["position"] is not None:
            found[row["s"].value] = (types, row["position"].value)
    return found


def _heading(words: dict, lang: str, text: str, found: int, more: bool) -> Markup:
    """"{n} results for “{q}”" ("More than {n} …" when the page is cut), the query isolated
    (<bdi>): its own direction must not reorder the sentence around it (an English query on an
    Arabic page, `(2019-2022)!`)."""
    query = Markup("<bdi>%s</bdi>") % text
    if not found:
        return Markup(words["none"]).format(q=query)
    return Markup(i18n.plural(words["found_more" if more else "found"], found, lang)).format(n=found, q=query)


def _page(lang: str, text: str, asked: dict, results: list, more: bool, status: int, error: str | None = None):
    words = i18n.words("search", lang)
    body = render_template(
        "search.html", lang=lang, dir=i18n.direction(lang), ui=i18n.words("page", lang), explicit=True, words=words,
        q=text, only=asked.get("in"), limit=asked.get("limit", PAGE_SIZE), results=results, more=more, error=error,
        heading=_heading(words, lang, text, len(results), more),
        more_text=words["more"].format(n=len(results)),
        languages=[{"code": c, "name": i18n.NATIVE_NAMES[c], "dir": i18n.direction(c)} for c in i18n.LANGUAGES],
        dir_of=lambda code: i18n.direction(code.split("-")[0]) if code else "auto")
    response = current_app.response_class(body, status=status, mimetype="text/html")
    response.headers["Content-Language"] = lang
    return response


def _bad(detail: str, as_json: bool, lang: str, text: str):
    return _problem(400, "Bad search", detail, as_json, lang, text)


def _problem(status: int, title: str, detail: str, as_json: bool, lang: str, text: str):
    if as_json:
        response = jsonify({"type": "about:blank", "status": status, "title": title, "detail": detail})
        response.status_code = status
        response.mimetype = "application/problem+json"
    else:
        response = _page(lang, text, {}, [], False, status, error=detail)
    response.headers["Vary"] = "Accept, Accept-Language"
    response.headers["Cache-Control"] = "no-store"
    return response
