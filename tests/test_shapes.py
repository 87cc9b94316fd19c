"""The SHACL shapes (shapes/shapes.ttl): the project's data conforms, and each kind of careless
edit is caught, with the focus node, path and message a person needs to fix it.

Each negative test copies ontology/, shapes/ and data/ to a temporary folder, makes one precise
textual edit to one file (asserting that the text it replaces is there), validates the copy
with the real validator (server.validation.validate_sources) and looks for the expected
violation. The expected violation must also be absent from the unedited data, so no test can
pass because of something that was already wrong.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rdflib import RDF, SH, Graph, Literal, URIRef
from rdflib.collection import Collection

from server import loading
from server.config import PROJECT_ROOT, Settings
from server.validation import THING_IRI_SHAPE, Report, Violation, shapes_graph, validate_sources

BASE = Settings().base
SCHEMA = "https://schema.org/"
SKOS = "http://www.w3.org/2004/02/skos/core#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
UNM = BASE + "ontology#"

MEETING = BASE + "id/meeting/nua-regional-commissions-2022"
GA_MEETING = BASE + "id/meeting/ga-high-level-meeting-nua-2022"
OUTCOME = BASE + "id/document/nua-regional-commissions-2022-outcome"
PROJECT = BASE + "id/project/nua-inter-regional-cooperation"
PLACE = BASE + "id/place/un-headquarters"


def objective(n: int) -> str:
    return BASE + f"id/objective/nua-regional-commissions-2022-{n}"


def point(n: int) -> str:
    return BASE + f"id/outcome-point/nua-regional-commissions-2022-{n}"


def organization(slug: str) -> str:
    return BASE + f"id/organization/{slug}"


def topic(slug: str) -> str:
    return BASE + f"id/topic/{slug}"


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_report() -> Report:
    """The verdict on the project's own sources."""
    return validate_sources(Settings()).report


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A private copy of ontology/, shapes/ and data/ to break."""
    for folder in ("ontology", "shapes", "data"):
        shutil.copytree(PROJECT_ROOT / folder, tmp_path / folder)
    return tmp_path


def edit(root: Path, relative: str, old: str, new: str, count: int = 1) -> None:
    """Replace `old` by `new` in one file; `old` must occur exactly `count` times."""
    path = root / relative
    text = path.read_text(encoding="utf-8")
    found = text.count(old)
    assert found == count, f"{relative}: expected {count} occurrence(s) of {old!r}, found {found}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def edit_in_block(root: Path, relative: str, subject: str, old: str, new: str) -> None:
    """Replace `old` by `new` inside the Turtle block of `subject` (from the line that starts with it
    to the next blank line); `old` must occur exactly once in that block."""
    path = root / relative
    text = path.read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(subject)}\n", text, re.MULTILINE)
    assert match, f"{relative}: no block for {subject}"
    end = text.find("\n\n", match.start())
    end = len(text) if end == -1 else end
    block = text[match.start():end]
    assert block.count(old) == 1, f"{relative}: expected one {old!r} in the block of {subject}"
    path.write_text(text[:match.start()] + block.replace(old, new) + text[end:], encoding="utf-8")


def edit_everywhere(root: Path, pattern: str, new: str) -> int:
    """Replace a regular expression in every data file; returns the number of replacements."""
    total = 0
    for path in sorted((root / "data").rglob("*.ttl")):
        text, n = re.subn(pattern, new, path.read_text(encoding="utf-8"))
        if n:
            path.write_text(text, encoding="utf-8")
            total += n
    return total


def line_of(root: Path, relative: str, needle: str) -> int:
    text = (root / relative).read_text(encoding="utf-8")
    assert text.count(needle) == 1, f"{needle!r} is not unique in {relative}"
    return text[: text.index(needle)].count("\n") + 1


def matching(report: Report, focus: str, path: str | None, phrase: str) -> list[Violation]:
    return [
        v for v in report.violations
        if v.severity == "Violation" and v.focus == focus and v.path == path and phrase in v.message
    ]


def describe(report: Report) -> str:
    return "\n".join(f"- {v.severity} {v.focus} {v.path} {v.message!r} ({v.shape})" for v in report.violations)


def assert_caught(root: Path, real_report: Report, focus: str, path: str | None, phrase: str) -> list[Violation]:
    """Validate the edited copy: it must not conform, and the expected violation must be new.
    Returns every matching violation."""
    assert not matching(real_report, focus, path, phrase), "already violated before the edit"
    report = validate_sources(Settings(root=root)).report
    assert not report.conforms, "the edited data still conforms"
    found = matching(report, focus, path, phrase)
    assert found, f"no violation on {focus} / {path} with {phrase!r}; got:\n{describe(report)}"
    return found


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LODPUB_")}
    return subprocess.run([sys.executable, "-m", "server.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=PROJECT_ROOT, env=env)


# ---------------------------------------------------------------------------------------------
# The project's own data
# ---------------------------------------------------------------------------------------------

def test_project_data_conforms(real_report):
    violations = [v for v in real_report.violations if v.severity == "Violation"]
    assert real_report.conforms and not violations, describe(real_report)


def test_shapes_do_not_depend_on_the_base(project_copy, real_report):
    """The same files validated under another base give the same results, moved to that base."""
    other = "https://data.example.org/un/"
    report = validate_sources(Settings(root=project_copy, base=other)).report

    def key(v: Violation, base: str):
        strip = lambda s: s.replace(base, "{base}") if s else s  # noqa: E731
        return strip(v.focus), strip(v.path), strip(v.shape), v.severity

    assert report.conforms == real_report.conforms
    assert sorted(key(v, other) for v in report.violations) == sorted(key(v, BASE) for v in real_report.violations)


# ---------------------------------------------------------------------------------------------
# The shapes themselves: readable reports
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shacl() -> Graph:
    settings = Settings()
    return shapes_graph(loading.parse_files(loading.shapes_files(settings), settings.base), settings.base)


def _languages(graph: Graph, node, predicate) -> set[str]:
    return {o.language for o in graph.objects(node, predicate) if isinstance(o, Literal)}


def _all_shapes(graph: Graph) -> set:
    shapes = set(graph.subjects(RDF.type, SH.NodeShape)) | set(graph.subjects(RDF.type, SH.PropertyShape))
    for predicate in (SH.property, SH.node, SH.qualifiedValueShape):
        shapes |= set(graph.objects(None, predicate))
    for predicate in (SH["or"], SH["and"], SH.xone):
        for head in graph.objects(None, predicate):
            shapes |= set(Collection(graph, head))
    return shapes


CORE_PARAMETERS = [SH[p] for p in (
    "class datatype nodeKind minCount maxCount minInclusive maxInclusive pattern languageIn uniqueLang "
    "equals in hasValue qualifiedValueShape or node").split()]


def test_every_shape_is_named_and_described_in_arabic_and_english(shacl):
    shapes = _all_shapes(shacl)
    assert len(shapes) > 100
    for shape in shapes:
        assert isinstance(shape, URIRef), f"anonymous shape {shape}: name it so that it can be described"
        assert {"ar", "en"} <= _languages(shacl, shape, SH.name), shape
        assert {"ar", "en"} <= _languages(shacl, shape, SH.description), shape


def test_every_constraint_has_an_english_and_arabic_message(shacl):
    for shape in _all_shapes(shacl):
        if any((shape, p, None) in shacl for p in CORE_PARAMETERS):
            assert _languages(shacl, shape, SH.message) == {"ar", "en"}, shape
        for constraint in shacl.objects(shape, SH.sparql):
            assert _languages(shacl, constraint, SH.message) == {"ar", "en"}, constraint
            # the message of a SPARQL constraint is its own: the shape holding it adds none
            assert not _languages(shacl, shape, SH.message), shape


def test_thing_iri_shape_is_declared_for_the_validator_to_complete(shacl):
    shape = URIRef(BASE + THING_IRI_SHAPE)
    assert (shape, RDF.type, SH.NodeShape) in shacl
    assert (shape, SH.nodeKind, SH.IRI) in shacl
    # the only pattern is the one server/validation.py adds for the configured base
    assert [str(p) for p in shacl.objects(shape, SH.pattern)] == [
        "^" + re.escape(BASE) + "id/[a-z0-9]+(-[a-z0-9]+)*/[a-z0-9]+(-[a-z0-9]+)*$"]
    targets = {str(t) for t in shacl.objects(shape, SH.targetClass)}
    assert {SCHEMA + "Event", SCHEMA + "Organization", SCHEMA + "Place", UNM + "Objective",
            UNM + "OutcomePoint", SCHEMA + "CreativeWork", SKOS + "Concept"} <= targets
    assert SCHEMA + "WebPage" not in targets  # pages we cite live elsewhere


def test_shapes_use_relative_iris_only():
    text = (PROJECT_ROOT / "shapes" / "shapes.ttl").read_text(encoding="utf-8")
    statements = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "@prefix unm:     <ontology#> ." in statements and "@prefix unmsh:   <shapes#> ." in statements
    assert not re.search(r"@base|^\s*BASE\s", statements, re.MULTILINE | re.IGNORECASE)
    assert BASE not in statements and "w3id.org" not in statements
    assert "nua-regional-commissions" not in text  # general shapes: no meeting named


# ---------------------------------------------------------------------------------------------
# Required properties, and their types
# ---------------------------------------------------------------------------------------------

THE_MEETING = "meeting:nua-regional-commissions-2022"


def test_meeting_without_start_date(project_copy, real_report):
    edit_in_block(project_copy, "data/meeting/source-ar.ttl", THE_MEETING,
                  '    schema:startDate "2022-04-28T10:00:00+03:00"^^xsd:dateTime ;\n', "")
    assert_caught(project_copy, real_report, MEETING, SCHEMA + "startDate",
                  "a meeting needs exactly one schema:startDate")


@pytest.mark.parametrize("relative, old, new, path, phrase", [
    ("data/meeting/source-ar.ttl", '    schema:endDate "2022-04-28T16:00:00+03:00"^^xsd:dateTime ;\n', "",
     "endDate", "a meeting needs exactly one schema:endDate"),
    ("data/meeting/source-ar.ttl", "    schema:location place:un-headquarters ;", "",
     "location", "a meeting needs at least one schema:location"),
    ("data/meeting/editorial.ttl",
     "    schema:organizer organization:eca, organization:ece, organization:eclac, organization:escap, organization:escwa ;\n",
     "", "organizer", "a meeting needs at least one schema:organizer"),
    ("data/meeting/editorial.ttl", "    schema:eventStatus schema:EventScheduled ;\n", "",
     "eventStatus", "Missing or invalid schema:eventStatus"),
    ("data/meeting/editorial.ttl", "schema:eventStatus schema:EventScheduled ;", "schema:eventStatus schema:EventHappened ;",
     "eventStatus", "Missing or invalid schema:eventStatus"),
])
def test_meeting_without_a_required_property(project_copy, real_report, relative, old, new, path, phrase):
    edit_in_block(project_copy, relative, THE_MEETING, old, new)
    assert_caught(project_copy, real_report, MEETING, SCHEMA + path, phrase)


def test_meeting_without_description(project_copy, real_report):
    edit(project_copy, "data/meeting/source-ar.ttl", "    schema:description\n        \"ينضوي", "    schema:disambiguatingDescription\n        \"ينضوي")
    edit(project_copy, "data/meeting/source-en.ttl", "    schema:description\n        \"This high-level", "    schema:disambiguatingDescription\n        \"This high-level")
    assert_caught(project_copy, real_report, MEETING, SCHEMA + "description", "Missing description")


def test_start_date_of_the_wrong_type(project_copy, real_report):
    edit(project_copy, "data/meeting/source-ar.ttl",
         '"2022-04-28T10:00:00+03:00"^^xsd:dateTime', '"2022-04-28T10:00:00+03:00"')
    assert_caught(project_copy, real_report, MEETING, SCHEMA + "startDate", "Wrong type of schema:startDate")


def test_objective_position_below_one(project_copy, real_report):
    edit_in_block(project_copy, "data/meeting/source-ar.ttl", "objective:nua-regional-commissions-2022-1",
                  'schema:position 1 ;', 'schema:position 0 ;')
    assert_caught(project_copy, real_report, objective(1), SCHEMA + "position", "at least 1")


def test_objective_position_of_the_wrong_type(project_copy, real_report):
    edit_in_block(project_copy, "data/meeting/source-ar.ttl", "objective:nua-regional-commissions-2022-3",
                  'schema:position 3 ;', 'schema:position "3" ;')
    assert_caught(project_copy, real_report, objective(3), SCHEMA + "position", "mistyped schema:position")


@pytest.mark.parametrize("old, new, focus, path, phrase", [
    ("    unm:objectiveOf meeting:nua-regional-commissions-2022 .\n\nobjective:nua-regional-commissions-2022-2",
     "    .\n\nobjective:nua-regional-commissions-2022-2",
     objective(1), UNM + "objectiveOf", "an objective needs exactly one unm:objectiveOf"),
    ('    schema:isPartOf document:nua-regional-commissions-2022-outcome .\n\npoint:nua-regional-commissions-2022-3',
     "    .\n\npoint:nua-regional-commissions-2022-3",
     point(2), SCHEMA + "isPartOf", "an outcome point needs exactly one schema:isPartOf"),
])
def test_objective_and_point_without_their_parent(project_copy, real_report, old, new, focus, path, phrase):
    edit(project_copy, "data/meeting/source-ar.ttl", old, new)
    assert_caught(project_copy, real_report, focus, path, phrase)


def test_objective_without_text(project_copy, real_report):
    edit(project_copy, "data/meeting/source-ar.ttl",
         '    schema:text "تسليط الضوء على الآليات المؤسسية', '    schema:disambiguatingDescription "تسليط الضوء على الآليات المؤسسية')
    edit(project_copy, "data/meeting/source-en.ttl",
         '    schema:text "Highlight institutional mechanisms', '    schema:disambiguatingDescription "Highlight institutional mechanisms')
    assert_caught(project_copy, real_report, objective(5), SCHEMA + "text", "Missing text")


def test_place_without_a_postal_address(project_copy, real_report):
    edit(project_copy, "data/places/reference.ttl", "        a schema:PostalAddress ;\n", "")
    assert_caught(project_copy, real_report, PLACE, SCHEMA + "address", "that is a schema:PostalAddress")


def test_postal_address_without_country(project_copy, real_report):
    edit(project_copy, "data/places/reference.ttl",
         '        schema:postalCode "10017" ;\n        schema:addressCountry "US"\n', '        schema:postalCode "10017"\n')
    report = validate_sources(Settings(root=project_copy)).report
    assert not report.conforms
    # the address itself (a blank node) ...
    assert [v for v in report.violations if v.path == SCHEMA + "addressCountry"
            and "Missing or invalid schema:addressCountry" in v.message], describe(report)
    # ... and the place whose address it is
    assert_caught(project_copy, real_report, PLACE, SCHEMA + "address", "with locality and country")


def test_topic_concept_without_scheme(project_copy, real_report):
    edit(project_copy, "data/topics/editorial.ttl",
         "topic:mayors\n    a skos:Concept ;\n    skos:inScheme scheme:topics ;\n",
         "topic:mayors\n    a skos:Concept ;\n")
    assert_caught(project_copy, real_report, topic("mayors"), SKOS + "inScheme",
                  "a concept needs at least one skos:inScheme")


def test_organisation_same_as_a_literal(project_copy, real_report):
    edit(project_copy, "data/organizations/reference.ttl", "    owl:sameAs wd:Q1355485 .", '    owl:sameAs "Q1355485" .')
    assert_caught(project_copy, real_report, organization("escwa"), "http://www.w3.org/2002/07/owl#sameAs",
                  "Wrong owl:sameAs")


# ---------------------------------------------------------------------------------------------
# Dates: time zone, order
# ---------------------------------------------------------------------------------------------

def test_start_date_time_without_time_zone(project_copy, real_report):
    edit(project_copy, "data/meeting/source-ar.ttl",
         '"2022-04-28T10:00:00+03:00"^^xsd:dateTime', '"2022-04-28T10:00:00"^^xsd:dateTime')
    assert_caught(project_copy, real_report, MEETING, SCHEMA + "startDate", "Date-time without a time zone")


def test_end_date_time_without_time_zone(project_copy, real_report):
    edit(project_copy, "data/meeting/source-ar.ttl",
         '"2022-04-28T16:00:00+03:00"^^xsd:dateTime', '"2022-04-28T16:00:00"^^xsd:dateTime')
    assert_caught(project_copy, real_report, MEETING, SCHEMA + "endDate", "Date-time without a time zone")


def test_end_before_start(project_copy, real_report):
    edit(project_copy, "data/meeting/source-ar.ttl",
         '"2022-04-28T16:00:00+03:00"^^xsd:dateTime', '"2022-04-28T09:00:00+03:00"^^xsd:dateTime')
    [violation] = assert_caught(project_copy, real_report, MEETING, SCHEMA + "endDate", "End before start")
    assert "2022-04-28T09:00:00+03:00" in violation.message and "2022-04-28T10:00:00+03:00" in violation.message


def test_end_before_start_with_dates_only(project_copy, real_report):
    edit(project_copy, "data/meeting/source-en.ttl", '"2023-10-31"^^xsd:date', '"2020-12-31"^^xsd:date')
    assert_caught(project_copy, real_report, PROJECT, SCHEMA + "endDate", "End before start")


def test_end_date_before_start_date_time(project_copy, real_report):
    """Mixed: a date-only end on the day before a date-time start."""
    edit(project_copy, "data/meeting/source-ar.ttl",
         '"2022-04-28T16:00:00+03:00"^^xsd:dateTime', '"2022-04-27"^^xsd:date')
    assert_caught(project_copy, real_report, MEETING, SCHEMA + "endDate", "End before start")


def test_end_date_on_the_start_day_is_not_before_it(project_copy, real_report):
    """Mixed, same day: not an error (dates are compared as calendar days)."""
    edit(project_copy, "data/meeting/source-ar.ttl",
         '"2022-04-28T16:00:00+03:00"^^xsd:dateTime', '"2022-04-28"^^xsd:date')
    report = validate_sources(Settings(root=project_copy)).report
    assert not [v for v in report.violations if "End before start" in v.message], describe(report)


def test_date_times_are_compared_as_instants(project_copy, real_report):
    """08:30+01:00 is 07:30Z, after the start 10:00+03:00 (07:00Z), though it reads earlier."""
    edit(project_copy, "data/meeting/source-ar.ttl",
         '"2022-04-28T16:00:00+03:00"^^xsd:dateTime', '"2022-04-28T08:30:00+01:00"^^xsd:dateTime')
    report = validate_sources(Settings(root=project_copy)).report
    assert not [v for v in report.violations if "End before start" in v.message], describe(report)
    edit(project_copy, "data/meeting/source-ar.ttl",
         '"2022-04-28T08:30:00+01:00"^^xsd:dateTime', '"2022-04-28T06:30:00+01:00"^^xsd:dateTime')
    assert_caught(project_copy, real_report, MEETING, SCHEMA + "endDate", "End before start")


# ---------------------------------------------------------------------------------------------
# Languages
# ---------------------------------------------------------------------------------------------

def test_objective_without_english_text(project_copy, real_report):
    edit(project_copy, "data/meeting/source-en.ttl",
         'objective:nua-regional-commissions-2022-3\n    schema:text "Foster dialogue on the urban dimension of nationally '
         'determined contributions and climate resilience and adaption."@en .\n', "")
    assert_caught(project_copy, real_report, objective(3), SCHEMA + "text", "Missing English version")


def test_meeting_description_without_arabic(project_copy, real_report):
    edit(project_copy, "data/meeting/source-ar.ttl", "    schema:description\n        \"ينضوي", "    schema:disambiguatingDescription\n        \"ينضوي")
    assert_caught(project_copy, real_report, MEETING, SCHEMA + "description", "Missing Arabic version")


def test_closing_statement_without_english(project_copy, real_report):
    """unm:closingStatement is one of ours: the shapes reach it through the configured base."""
    edit(project_copy, "data/meeting/translation.ttl", "    unm:closingStatement\n        \"During the high-level",
         "    skos:note\n        \"During the high-level")
    assert_caught(project_copy, real_report, OUTCOME, UNM + "closingStatement", "Missing English version")


def test_web_page_names_need_not_be_translated(real_report):
    """A cited page's name is its title, in its own language: no Arabic-and-English rule on it."""
    pages = [v for v in real_report.violations if "webpage" in v.focus or "unescwa.org" in v.focus]
    assert not pages, describe(real_report)


