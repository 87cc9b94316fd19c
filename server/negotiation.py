"""Content negotiation for RDF documents: which format (Accept with q-values), which JSON-LD form.

Werkzeug parses the Accept header (``request.accept_mimetypes``, a MIMEAccept: q-values,
wildcards); here each entry's parameters are read too, because the JSON-LD 1.1 ``profile``
parameter selects expanded, compacted or framed output.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_options_header


@dataclass(frozen=True)
class Format:
    name: str        # short name, also the file extension of the fixed-format URL
    media_type: str
    charset: bool    # whether the Content-Type carries charset=utf-8
    label: str       # for people (links "Turtle", "JSON-LD" …)
    #: other media types a client may ask this format by (answered with `media_type`)
    aliases: tuple[str, ...] = ()

    @property
    def content_type(self) -> str:
        return f"{self.media_type}; charset=utf-8" if self.charset else self.media_type


#: In order of preference when the client has none (``*/*`` or no Accept): HTML first, as
#: Fuseki, Trifid and DBpedia do for a browser-like client.
FORMATS: tuple[Format, ...] = (
    Format("html", "text/html", True, "HTML"),
    # Harvesters often ask for plain JSON: JSON-LD is the JSON we have (as Trifid and Fuseki do).
    Format("jsonld", "application/ld+json", True, "JSON-LD", aliases=("application/json",)),
    Format("ttl", "text/turtle", True, "Turtle"),
    Format("nt", "application/n-triples", True, "N-Triples"),
    Format("rdf", "application/rdf+xml", True, "RDF/XML"),
)
BY_NAME = {f.name: f for f in FORMATS}
BY_MEDIA_TYPE = {f.media_type: f for f in FORMATS}
RDF_FORMATS = tuple(f for f in FORMATS if f.name != "html")

JSONLD_NS = "http://www.w3.org/ns/json-ld#"
PROFILES = ("compacted", "expanded", "framed")
DEFAULT_PROFILE = "compacted"


def choose_format(accept: MIMEAccept, formats: tuple[Format, ...] = FORMATS) -> Format | None:
    """The format the client prefers (highest q; ties: the more specific entry, then ours
    first), or None when it accepts none of them (→ 406). No Accept header means ``*/*``."""
    if not accept:
        return formats[0]
    by_media_type = _by_media_type(formats)
    chosen = best_match(accept, tuple(by_media_type))
    return by_media_type[chosen] if chosen else None


@lru_cache(maxsize=8)
def _by_media_type(formats: tuple[Format, ...]) -> dict[str, Format]:
    """Each media type a format answers (its own, then its aliases), in the formats' order:
    the same for every request, so built once."""
    return {media_type: fmt for fmt in formats for media_type in (fmt.media_type, *fmt.aliases)}


def best_match(accept: MIMEAccept, offers: Sequence[str]) -> str | None:
    """The offer the client prefers (highest q; ties: the more specific entry, then the offer
    listed first), None when it accepts none or sent no Accept. Unlike werkzeug's
    ``best_match``, an entry's parameters (``charset``, the JSON-LD ``profile``) do not stop it
    matching: ``text/turtle; charset=utf-8`` asks for what we serve as ``text/turtle``."""
    best: tuple[float, int, int] | None = None
    chosen = None
    for order, offer in enumerate(offers):
        quality, specificity = _quality(accept, offer)
        if quality > 0 and (best is None or (quality, specificity, -order) > best):
            best, chosen = (quality, specificity, -order), offer
    return chosen


def _quality(accept: MIMEAccept, media_type: str) -> tuple[float, int]:
    """q of the most specific Accept entry matching `media_type` (0 when none does)."""
    main, _, sub = media_type.partition("/")
    found: tuple[int, float] | None = None
    for value, quality in accept:
        ranged, _params = parse_options_header(value)
        rmain, _, rsub = ranged.lower().partition("/")
        if ranged == "*" or (rmain == "*" and rsub in ("*", "")):
            specificity = 0
        elif rmain == main and rsub == "*":
            specificity = 1
        elif rmain == main and rsub == sub:
            specificity = 2
        else:
            continue
        if found is None or specificity > found[0]:
            found = (specificity, quality)
    return (found[1], found[0]) if found else (0.0, -1)


def jsonld_profile(accept: MIMEAccept, query_value: str | None) -> str:
    """expanded, compacted or framed: from ``?profile=`` (short name or the JSON-LD profile
    IRI), else from the ``profile`` parameter of the best ``application/ld+json`` entry of
    Accept (it may list several IRIs separated by spaces), else compacted."""
    if query_value:
        name = _profile_name(query_value)
        if name:
            return name
    candidates = []
    for position, (value, quality) in enumerate(accept or ()):
        ranged, params = parse_options_header(value)
        if ranged.lower() != "application/ld+json" or quality <= 0:
            continue
        for iri in params.get("profile", "").split():
            name = _profile_name(iri)
            if name:
                candidates.append((-quality, position, name))
    return min(candidates)[2] if candidates else DEFAULT_PROFILE


def _profile_name(value: str) -> str | None:
    value = value.strip()
    if value.startswith(JSONLD_NS):
        value = value[len(JSONLD_NS):]
    return value if value in PROFILES else None
