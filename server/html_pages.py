"""HTML pages for people: one page per document, in the language of the request.

The page is built from the same document graph as the RDF formats: a view model (plain dicts)
made here, rendered by ``templates/resource.html``. Property names come from the labels in the
ontology graph (``ontology/*.ttl``, including the labels of the standard terms we use); values
in the page's language come first, the other languages one click away; dates are shown in the
meeting's own offset and time zone; every linked thing is a link on the host being browsed.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from urllib.parse import quote, urlencode

import pyoxigraph as ox
from babel.dates import format_date, format_time
from babel.numbers import format_decimal
from flask import render_template

from . import documents, i18n, jsonld
from .app import publication
from .lru import LRU
from .namespaces import STANDARD, prefixes
from .negotiation import RDF_FORMATS

SCHEMA, RDF, RDFS, SKOS, XSD, OWL = (STANDARD[k] for k in ("schema", "rdf", "rdfs", "skos", "xsd", "owl"))
RDF_TYPE = RDF + "type"
TITLE_PROPERTIES = (SCHEMA + "name", SKOS + "prefLabel", RDFS + "label", STANDARD["dcterms"] + "title")
TEXT_PROPERTIES = (SCHEMA + "text", SCHEMA + "description", SCHEMA + "abstract", SKOS + "definition",
                   STANDARD["dcterms"] + "description")
#: Shown first, in this order; the rest follow alphabetically by label.
FIRST = (SCHEMA + "name", SKOS + "prefLabel", SCHEMA + "startDate", SCHEMA + "endDate", SCHEMA + "location", SCHEMA + "organizer",
         SCHEMA + "description", SCHEMA + "text", SCHEMA + "abstract", SKOS + "definition")
HIDDEN = {RDF_TYPE, SCHEMA + "position"}
MAX_DEPTH = 3


# --- labels and tables, remembered per release ---------------------------------------------

#: IRIs whose labels, or positions (or lack of them), each worker remembers per release
MAX_LABELLED = 100_000


def labels_of(iris) -> dict[str, dict[str, str]]:
    """IRI → {language: label} for those of `iris` that have labels: from a per-release cache, the
    IRIs not seen yet in one query. (Not a table of every label of the release: at 1M triples that
    cost the first page of each worker 1.8 s of CPU and kept 23 MiB in it.)"""
    return _remembered("labels", iris, documents.labels)


def positions_of(iris) -> dict[str, tuple[str, str]]:
    """IRI → (its type, its position) for those of `iris` that have a position (the parts of a
    whole: objectives, outcome points), from a per-release cache, the rest in one query."""
    base = publication().settings.base
    return _remembered("positions", iris, lambda store, missing: documents.positions(store, missing, base))


def _remembered(what: str, iris, look_up) -> dict:
    """IRI → its `what` for those of `iris` that have one: what each worker remembers of the
    release (the lack of one too), the IRIs not seen yet found by one `look_up(store, iris)`."""
    pub = publication()
    known = pub.memo(("lru", what), lambda: LRU(MAX_LABELLED))
    table: dict = {}
    missing = []
    for iri in set(iris):
        cached = known.get(iri, lambda: None)
        if cached is None:
            missing.append(iri)
        elif cached:
            table[iri] = cached
    if missing:
        found = look_up(pub.store, missing)
        for iri in missing:
            value = known.put(iri, found.get(iri) or {})
            if value:
                table[iri] = value
    return table


def _iris(document: documents.Document) -> set[str]:
    """Every IRI of the document: all a page may name (things, properties, types)."""
    return {term.value for t in document.triples for term in (t.subject, t.predicate, t.object)
            if isinstance(term, ox.NamedNode)}


def _predicates(document: documents.Document) -> set[str]:
    return {t.predicate.value for t in document.triples}


def definition_table() -> dict[str, dict[str, str]]:
    pub = publication()
    return pub.memo(("definitions",), lambda: documents.definitions(pub.store))


def warm_up(app, base: str) -> None:
    """At worker start, what the first page would otherwise pay for (~55 ms of CPU, a quarter of
    a cold page at 1M triples): compiling the templates, loading the six locales' date formats,
    processing the JSON-LD context."""
    for name in ("base.html", "resource.html", "search.html", "error.html"):
        app.jinja_env.get_template(name)
    moment = datetime(2000, 1, 1, 12, 0)
    for lang in i18n.LANGUAGES:
        format_date(moment.date(), "full", locale=lang), format_date(moment.date(), "long", locale=lang)
        format_time(moment.time(), "short", locale=lang)
    jsonld.compacted([], jsonld.Loader(base))


# --- the page -----------------------------------------------------------------------------

def page_href(iri: str, base: str, lang: str | None = None) -> str:
    """The path of the HTML page of `iri` on this host (``?lang=`` when a language is given), or
    the IRI itself if it is not under the base."""
    if not iri.startswith(base):
        return iri
    rest = iri[len(base):]
    fragment = ""
    if "#" in rest:
        rest, fragment = rest.split("#", 1)
        fragment = "#" + fragment
    if rest.startswith("id/"):
        rest = "doc/" + rest[3:]
    elif rest.startswith("graph/"):
        rest = "doc/" + rest
    return "/" + quote(rest) + (f"?lang={lang}" if lang else "") + fragment


class Page:
    """Turns one document graph into the view model of its page in one language."""

    def __init__(self, target, document: documents.Document, lang: str, explicit: bool):
        pub = publication()
        self.base = pub.settings.base
        self.prefixes = prefixes(self.base)
        self.target, self.document, self.lang, self.explicit = target, document, lang, explicit
        # labels found in the store, for what `texts` does not find in the document itself
        self.labels = labels_of(_predicates(document) if document.labelled else _iris(document))
        self._label_of: dict = {}
        self.by_subject: dict = defaultdict(lambda: defaultdict(list))
        for t in document.triples:
            self.by_subject[t.subject][t.predicate.value].append(t.object)
        self.part_properties = {p if p.startswith("http") else self.base + p for p in documents.PART_PROPERTIES}
        # things described beyond their labels: rendered inline where they are linked from
        self.described = {s for s, props in self.by_subject.items()
                          if set(props) - set(documents.LABEL_PROPERTIES)}
        self._positions: dict[str, tuple[str, str]] | None = None  # see _part_name

    # links and labels
    def href(self, iri: str) -> str:
        """Where a link to `iri` goes: its page on this host, or the IRI itself if not ours."""
        return page_href(iri, self.base, self.lang if self.explicit else None)

    def texts(self, subject, properties) -> dict[str, str]:
        props = self.by_subject.get(subject, {})
        for p in properties:
            values = {(o.language or "").lower(): o.value for o in props.get(p, []) if isinstance(o, ox.Literal)}
            if values:
                return values
        return {}

    def label(self, term) -> tuple[str, str | None]:
        """(text, its language or None) of a thing or a property, in the page's language."""
        found = self._label_of.get(term)
        if found is None:  # asked ~10 times per thing on a page (rows, links, sort keys)
            found = self._label_of[term] = self._find_label(term)
        return found

    def _find_label(self, term) -> tuple[str, str | None]:
        iri = term.value
        found = i18n.pick(self.texts(term, TITLE_PROPERTIES), self.lang) if isinstance(term, ox.NamedNode) else None
        found = found or i18n.pick(self.labels.get(iri, {}), self.lang)
        if found:
            text, lang = found
            return text, (lang or None)
        return self._part_name(term) or (self.compact(iri), None)

    def _part_name(self, term) -> tuple[str, str | None] | None:
        """"Outcome point 2": an untitled part (objective, point) named by its own type and its
        position, whether this page describes it or only links to it."""
        if not (isinstance(term, ox.NamedNode) and term.value.startswith(self.base + "id/")):
            return None
        props = self.by_subject.get(term, {})
        if props.get(SCHEMA + "position"):
            types = [t.value for t in props.get(RDF_TYPE, []) if isinstance(t, ox.NamedNode)]
            position = props[SCHEMA + "position"][0].value
        elif term.value in self._linked_positions():
            kind, position = self._positions[term.value]
            types = [kind]
        else:
            return None
        own = [t for t in types if t.startswith(self.base)] or types
        if not own:
            return None
        text, lang = self.label(ox.NamedNode(own[0]))
        return f"{text} {position}", lang

    def _linked_positions(self) -> dict[str, tuple[str, str]]:
        """Type and position of the untitled things this page links to without describing them,
        in one query, the first time a link needs one (most pages never do)."""
        if self._positions is None:
            things = self.base + "id/"
            untitled = [iri for iri in _iris(self.document) if iri.startswith(things)
                        and not self.has_title(ox.NamedNode(iri))
                        and not self.by_subject.get(ox.NamedNode(iri), {}).get(SCHEMA + "position")]
            self._positions = positions_of(untitled) if untitled else {}
            types = {kind for kind, _ in self._positions.values()} - set(self.labels)
            if types:
                self.labels = {**self.labels, **labels_of(types)}
        return self._positions

    def has_title(self, subject) -> bool:
        return bool(self.texts(subject, TITLE_PROPERTIES)) or subject.value in self.labels

    def compact(self, iri: str) -> str:
        best = None
        for prefix, ns in self.prefixes.items():
            if iri.startswith(ns) and (best is None or len(ns) > len(best[1])):
                best = (prefix, ns)
        return f"{best[0]}:{iri[len(best[1]):]}" if best else iri

    def link(self, term) -> dict:
        text, lang = self.label(term)
        return {"text": text, "lang": lang, "dir": _dir(lang), "href": self.href(term.value), "iri": term.value}

    # nodes
    def node(self, subject, depth: int = 0, parents: tuple = (), level: int | None = None) -> dict:
        props = self.by_subject.get(subject, {})
        title, title_lang = self.label(subject) if isinstance(subject, ox.NamedNode) else ("", None)
        rows = []
        order = {p: i for i, p in enumerate(FIRST)}
        for predicate in sorted(props, key=lambda p: (order.get(p, len(order)), self.label(ox.NamedNode(p))[0].lower())):
            if predicate in HIDDEN:
                continue
            objects = [o for o in props[predicate] if o not in parents]
            if not objects:
                continue
            rows.append(self.row(subject, predicate, objects, depth, (*parents, subject)))
        position = next((o.value for o in props.get(SCHEMA + "position", [])), None)
        types = [self.link(t) for t in props.get(RDF_TYPE, []) if isinstance(t, ox.NamedNode)]
        if isinstance(subject, ox.NamedNode) and title_lang is None and not self.has_title(subject):
            # an untitled part (an objective, a point): "Objective 3", named by its own type
            own = [t for t in types if t["iri"].startswith(self.base)] or types
            if own:
                title, title_lang = (f"{own[0]['text']} {position}" if position else own[0]["text"]), own[0]["lang"]
        node = {
            "iri": subject.value if isinstance(subject, ox.NamedNode) else None,
            "href": self.href(subject.value) if isinstance(subject, ox.NamedNode) else None,
            "anchor": _anchor(subject.value) if isinstance(subject, ox.NamedNode) else None,
            "title": title, "title_lang": title_lang, "title_dir": _dir(title_lang),
            "types": types,
            "rows": rows, "position": position, "when": self.when(subject),
            # heading level of its title: no level skipped below the page's h1 (or a section's h2)
            "level": min(6, level or depth + 1),
        }
        return node

    def row(self, subject, predicate: str, objects: list, depth: int, parents: tuple) -> dict:
        literals = [o for o in objects if isinstance(o, ox.Literal)]
        tagged = [o for o in literals if o.language]
        shown, more = [], []
        if tagged:
            best = i18n.pick({(o.language or "").lower(): o.language for o in tagged}, self.lang)
            best_lang = best[0].lower() if best else None
            for o in tagged:
                (shown if o.language.lower() == best_lang else more).append(self.value(subject, o, depth, parents))
            more.sort(key=lambda v: i18n.LANGUAGES.index(v["lang"]) if v["lang"] in i18n.LANGUAGES else 99)
        others = [o for o in objects if not (isinstance(o, ox.Literal) and o.language)]
        part = predicate in self.part_properties
        values = [self.value(subject, o, depth, parents, part) for o in others]
        positioned = [v for v in values if v.get("node") and v["node"]["position"] is not None]
        if positioned and len(positioned) == len(values):
            values.sort(key=lambda v: int(v["node"]["position"]))
            ordered = True
        else:
            values.sort(key=lambda v: v.get("sort", ""))
            ordered = False
        return {"predicate": self.link(ox.NamedNode(predicate)), "values": shown + values, "more": more,
                "ordered": ordered}

    def value(self, subject, o, depth: int, parents: tuple, part: bool = False) -> dict:
        if isinstance(o, ox.Literal):
            lang = o.language or None
            datatype = o.datatype.value if not lang else None
            if datatype == XSD + "dateTime":
                text, zone = self.human_datetime(o.value, subject)
                return {"kind": "date", "datetime": o.value, "text": text, "zone": zone, "sort": o.value}
            if datatype == XSD + "date":
                return {"kind": "date", "datetime": o.value, "text": self.human_date(o.value), "sort": o.value}
            return {"kind": "text", "text": o.value, "lang": lang, "dir": _dir(lang), "sort": o.value,
                    "long": len(o.value) > 160}
        line = self.one_line(o) if isinstance(o, ox.BlankNode) else None
        if line:
            return {"kind": "text", "text": line, "lang": None, "dir": "ltr", "sort": line, "long": False}
        nest = part and self.target.kind in ("thing", "graph") and o != ox.NamedNode(self.document.iri)
        if isinstance(o, ox.BlankNode) or (nest and o in self.described and depth < MAX_DEPTH and o != subject):
            nested = self.node(o, depth + 1, parents)
            return {"kind": "node", "node": nested, "sort": nested["position"] or nested["title"]}
        link = self.link(o)
        return {"kind": "link", **link, "sort": link["text"].lower()}

    def one_line(self, node) -> str | None:
        """A postal address or coordinates as people write them, on one line."""
        props = self.by_subject.get(node, {})
        types = {t.value for t in props.get(RDF_TYPE, [])}
        def get(name):
            return next((o.value for o in props.get(SCHEMA + name, []) if isinstance(o, ox.Literal)), "")
        if SCHEMA + "PostalAddress" in types:
            region = " ".join(x for x in (get("addressRegion"), get("postalCode")) if x)
            return ", ".join(x for x in (get("streetAddress"), get("addressLocality"), region, get("addressCountry")) if x) or None
        if SCHEMA + "GeoCoordinates" in types and get("latitude") and get("longitude"):
            return f"{get('latitude')}, {get('longitude')}"
        return None

    # dates
    def human_date(self, lexical: str) -> str:
        try:
            return format_date(date.fromisoformat(lexical[:10]), "long", locale=self.lang)
        except ValueError:
            return lexical

    def human_datetime(self, lexical: str, subject) -> tuple[str, str]:
        """(date and time in the page's language, "Asia/Beirut, UTC+03:00"): the wall-clock time
        of the literal's own offset, never converted to the reader's or the server's zone."""
        try:
            moment = datetime.fromisoformat(lexical)
        except ValueError:
            return lexical, ""
        text = f"{format_date(moment.date(), 'full', locale=self.lang)} {format_time(moment.time(), 'short', locale=self.lang)}"
        return text, self.zone(moment, subject)

    def zone(self, moment: datetime, subject) -> str:
        parts = [o.value for o in self.by_subject.get(subject, {}).get(unm_time_zone(self.base), [])]
        if moment.tzinfo is not None:
            parts.append(_utc_offset(moment))
        return ", ".join(parts)

    def when(self, subject) -> dict | None:
        """A one-line summary of start and end ("Thursday 28 April 2022, 10:00–16:00 (Asia/Beirut, UTC+03:00)")."""
        props = self.by_subject.get(subject, {})
        start = next((o.value for o in props.get(SCHEMA + "startDate", []) if isinstance(o, ox.Literal)), None)
        end = next((o.value for o in props.get(SCHEMA + "endDate", []) if isinstance(o, ox.Literal)), None)
        if not start:
            return None
        try:
            s = datetime.fromisoformat(start)
            e = datetime.fromisoformat(end) if end else None
        except ValueError:
            return None
        if len(start) <= 10:
            text = self.human_date(start)
            return {"text": f"{text} – {self.human_date(end)}" if end and end != start else text, "zone": ""}
        comma = "، " if self.lang == "ar" else "，" if self.lang == "zh" else ", "
        text = f"{format_date(s.date(), 'full', locale=self.lang)}{comma}{format_time(s.time(), 'short', locale=self.lang)}"
        if e and e.date() == s.date():
            text += f"–{format_time(e.time(), 'short', locale=self.lang)}"
        elif e:
            text += f" – {format_date(e.date(), 'full', locale=self.lang)}{comma}{format_time(e.time(), 'short', locale=self.lang)}"
        return {"text": text, "zone": self.zone(s, subject)}

    # the page's parts
    def incoming(self) -> list[dict]:
        root = ox.NamedNode(self.document.iri)
        groups: dict[str, list] = defaultdict(list)
        for t in self.document.triples:
            if t.object == root and t.subject != root and isinstance(t.subject, ox.NamedNode):
                groups[t.predicate.value].append(self.link(t.subject))
        return [{"predicate": self.link(ox.NamedNode(p)), "subjects": self._in_order(p, v),
                 "more": self.more_incoming(p, len(v))}
                for p, v in sorted(groups.items(), key=lambda kv: self.label(ox.NamedNode(kv[0]))[0].lower())]

    def _in_order(self, predicate: str, links: list[dict]) -> list[dict]:
        """A cut list as its "all of them" query lists it (most recent first), so that the query
        goes on where the page stops; a whole list by name."""
        kept = self.document.inbound_kept.get(predicate)
        if kept:
            position = {iri: i for i, iri in enumerate(kept)}
            return sorted(links, key=lambda l: position.get(l["iri"], len(position)))
        return sorted(links, key=lambda l: l["text"].lower())

    def more_incoming(self, predicate: str, shown: int) -> dict | None:
        """For a property whose incoming statements the document cut: how many more, and the
        SPARQL query that lists them all."""
        total = self.document.inbound_totals.get(predicate)
        if not total or total <= shown:
            return None
        query = documents.incoming_query(predicate, self.document.iri)
        text = i18n.words("page", self.lang)["more_incoming"].format(n=format_decimal(total - shown, locale=self.lang))
        return sparql_link(query, text)

    def description(self, subject) -> str:
        found = i18n.pick(self.texts(subject, TEXT_PROPERTIES), self.lang)
        text = found[0] if found else ""
        return text if len(text) <= 200 else text[:197].rsplit(" ", 1)[0] + "…"