def test_second_english_name_of_an_organisation(project_copy, real_report):
    edit(project_copy, "data/organizations/reference.ttl",
         '        "Economic Commission for Africa"@en ,\n',
         '        "Economic Commission for Africa"@en ,\n        "United Nations Economic Commission for Africa"@en ,\n')
    assert_caught(project_copy, real_report, organization("eca"), SCHEMA + "name", "Two values in one language")


def test_commission_without_chinese_name(project_copy, real_report):
    edit(project_copy, "data/organizations/reference.ttl",
         '        "Экономическая и социальная комиссия для Азии и Тихого океана"@ru ,\n        "亚洲及太平洋经济社会委员会"@zh ;',
         '        "Экономическая и социальная комиссия для Азии и Тихого океана"@ru ;')
    assert_caught(project_copy, real_report, organization("escap"), SCHEMA + "name", "No Chinese name")


def test_topic_without_russian_label(project_copy, real_report):
    edit(project_copy, "data/topics/editorial.ttl", '        "Мэры"@ru ,\n', "")
    assert_caught(project_copy, real_report, topic("mayors"), SKOS + "prefLabel", "No Russian preferred label")


def test_ontology_term_without_spanish_label(project_copy, real_report):
    edit(project_copy, "ontology/un-meetings.ttl", '        "Reunión de grupo de expertos"@es ,\n', "")
    assert_caught(project_copy, real_report, UNM + "ExpertGroupMeeting", RDFS + "label", "No Spanish label")


