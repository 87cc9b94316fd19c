"""Languages: the six UN official languages, choosing one per request, picking labels in it,
and the interface's own words in it (server/messages/{lang}.json), numbers in its grammar."""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

from babel import Locale
from flask import request
from markupsafe import Markup, escape
from werkzeug.datastructures import LanguageAccept

#: The six UN official languages, in the UN's order (alphabetical in English).
LANGUAGES = ("ar", "zh", "en", "fr", "ru", "es")
#: When the wanted language is missing: the source language first, then English.
FALLBACK = ("ar", "en")
RTL = frozenset({"ar"})
#: The interface's words, one file per language, one section per part of the site.
MESSAGES_DIR = Path(__file__).parent / "messages"

NATIVE_NAMES = {"ar": "العربية", "zh": "中文", "en": "English", "fr": "Français", "ru": "Русский", "es": "Español"}


def chosen_language() -> str:
    """``?lang=`` if it is one of ours, else the best of Accept-Language, else Arabic (the source)."""
    asked = asked_language()
    if asked in LANGUAGES:
        return asked
    return best_language(request.accept_languages)


def best_language(accept: LanguageAccept) -> str:
    return accept.best_match(LANGUAGES) or FALLBACK[0]


def language_was_negotiated() -> bool:
    """True when the response depends on Accept-Language (so it must say Vary: Accept-Language)."""
    return asked_language() not in LANGUAGES


def asked_language() -> str:
    """``?lang=`` as a language of ours would be written: ``AR`` is ``ar``, ``en-GB`` and
    ``zh_Hant`` are ``en`` and ``zh`` (a language tag is case-insensitive, RFC 5646)."""
    asked = request.args.get("lang", "")
    return re.split(r"[-_]", asked.lower(), maxsplit=1)[0] if asked.isascii() else asked


_ARABIC_LETTERS = "\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF"
#: Arabic words, with the spaces and punctuation between them (not around them: «» stay outside)
_ARABIC_RUN = re.compile(f"[{_ARABIC_LETTERS}](?:[{_ARABIC_LETTERS}\\s.,:!?()\\-]*[{_ARABIC_LETTERS}])?")


def arabic_marked(text: str, lang: str | None) -> Markup:
    """`text` escaped for HTML, its Arabic words (an English note quoting the source, say) marked
    ``<span lang="ar" dir="rtl">``: pronounced as Arabic, and laid out right to left inside
    left-to-right text. Arabic-script text not tagged ``ar`` is taken to be Arabic, the only
    language in that script among ours."""
    if lang == "ar" or not _ARABIC_RUN.search(text):
        return escape(text)
    return Markup(_ARABIC_RUN.sub(lambda run: f'<span lang="ar" dir="rtl">{run.group()}</span>',
                                  str(escape(text))))


def direction(lang: str) -> str:
    return "rtl" if lang in RTL else "ltr"


def pick(values: Mapping[str, str], lang: str) -> tuple[str, str] | None:
    """The value in `lang`, else in the fallback languages, else any: (text, its language)."""
    for candidate in (lang, *FALLBACK, *sorted(values)):
        if candidate in values:
            return values[candidate], candidate
    return None


def by_language(literals: Iterable[tuple[str, str | None]]) -> dict[str, str]:
    """(text, language tag) pairs → {language: text}; untagged text counts as ''."""
    return {(tag or "").lower(): text for text, tag in literals}


#: A word that changes with a number: its forms by CLDR plural category, "other" always there.
Plural = Mapping[str, str]


@lru_cache(maxsize=None)
def words(section: str, lang: str) -> dict[str, str | Plural]:
    """The interface's words of one part of the site (a section of server/messages/{lang}.json)
    in `lang`, with the English word wherever a translation is missing."""
    english = _messages("en")[section]
    if lang == "en" or lang not in LANGUAGES:
        return english
    return {**english, **_messages(lang).get(section, {})}


@lru_cache(maxsize=None)
def words_by_language(section: str) -> dict[str, dict[str, str | Plural]]:
    return {lang: words(section, lang) for lang in LANGUAGES}


def plural(message: str | Plural, n: int, lang: str) -> str:
    """The form of `message` that goes with the number `n` in `lang`, by the language's CLDR
    plural rules (Babel): "1 row", "2 rows"; Arabic has six forms, Russian four, Chinese one."""
    if isinstance(message, str):
        return message
    return message.get(_plural_category(lang)(n), message["other"])


@lru_cache(maxsize=None)
def _plural_category(lang: str):
    return Locale.parse(lang).plural_form


@lru_cache(maxsize=None)
def _messages(lang: str) -> dict[str, dict[str, str]]:
    return json.loads((MESSAGES_DIR / f"{lang}.json").read_text(encoding="utf-8"))