def unm_time_zone(base: str) -> str:
    return base + "ontology#timeZone"


def _dir(lang: str | None) -> str | None:
    if not lang:
        return None
    return i18n.direction(lang.split("-")[0])


def _anchor(iri: str) -> str | None:
    return iri.rsplit("#", 1)[1] if "#" in iri else None


def _utc_offset(moment: datetime) -> str:
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# --- schema.org for search engines --------------------------------------------------------

def structured_data(page: Page, root) -> dict | None:
    props = page.by_subject.get(root, {})
    types = {t.value for t in props.get(RDF_TYPE, [])}
    name = i18n.pick(page.texts(root, (SCHEMA + "name",)), page.lang)
    if not name:
        return None
    canonical = page.target.canonical + f"?lang={page.lang}"
    if SCHEMA + "Event" in types:
        data = {"@context": "https://schema.org", "@type": "Event", "@id": root.value, "url": canonical,
                "name": name[0], "inLanguage": page.lang}
        description = i18n.pick(page.texts(root, (SCHEMA + "description",)), page.lang)
        if description:
            data["description"] = description[0]
        for key in ("startDate", "endDate"):
            value = next((o.value for o in props.get(SCHEMA + key, []) if isinstance(o, ox.Literal)), None)
            if value:
                data[key] = value
        for key in ("eventStatus", "eventAttendanceMode"):
            value = next((o.value for o in props.get(SCHEMA + key, []) if isinstance(o, ox.NamedNode)), None)
            if value:
                data[key] = value
        places = [_place(page, o) for o in props.get(SCHEMA + "location", [])]
        if places:
            data["location"] = places[0] if len(places) == 1 else places
        organizers = [_organization(page, o) for o in props.get(SCHEMA + "organizer", [])
                      if isinstance(o, ox.NamedNode)]
        if organizers:
            data["organizer"] = organizers[0] if len(organizers) == 1 else organizers
        return data
    if types & {SCHEMA + "Organization", SCHEMA + "GovernmentOrganization"}:
        data = {"@context": "https://schema.org", **_organization(page, root)}
        data["@id"] = root.value
        data["url"] = canonical
        parent = next((o for o in props.get(SCHEMA + "parentOrganization", []) if isinstance(o, ox.NamedNode)), None)
        if parent is not None:
            data["parentOrganization"] = _organization(page, parent)
        return data
    return None


