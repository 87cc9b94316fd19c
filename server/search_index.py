"""The release's text-search index: labels and texts in any language, in one SQLite file.

Written by ``release.build`` next to the store (``search.sqlite``), read by the search page
(server/search.py) and by the SPARQL search service (server/search_service.py).

What is indexed: every language-tagged literal of an IRI (names, labels, descriptions, texts,
in the six languages and any other), and the plain strings of the label and text properties
below. One row per distinct (subject, property, literal).

How it matches: text is normalised (``normalise``: case folded, Latin and other diacritics and
Arabic harakat removed, tatweel dropped, alef forms / alef maqsura / teh marbuta unified,
œ and æ written oe and ae, digits made ASCII, punctuation and symbols made space) before it is
indexed and before a query is looked up. SQLite FTS5's trigram tokenizer then finds any substring of three characters or more, in
any script (Arabic, Cyrillic, Chinese without spaces alike); one- and two-character Chinese
(CJK) terms are found in a second column holding the CJK unigrams and bigrams of the text. The
terms of a query (split at spaces) must all occur in the same literal; a language filter is a
marker in the indexed text (see ``_marker``), so it is part of the same FTS5 match.

Order: names and labels first, then texts; within each, the shorter literal first (the share
of it the query covers: ``score``). The rows are written in that order, so a query reads the
best matches first and stops at its limit instead of ranking every match.
"""
from __future__ import annotations

import re
import sqlite3
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox

FILE_NAME = "search.sqlite"
MEDIA_TYPE = "application/vnd.sqlite3"
#: bumped when the file's layout changes
SCHEMA_VERSION = 2

SCHEMA_ORG = "https://schema.org/"
SKOS = "http://www.w3.org/2004/02/skos/core#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
DCTERMS = "http://purl.org/dc/terms/"
#: names and labels: shown first
LABEL_PROPERTIES = (SCHEMA_ORG + "name", SCHEMA_ORG + "alternateName", SKOS + "prefLabel", SKOS + "altLabel",
                    RDFS + "label", DCTERMS + "title")
#: longer texts
TEXT_PROPERTIES = (SCHEMA_ORG + "description", SCHEMA_ORG + "text", SCHEMA_ORG + "abstract", SKOS + "definition",
                   DCTERMS + "description")
XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"

#: the shortest term looked up by trigram; shorter terms only in Chinese/Japanese/Korean script
MIN_TERM = 3
LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")
_CJK = re.compile(r"[\u2E80-\u9FFF\uAC00-\uD7AF\uF900-\uFAFF\U00020000-\U0002FA1F]+")


# --------------------------------------------------------------------------------------------
# Normalisation (the same for indexed text and queries)
# --------------------------------------------------------------------------------------------

#: letters folded to another before anything else (Arabic orthographic variants that search
#: engines treat as one; Persian forms of yeh and kaf; Russian ё)
_SPECIAL = {
    "\u0671": "\u0627",   # ٱ alef wasla → ا
    "\u0649": "\u064A",   # ى alef maqsura → ي
    "\u0629": "\u0647",   # ة teh marbuta → ه
    "\u06CC": "\u064A",   # ی farsi yeh → ي
    "\u06A9": "\u0643",   # ک keheh → ك
    "\u0640": "",         # ـ tatweel
    "\u0451": "\u0435", "\u0401": "\u0435",   # ё Ё → е
    "\u0153": "oe", "\u0152": "oe", "\u00E6": "ae", "\u00C6": "ae",   # œ Œ æ Æ (NFKD keeps them): œuvre = oeuvre
}


class _FoldTable(dict):
    """code point → its normalised text, computed on first use (a `str.translate` table)."""

    def __missing__(self, code: int) -> str:
        self[code] = folded = _fold(chr(code))
        return folded


def _fold(char: str) -> str:
    if char in _SPECIAL:
        return _SPECIAL[char]
    category = unicodedata.category(char)
    if category == "Nd":
        return str(unicodedata.digit(char, 0))
    if category[0] in "PSZ" or category == "Cc":   # punctuation, symbols (^ + < $ |), spaces
        return " "
    if category in ("Cf", "Mn", "Me"):   # bidi and zero-width marks; harakat and accents alone
        return ""
    if "\u0400" <= char <= "\u04FF":      # Cyrillic: й stays й (a letter, not и with a mark)
        return char.casefold()
    decomposed = unicodedata.normalize("NFKD", char)   # أ → ا + hamza above, é → e + ´, ﬁ → fi
    kept = "".join(c for c in decomposed if unicodedata.category(c) not in ("Mn", "Me"))
    return "".join(_SPECIAL.get(c, c) for c in kept.casefold())


_TABLE = _FoldTable()


def normalise(text: str) -> str:
    """Text as it is indexed and looked up: folded (see the module's doc), one space between words."""
    return " ".join(text.translate(_TABLE).split())