def test_untagged_name(project_copy, real_report):
    edit(project_copy, "data/meeting/source-en.ttl", '    schema:name "Outcome document"@en ;', '    schema:name "Outcome document" ;')
    assert_caught(project_copy, real_report, OUTCOME, SCHEMA + "name", "Missing language tag")


def test_editorial_note_only_in_english(project_copy, real_report):
    edit(project_copy, "data/places/reference.ttl",
         '        "العنوان البريدي والإحداثيات الجغرافية مأخوذة من مصادر ثانوية، والإحداثيات تقريبية."@ar ,\n', "")
    assert_caught(project_copy, real_report, PLACE, SKOS + "editorialNote", "Editorial note without an Arabic")


# ---------------------------------------------------------------------------------------------
# Positions 1…n of objectives and outcome points
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, n, new_position, focus, path, phrase, value", [
    # duplicates
    ("objective", 3, '2', MEETING, UNM + "hasObjective", "Duplicate position 2", objective(3)),
    ("point", 2, '1', OUTCOME, UNM + "hasPoint", "Duplicate position 1", point(2)),
    # a gap: n members, one numbered beyond n
    ("objective", 6, '7', MEETING, UNM + "hasObjective", "no schema:position between 1 and 6", objective(6)),
    ("point", 3, '4', OUTCOME, UNM + "hasPoint", "no schema:position between 1 and 3", point(3)),
    # a position removed
    ("objective", 5, None, MEETING, UNM + "hasObjective", "no schema:position between 1 and 6", objective(5)),
    ("point", 1, None, OUTCOME, UNM + "hasPoint", "no schema:position between 1 and 3", point(1)),
])
def test_positions_are_one_to_n(project_copy, real_report, kind, n, new_position, focus, path, phrase, value):
    old = f'    schema:position {n} ;\n'
    new = f"    schema:position {new_position} ;\n" if new_position else ""
    edit_in_block(project_copy, "data/meeting/source-ar.ttl", f"{kind}:nua-regional-commissions-2022-{n}", old, new)
    found = assert_caught(project_copy, real_report, focus, path, phrase)
    assert value in {v.value for v in found}