def _organization(page: Page, node) -> dict:
    props = page.by_subject.get(node, {})
    types = {t.value for t in props.get(RDF_TYPE, [])}
    data = {"@type": "GovernmentOrganization" if SCHEMA + "GovernmentOrganization" in types else "Organization",
            "name": page.label(node)[0], "url": page.base + "doc/" + node.value[len(page.base) + 3:]
            if node.value.startswith(page.base + "id/") else node.value}
    acronym = i18n.pick(page.texts(node, (SCHEMA + "alternateName",)), page.lang)
    if acronym:
        data["alternateName"] = acronym[0]
    same = [o.value for o in props.get(OWL + "sameAs", []) if isinstance(o, ox.NamedNode)]
    if same:
        data["sameAs"] = same[0] if len(same) == 1 else same
    return data


def _place(page: Page, node) -> dict:
    props = page.by_subject.get(node, {})
    data = {"@type": "Place", "name": page.label(node)[0]}
    address = next((o for o in props.get(SCHEMA + "address", [])), None)
    if address is not None:
        fields = {"@type": "PostalAddress"}
        for key in ("streetAddress", "addressLocality", "addressRegion", "postalCode", "addressCountry"):
            value = next((o.value for o in page.by_subject.get(address, {}).get(SCHEMA + key, [])), None)
            if value:
                fields[key] = value
        data["address"] = fields
    geo = next((o for o in props.get(SCHEMA + "geo", [])), None)
    if geo is not None:
        lat = next((o.value for o in page.by_subject.get(geo, {}).get(SCHEMA + "latitude", [])), None)
        lon = next((o.value for o in page.by_subject.get(geo, {}).get(SCHEMA + "longitude", [])), None)
        if lat and lon:
            data["geo"] = {"@type": "GeoCoordinates", "latitude": lat, "longitude": lon}
    return data