def normalise_with_positions(text: str) -> tuple[str, list[int]]:
    """`normalise(text)` and, for each of its characters, the index in `text` it comes from
    (to show where a match is in the original, diacritics and all)."""
    out: list[str] = []
    where: list[int] = []
    for i, char in enumerate(text):
        for c in char.translate(_TABLE):
            if c == " " and (not out or out[-1] == " "):
                continue
            out.append(c)
            where.append(i)
    if out and out[-1] == " ":
        out.pop()
        where.pop()
    return "".join(out), where


def cjk_grams(normalised: str) -> str:
    """The one- and two-character grams of the CJK runs of a normalised text, each between
    spaces, so that the trigram index finds a one- or two-character term as " 会 " or " 会议 "."""
    grams: list[str] = []
    for run in _CJK.findall(normalised):
        grams.extend(run)
        grams.extend(run[i:i + 2] for i in range(len(run) - 1))
    return " " + "  ".join(grams) + " " if grams else ""


# --------------------------------------------------------------------------------------------
# Writing the index (at build time)
# --------------------------------------------------------------------------------------------

def _marker(lang: str) -> str:
    """A language tag, as it is written in the indexed text: between control characters, which
    no normalised text or query holds. So a language filter is part of the FTS5 match (fast),
    not a check of every match."""
    return "\x01" + (lang.lower() or "-") + "\x01"


def _markers(lang: str) -> str:
    """The markers of a row's language: its primary subtag, and the whole tag if it has more."""
    primary = lang.split("-")[0]
    return _marker(primary) + " " + (_marker(lang) + " " if lang != primary else "")


def write(path: Path, store_path: Path) -> int:
    """Write the index of the store's labels and texts to `path`; returns the number of rows."""
    store = ox.Store.read_only(str(store_path))
    labels, named = set(LABEL_PROPERTIES), set(LABEL_PROPERTIES + TEXT_PROPERTIES)
    found = set()
    for quad in store.quads_for_pattern(None, None, None, None):   # one pass (faster than a SPARQL FILTER)
        literal, subject = quad.object, quad.subject
        if isinstance(literal, ox.Literal) and isinstance(subject, ox.NamedNode) and (
                literal.language or (quad.predicate.value in named and literal.datatype.value == XSD_STRING)):
            found.add((subject.value, quad.predicate.value, literal.value, literal.language or ""))
    del store
    rows = []
    for subject, prop, text, lang in found:
        folded = normalise(text)
        if folded:
            rows.append((0 if prop in labels else 1, len(folded), subject, prop, lang, text, folded))
    rows.sort()
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    try:
        db.executescript(f"""
            PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA page_size = 4096;
            PRAGMA user_version = {SCHEMA_VERSION};
            CREATE TABLE entry (id INTEGER PRIMARY KEY, tier INTEGER NOT NULL, length INTEGER NOT NULL,
                                subject TEXT NOT NULL, property TEXT NOT NULL, lang TEXT NOT NULL, text TEXT NOT NULL);
            CREATE VIRTUAL TABLE trigrams USING fts5(folded, grams, content='', columnsize=0,
                                                     tokenize='trigram case_sensitive 1', detail=full);
        """)
        with db:
            db.executemany("INSERT INTO entry VALUES (?, ?, ?, ?, ?, ?, ?)",
                           ((i, *row[:6]) for i, row in enumerate(rows, 1)))
            db.executemany("INSERT INTO trigrams(rowid, folded, grams) VALUES (?, ?, ?)",
                           ((i, _markers(row[4]) + row[6], cjk_grams(row[6])) for i, row in enumerate(rows, 1)))
        db.execute("INSERT INTO trigrams(trigrams) VALUES ('optimize')")
        db.commit()
        db.execute("VACUUM")
    finally:
        db.close()
    return len(rows)


# --------------------------------------------------------------------------------------------
# Looking up (at request time)
# --------------------------------------------------------------------------------------------

class QueryError(ValueError):
    """A search query that cannot be looked up (empty, too short, too long); the message says why."""


class IndexUnavailable(RuntimeError):
    """The release has no usable index (none, another layout, unreadable): a server-side condition."""


@dataclass(frozen=True)
class Hit:
    subject: str
    property: str
    lang: str
    text: str          # the matched literal, as published
    score: float       # the share of the literal the query covers, 0–1 (1: the whole literal)
    is_label: bool


@dataclass(frozen=True)
class Plan:
    """A query, normalised and split: the FTS5 expressions to run."""
    folded: str
    terms: tuple[str, ...]
    match: str          # the FTS5 expression (terms hold no '"': normalisation made it a space)