def test_removed_position_is_also_reported_on_the_objective(project_copy, real_report):
    edit_in_block(project_copy, "data/meeting/source-ar.ttl", "objective:nua-regional-commissions-2022-4",
                  '    schema:position 4 ;\n', "")
    assert_caught(project_copy, real_report, objective(4), SCHEMA + "position",
                  "an objective needs exactly one position")


# ---------------------------------------------------------------------------------------------
# Links to things of the right class
# ---------------------------------------------------------------------------------------------

def test_location_is_an_organisation(project_copy, real_report):
    edit(project_copy, "data/meeting/source-ar.ttl", "    schema:location place:un-headquarters ;",
         "    schema:location organization:escwa ;")
    assert_caught(project_copy, real_report, MEETING, SCHEMA + "location", "must be the IRI of a schema:Place")


def test_organizer_is_a_place(project_copy, real_report):
    edit(project_copy, "data/meeting/editorial.ttl", "organization:escap, organization:escwa ;",
         "organization:escap, place:un-headquarters ;")
    assert_caught(project_copy, real_report, MEETING, SCHEMA + "organizer", "must be the IRI of a schema:Organization")


def test_objective_link_to_an_outcome_point(project_copy, real_report):
    edit(project_copy, "data/meeting/source-ar.ttl", "        objective:nua-regional-commissions-2022-6 ;",
         "        objective:nua-regional-commissions-2022-6,\n        point:nua-regional-commissions-2022-1 ;")
    assert_caught(project_copy, real_report, MEETING, UNM + "hasObjective", "must be the IRI of a unm:Objective")


