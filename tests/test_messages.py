"""The interface's words (server/messages/{lang}.json): every language says everything English
says, with the same placeholders, so no page falls back to English without anyone noticing."""
from __future__ import annotations

import json
from string import Formatter

import pytest

from server.i18n import LANGUAGES, MESSAGES_DIR, words


def _file(lang: str) -> dict:
    return json.loads((MESSAGES_DIR / f"{lang}.json").read_text(encoding="utf-8"))


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name is not None}


ENGLISH = _file("en")


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_every_language_has_every_word_with_the_same_placeholders(lang):
    translated = _file(lang)
    assert set(translated) == set(ENGLISH)
    for section, english in ENGLISH.items():
        assert set(translated[section]) == set(english), (section, set(translated[section]) ^ set(english))
        for key, text in english.items():
            assert _placeholders(translated[section][key]) == _placeholders(text), (section, key)
            assert translated[section][key].strip(), (section, key)


def test_a_word_missing_in_a_language_is_the_english_one():
    assert words("sparql", "fr")["run"] != words("sparql", "en")["run"]
    assert words("sparql", "xx") == words("sparql", "en")