# --- render -------------------------------------------------------------------------------

def render(target, document: documents.Document, lang: str, explicit: bool) -> str:
    page = Page(target, document, lang, explicit)
    root = ox.NamedNode(document.iri)
    if target.kind in ("ontology", "shapes"):
        sections = _vocabulary_sections(page, root)
        main = page.node(root) if root in page.by_subject else None
    else:
        sections = []
        main = page.node(root)
    title = main["title"] if main else page.compact(document.iri)
    title_lang = main["title_lang"] if main else None
    if target.kind == "shapes":  # the page's own words, in its language
        title, title_lang = {"ar": "أشكال SHACL", "en": "SHACL shapes", "fr": "Formes SHACL", "es": "Formas SHACL",
                             "ru": "Формы SHACL", "zh": "SHACL 形状"}[lang], lang
    data = structured_data(page, root) if target.kind == "thing" else None
    if target.kind == "graph":
        query = f"SELECT ?s ?p ?o WHERE {{ GRAPH <{document.iri}> {{ ?s ?p ?o }} }} LIMIT 1000"
        sparql = sparql_link(query, i18n.words("page", lang)["graph_content"])
    elif target.kind == "thing":
        query = f"SELECT ?graph ?property ?value WHERE {{ GRAPH ?graph {{ <{document.iri}> ?property ?value }} }} ORDER BY ?graph ?property"
        sparql = sparql_link(query, i18n.words("page", lang)["provenance"])
    else:
        sparql = None
    base = page.base
    return render_template(
        "resource.html", lang=lang, dir=i18n.direction(lang), page=page, main=main, sections=sections,
        title=title, title_lang=title_lang,
        iri=document.iri, target=target, incoming=page.incoming() if target.kind in ("thing", "graph") else [],
        description=page.description(root) or title,
        languages=[{"code": c, "name": i18n.NATIVE_NAMES[c], "dir": i18n.direction(c)} for c in i18n.LANGUAGES],
        canonical=target.canonical + (f"?lang={lang}" if explicit else ""),
        canonical_base=target.canonical, formats=[f for f in RDF_FORMATS],
        structured_data=jsonld.dumps_for_html(data) if data else None,
        ui=i18n.words("page", lang), base=base, sparql=sparql, triples=len(document.triples), explicit=explicit,
    )