def test_point_link_to_an_objective(project_copy, real_report):
    edit(project_copy, "data/meeting/source-ar.ttl",
         "    unm:hasPoint point:nua-regional-commissions-2022-1,",
         "    unm:hasPoint objective:nua-regional-commissions-2022-1, point:nua-regional-commissions-2022-1,")
    assert_caught(project_copy, real_report, OUTCOME, UNM + "hasPoint", "must be the IRI of a unm:OutcomePoint")


def test_subject_of_an_objective_is_an_organisation(project_copy, real_report):
    edit(project_copy, "data/meeting/editorial.ttl", "    dcterms:subject topic:mayors ;\n    schema:about topic:mayors .",
         "    dcterms:subject organization:escwa ;\n    schema:about organization:escwa .")
    assert_caught(project_copy, real_report, objective(5), "http://purl.org/dc/terms/subject", "Wrong topic")


def test_subject_may_be_an_sdg(project_copy, real_report):
    edit(project_copy, "data/meeting/editorial.ttl", "    dcterms:subject topic:mayors ;\n    schema:about topic:mayors .",
         "    dcterms:subject topic:mayors, sdg:11.3 ;\n    schema:about topic:mayors, sdg:11.3 .")
    report = validate_sources(Settings(root=project_copy)).report
    assert not [v for v in report.violations if v.focus == objective(5) and v.severity == "Violation"], describe(report)