def plan(query: str, max_chars: int) -> Plan:
    """Normalise and check a query; QueryError says what is wrong with it."""
    if len(query) > max_chars:
        raise QueryError(f"The search text is {len(query)} characters long; at most {max_chars} are accepted.")
    folded = normalise(query)
    if not folded:
        raise QueryError("Give a word to search for (the search text is empty, or only punctuation).")
    terms = tuple(dict.fromkeys(folded.split()))
    long = [t for t in terms if len(t) >= MIN_TERM]
    short_cjk = [t for t in terms if len(t) < MIN_TERM and _CJK.fullmatch(t)]
    if not long and not short_cjk:
        raise QueryError(f"Search for at least {MIN_TERM} letters (in Chinese, Japanese or Korean script, 1).")
    match = [f'folded : "{t}"' for t in long] + [f'grams : " {t} "' for t in short_cjk]
    return Plan(folded, terms, " AND ".join(match))


class SearchIndex:
    """A release's index, opened read-only (one SQLite connection per thread)."""

    def __init__(self, path: Path):
        if not path.is_file():
            raise IndexUnavailable(f"no search index at {path}")
        self.path = path
        self._local = threading.local()
        try:
            version = self._db().execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as error:
            raise IndexUnavailable(f"{path}: {error}") from None
        if version != SCHEMA_VERSION:
            raise IndexUnavailable(f"{path} has layout {version}, this server reads {SCHEMA_VERSION}")

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(f"file:{self.path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
            self._local.db = db
        return db

    def search(self, query: Plan, limit: int, lang: str | None = None) -> tuple[list[Hit], bool]:
        """The best match of each of at most `limit` things, and whether there were more;
        `lang`: only literals in that language (a BCP 47 tag; "en" also finds "en-GB")."""
        if lang is not None and not LANGUAGE_TAG.fullmatch(lang):
            raise QueryError(f"{lang[:40]!r} is not a language tag (such as ar, zh, en-GB).")
        sql, params = _select(query, lang)
        best: dict[str, Hit] = {}
        more = False
        span = len(query.folded)
        try:
            for subject, prop, tag, text, tier, length in self._db().execute(sql, params):
                if subject in best:
                    continue
                if len(best) == limit:
                    more = True
                    break
                best[subject] = Hit(subject, prop, tag, text, round(min(1.0, span / max(length, 1)), 4), tier == 0)
        except sqlite3.Error as error:
            raise IndexUnavailable(f"{self.path}: {error}") from None
        hits = sorted(best.values(), key=lambda h: (not h.is_label, -h.score))
        return hits, more


def _select(query: Plan, lang: str | None) -> tuple[str, list]:
    """Rows in the order they were written (the best first): the FTS5 table drives, so that the
    scan stops at the limit instead of collecting every match."""
    match = query.match + (f' AND folded : "{_marker(lang)}"' if lang else "")
    return ("SELECT e.subject, e.property, e.lang, e.text, e.tier, e.length FROM trigrams t "
            "JOIN entry e ON e.id = t.rowid WHERE trigrams MATCH ? ORDER BY t.rowid", [match])


def _whole_words(text: str, left: int, right: int, first_start: int, first_end: int) -> tuple[int, int]:
    """The window [left, right) moved in to the nearest spaces, so that it does not cut a word,
    never past the first match; unchanged in a text without spaces there (Chinese)."""
    if left > 0 and not text[left - 1].isspace():
        space = re.search(r"\s+", text[left:first_start])
        if space:
            left += space.end()
    if right < len(text) and not text[right].isspace():
        spaces = [m.start() for m in re.finditer(r"\s", text[first_end:right])]
        if spaces:
            right = first_end + spaces[-1]
    return left, right


def snippet(text: str, terms: tuple[str, ...], width: int = 160) -> list[tuple[str, bool]]:
    """A window of `text` around its first match, as (piece, is_match) parts: every match of
    the query's terms in it marked, in the original spelling (diacritics and all)."""
    folded, where = normalise_with_positions(text)
    spans = []
    for term in terms:
        at = folded.find(term)
        while at >= 0:
            end = where[at + len(term) - 1] + 1
            while end < len(text) and unicodedata.category(text[end]) in ("Mn", "Me", "Cf"):
                end += 1   # the marks on the match's last letter belong to it
            spans.append((where[at], end))
            at = folded.find(term, at + 1)
    if not spans:
        return [(text if len(text) <= width else text[:width].rsplit(" ", 1)[0] + "…", False)]
    spans.sort()
    first_start, first_end = spans[0]
    left = max(0, first_start - max(0, width - (first_end - first_start)) // 3)
    right = max(first_end, min(len(text), left + width))
    left, right = _whole_words(text, left, right, first_start, first_end)
    parts: list[tuple[str, bool]] = [("…", False)] if left else []
    at = left
    for start, end in spans:
        start, end = max(start, at), min(end, right)
        if start >= end:
            continue
        parts += [(text[at:start], False), (text[start:end], True)]
        at = end
    parts.append((text[at:right], False))
    if right < len(text):
        parts.append(("…", False))
    merged: list[tuple[str, bool]] = []
    for piece, is_match in parts:
        if not piece:
            continue
        if merged and merged[-1][1] == is_match:
            merged[-1] = (merged[-1][0] + piece, is_match)
        else:
            merged.append((piece, is_match))
    return merged
