"""The interface's words (server/messages/{lang}.json): every language says everything English
says, with the same placeholders, so no page falls back to English without anyone noticing."""
from __future__ import annotations

import json
from string import Formatter

import pytest
from babel import Locale

from server.i18n import LANGUAGES, MESSAGES_DIR, plural, words


def _file(lang: str) -> dict:
    return json.loads((MESSAGES_DIR / f"{lang}.json").read_text(encoding="utf-8"))


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name is not None}


ENGLISH = _file("en")


def _forms(message) -> dict[str, str]:
    return message if isinstance(message, dict) else {"other": message}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_language_has_every_word_with_the_same_placeholders(lang):
    """…and a word that changes with a number has only the plural forms the language has
    (CLDR, as Babel knows them), "other" among them."""
    translated = _file(lang)
    categories = Locale.parse(lang).plural_form.tags | {"other"}
    assert set(translated) == set(ENGLISH)
    for section, english in ENGLISH.items():
        assert set(translated[section]) == set(english), (section, set(translated[section]) ^ set(english))
        for key, text in english.items():
            forms, wanted = _forms(translated[section][key]), _placeholders(_forms(text)["other"])
            assert "other" in forms and set(forms) <= categories, (section, key, set(forms) - categories)
            assert _placeholders(forms["other"]) == wanted, (section, key)
            assert all(_placeholders(form) <= wanted and form.strip() for form in forms.values()), (section, key)


@pytest.mark.parametrize("lang, numbers, said", [
    ("ar", (0, 1, 2, 3, 10, 11, 99, 100, 102, 103), ("لا صفوف", "صف واحد", "صفّان", "3 صفوف", "10 صفوف", "11 صفاً",
                                                      "99 صفاً", "100 صف", "102 صف", "103 صفوف")),
    ("ru", (1, 2, 5, 11, 21, 22, 25), ("1 строка", "2 строки", "5 строк", "11 строк", "21 строка", "22 строки", "25 строк")),
    ("en", (0, 1, 2), ("0 rows", "1 row", "2 rows")),
    ("fr", (0, 1, 2), ("0 ligne", "1 ligne", "2 lignes")),
    ("zh", (1, 2), ("1 行", "2 行")),
])
def test_a_number_takes_the_form_its_language_gives_it(lang, numbers, said):
    rows = words("sparql", lang)["rows"]
    assert tuple(plural(rows, n, lang).replace("{n}", str(n)) for n in numbers) == said


def test_a_word_missing_in_a_language_is_the_english_one():
    assert words("sparql", "fr")["run"] != words("sparql", "en")["run"]
    assert words("sparql", "xx") == words("sparql", "en")