def test_topic_written_only_as_dcterms_subject(project_copy, real_report):
    edit(project_copy, "data/meeting/editorial.ttl", "    schema:about topic:mayors .", "    .")
    assert_caught(project_copy, real_report, objective(5), "http://purl.org/dc/terms/subject", "Topics written once")


def test_objective_of_another_meeting_than_the_one_listing_it(project_copy, real_report):
    # objective 2 names the General Assembly meeting, while our meeting lists it
    edit(project_copy, "data/meeting/source-ar.ttl",
         "    unm:objectiveOf meeting:nua-regional-commissions-2022 .\n\nobjective:nua-regional-commissions-2022-3",
         "    unm:objectiveOf meeting:ga-high-level-meeting-nua-2022 .\n\nobjective:nua-regional-commissions-2022-3")
    report = validate_sources(Settings(root=project_copy)).report
    found = [v for v in report.violations if v.focus == objective(2) and "Inconsistent inverse" in v.message]
    assert found and not [v for v in real_report.violations if "Inconsistent inverse" in v.message], describe(report)
    assert {v.value for v in found} == {MEETING, GA_MEETING}


# ---------------------------------------------------------------------------------------------
# IRIs outside the scheme
# ---------------------------------------------------------------------------------------------

def test_meeting_renamed_outside_the_scheme(project_copy, real_report):
    assert edit_everywhere(project_copy, r"meeting:nua-regional-commissions-2022(?=[\s;,.])", "<id/Meeting/X_1>") > 5
    assert_caught(project_copy, real_report, BASE + "id/Meeting/X_1", None, "IRI outside the scheme")