def _vocabulary_sections(page: Page, root) -> list[dict]:
    """The terms of the ontology (or the shapes), grouped: classes, properties, other."""
    owl_class = {OWL + "Class", RDFS + "Class"}
    properties = {OWL + "ObjectProperty", OWL + "DatatypeProperty", RDF + "Property", OWL + "AnnotationProperty"}
    own = page.target.iri + "#"
    groups: dict[str, list] = {"classes": [], "properties": [], "standard": [], "other": []}
    for subject in page.by_subject:
        if subject == root:
            continue
        types = {t.value for t in page.by_subject[subject].get(RDF_TYPE, [])}
        is_own = isinstance(subject, ox.NamedNode) and subject.value.startswith(own)
        if isinstance(subject, ox.BlankNode):
            continue
        if is_own and types & owl_class:
            groups["classes"].append(subject)
        elif is_own and types & properties:
            groups["properties"].append(subject)
        elif is_own or types:
            groups["other"].append(subject)
        else:
            groups["standard"].append(subject)
    ui = i18n.words("page", page.lang)
    sections = []
    for key in ("classes", "properties", "other", "standard"):
        nodes = sorted(groups[key], key=lambda s: page.label(s)[0].lower())
        if nodes:
            sections.append({"title": ui[key], "id": key, "nodes": [page.node(n, level=3) for n in nodes]})
    return sections


def sparql_link(query: str, text: str) -> dict:
    """A link to the endpoint's page running `query`, for the templates."""
    return {"href": "/sparql?" + urlencode({"query": query}), "text": text}