def test_organisation_renamed_outside_the_scheme(project_copy, real_report):
    assert edit_everywhere(project_copy, r"organization:eca(?=[\s;,.])", "<things/x>") >= 3
    assert_caught(project_copy, real_report, BASE + "things/x", None, "IRI outside the scheme")


def test_topic_renamed_to_an_unknown_kind(project_copy, real_report):
    assert edit_everywhere(project_copy, r"topic:mayors(?=[\s;,.])", "<id/topic/Mayors>") >= 3
    assert_caught(project_copy, real_report, BASE + "id/topic/Mayors", None, "IRI outside the scheme")


def test_iri_scheme_follows_the_configured_base(project_copy, real_report):
    """Under another base, the same relative IRIs conform; an absolute IRI under the old base does not."""
    other = "https://data.example.org/un/"
    edit(project_copy, "data/places/reference.ttl", "place:un-headquarters\n    a schema:Place ;",
         f"<{BASE}id/place/un-headquarters>\n    a schema:Place ;")
    # the meeting's location still points to the relative (now other-base) IRI: that is expected
    report = validate_sources(Settings(root=project_copy, base=other)).report
    assert matching(report, BASE + "id/place/un-headquarters", None, "IRI outside the scheme"), describe(report)


# ---------------------------------------------------------------------------------------------
# Parse errors, and the command line
# ---------------------------------------------------------------------------------------------

def test_parse_error_reports_file_and_line(project_copy):
    relative = "data/places/reference.ttl"
    line = line_of(project_copy, relative, '    schema:addressRegion "NY" ;')
    edit(project_copy, relative, '    schema:addressRegion "NY" ;', '    schema:addressRegion = "NY" ;')
    with pytest.raises(loading.SourceError) as caught:
        validate_sources(Settings(root=project_copy))
    assert caught.value.path == project_copy / relative
    assert caught.value.line == line


def test_parse_error_in_the_shapes_reports_file_and_line(project_copy):
    relative = "shapes/shapes.ttl"
    line = line_of(project_copy, relative, "unmsh:ThingIriShape\n")
    edit(project_copy, relative, "unmsh:ThingIriShape\n", "unmsh:ThingIriShape unmsh:\n")
    with pytest.raises(loading.SourceError) as caught:
        validate_sources(Settings(root=project_copy))
    assert caught.value.path == project_copy / relative
    assert caught.value.line in (line, line + 1)


def test_cli_reports_a_parse_error_with_file_and_line(project_copy):
    relative = "data/meeting/source-en.ttl"
    line = line_of(project_copy, relative, '    schema:name "Outcome document"@en ;')
    edit(project_copy, relative, '    schema:name "Outcome document"@en ;', '    schema:name "Outcome document"@en ;;; ]')
    result = run_cli("validate", "--root", str(project_copy))
    assert result.returncode == 1
    assert f"{project_copy / relative}:{line}" in result.stderr, result.stderr


def test_cli_reports_a_shacl_violation(project_copy):
    edit(project_copy, "data/meeting/source-ar.ttl", "    schema:location place:un-headquarters ;",
         "    schema:location organization:escwa ;")
    result = run_cli("validate", "--root", str(project_copy))
    assert result.returncode == 1
    assert MEETING in result.stderr
    assert "must be the IRI of a schema:Place" in result.stderr
    assert SCHEMA + "location" in result.stderr
    assert "NOT publishable" in result.stderr


@pytest.mark.parametrize("command", ["validate", "build"])
def test_cli_refuses_a_root_without_sources(tmp_path, command):
    """A mistyped --root used to build and serve an empty release ("0 triples conform")."""
    (tmp_path / "ontology").mkdir()
    shutil.copy(PROJECT_ROOT / "ontology" / "un-meetings.ttl", tmp_path / "ontology")
    result = run_cli(command, "--root", str(tmp_path))
    assert result.returncode == 1
    assert f"error: {tmp_path / 'shapes'}: no Turtle file (*.ttl) here" in result.stderr, result.stderr
    assert not (tmp_path / "releases").exists() or not any((tmp_path / "releases").iterdir())


def test_cli_accepts_the_project_data():
    result = run_cli("validate")
    assert result.returncode == 0, result.stderr
