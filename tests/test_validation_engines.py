"""The fast SHACL engine (pyshacl-turbo) and the reference (pySHACL) give the same report, and the
fast one is used only for what it has been checked on (server/validation_engines.py).

The broken cases are those of tests/test_shapes.py, collected here again: while they run, every
validation they make goes through both engines, must give the same verdict and the same results,
and the test then goes on with pySHACL's report as before. No timing is asserted.
"""
from __future__ import annotations

import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from server import loading
from server.config import PROJECT_ROOT, Settings
from server.validation import (Report, ValidatedSources, format_report, run_shacl, shapes_graph,
                               validate_sources)
from server.validation_engines import EngineError, turbo_available
from tests import test_shapes as cases
from tests.test_shapes import project_copy, real_report  # noqa: F401 - fixtures of the reused cases

# ---------------------------------------------------------------------------------------------
# Agreement
# ---------------------------------------------------------------------------------------------

def results(report: Report) -> list[tuple]:
    """(focus node, path, source shape, severity, value) of every result."""
    return sorted((v.focus, v.path, v.shape, v.severity, v.value) for v in report.violations)


_DATE_TIME_WITHOUT_ZONE = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(?![Z+\d-])")


def known_divergence(reference: Report, fast: Report) -> list:
    """pySHACL's results that pyshacl-turbo rightly lacks: "end before start" (unmsh:EndNotBeforeStart)
    between a date-time without a time zone and one with. XPath, hence SPARQL, leaves that
    comparison undetermined and Oxigraph's evaluator answers no; rdflib's answers yes. Such a
    value always breaks unmsh:*DateTimeZone as well, so the verdict cannot depend on it; these are
    allowed only next to that result, reported by both engines on the same node."""
    zone_less = {v.focus for v in fast.violations if v.shape.endswith("DateTimeZone")}
    return [v for v in reference.violations
            if v.shape.endswith("#DatesShape") and v.constraint == "SPARQLConstraintComponent"
            and _DATE_TIME_WITHOUT_ZONE.search(v.message) and v.focus in zone_less]


def assert_same_report(reference: Report, fast: Report) -> None:
    assert (reference.engine, fast.engine) == ("pyshacl", "turbo")
    assert fast.conforms == reference.conforms, f"turbo says conforms={fast.conforms}:\n{format_report(fast)}"
    diverging = known_divergence(reference, fast)
    expected = Report(reference.conforms, [v for v in reference.violations if v not in diverging], engine="pyshacl")
    assert results(fast) == results(expected), (
        f"pySHACL:\n{format_report(reference)}\n\nturbo:\n{format_report(fast)}")
    # and the report a person reads (file:line, shape, focus, path, value, message, severity)
    assert format_report(fast) == format_report(expected)


def validate_with_both(settings: Settings) -> ValidatedSources:
    """pySHACL's verdict on the sources, after checking that turbo's on the same parsed sources
    (so with the same blank node labels) is the same."""
    reference = validate_sources(settings, engine="pyshacl")
    shacl = shapes_graph(reference.shapes, settings.base)
    fast = run_shacl(loading.all_quads(reference.data + reference.ontology), shacl, reference.data, "turbo")
    assert_same_report(reference.report, fast)
    return reference


@pytest.fixture(scope="module", autouse=True)
def every_validation_by_both_engines():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cases, "validate_sources", validate_with_both)
        yield


def _reused(name: str, function) -> bool:
    parameters = inspect.signature(function).parameters
    return (name.startswith("test_") and not name.startswith(("test_cli_", "test_parse_error"))
            and ("project_copy" in parameters or "real_report" in parameters))


# Every case of tests/test_shapes.py that validates (a broken copy of) the project's data, run
# again here with both engines: pytest collects them from this module's namespace.
REUSED = {name: f for name, f in vars(cases).items() if inspect.isfunction(f) and _reused(name, f)}
globals().update(REUSED)


def test_the_broken_cases_are_reused():
    assert len(REUSED) > 40 and "test_end_before_start" in REUSED and "test_positions_are_one_to_n" in REUSED


def test_the_known_divergence_is_narrow(project_copy):
    """A zone-less end date-time: pySHACL also says "end before start", turbo does not; anything
    else about the same data is the same (checked by validate_with_both)."""
    cases.edit(project_copy, "data/meeting/source-ar.ttl",
               '"2022-04-28T16:00:00+03:00"^^xsd:dateTime', '"2022-04-28T16:00:00"^^xsd:dateTime')
    reference = validate_with_both(Settings(root=project_copy)).report
    [diverging] = known_divergence(reference, reference)
    assert diverging.focus == cases.MEETING and "End before start" in diverging.message


def test_both_engines_accept_the_project_data():
    both = validate_with_both(Settings())
    assert both.report.conforms and not both.report.violations, format_report(both.report)


def test_both_engines_agree_on_a_generated_corpus(tmp_path):
    """bench/generate.py's synthetic meetings (blank-node addresses, six languages, positions),
    with a few breakages spread over the batch files."""
    subprocess.run([sys.executable, "-m", "bench.generate", "--meetings", "12", "--out", str(tmp_path)],
                   check=True, cwd=PROJECT_ROOT, capture_output=True)
    validate_with_both(Settings(root=tmp_path))
    batch = next((tmp_path / "data" / "synthetic").glob("batch-*/source-ar.ttl"))
    text = batch.read_text(encoding="utf-8")
    text = re.sub(r"schema:position 2 ;", "schema:position 1 ;", text, count=3)
    text = text.replace("^^xsd:dateTime", "", 1)
    batch.write_text(text, encoding="utf-8")
    both = validate_with_both(Settings(root=tmp_path))
    assert not both.report.conforms and len(both.report.violations) >= 4, format_report(both.report)


# ---------------------------------------------------------------------------------------------
# What the fast engine does not know
# ---------------------------------------------------------------------------------------------

def _add_shape(root: Path, turtle: str) -> None:
    with (root / "shapes" / "shapes.ttl").open("a", encoding="utf-8") as shapes:
        shapes.write("\n" + turtle)


CLOSED_SHAPE = """unmsh:ClosedPlaceShape
    a sh:NodeShape ;
    sh:targetClass schema:Place ;
    sh:closed false .
"""

REGEX_CONSTRAINT = """unmsh:NoLowercaseCountry
    a sh:NodeShape ;
    sh:targetClass schema:PostalAddress ;
    sh:sparql [
        a sh:SPARQLConstraint ;
        sh:prefixes <shapes> ;
        sh:select "SELECT $this WHERE { $this schema:addressCountry ?c . FILTER (REGEX(?c, '[a-z]')) }"
    ] .
"""


@pytest.mark.parametrize("shape, construct", [(CLOSED_SHAPE, "sh:closed"), (REGEX_CONSTRAINT, "Builtin_REGEX")],
                         ids=["shacl-term", "sparql-function"])
def test_an_unknown_construct_falls_back_to_pyshacl_loudly(project_copy, capsys, shape, construct):
    _add_shape(project_copy, shape)
    report = validate_sources(Settings(root=project_copy), engine="auto").report
    assert report.engine == "pyshacl"
    warning = capsys.readouterr().err
    assert "using pySHACL" in warning and construct in warning, warning


def test_an_unknown_construct_is_refused_when_turbo_is_asked_for(project_copy):
    _add_shape(project_copy, CLOSED_SHAPE)
    with pytest.raises(EngineError, match="sh:closed"):
        validate_sources(Settings(root=project_copy), engine="turbo")


def test_auto_uses_turbo_on_the_project_shapes():
    assert turbo_available(), "pyshacl-turbo is a dependency (pyproject.toml)"
    assert validate_sources(Settings(), engine="auto").report.engine == "turbo"


# ---------------------------------------------------------------------------------------------
# The command line: --engine, and the progress on stderr
# ---------------------------------------------------------------------------------------------

def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=PROJECT_ROOT)


@pytest.mark.parametrize("engine", ["pyshacl", "turbo"])
def test_validate_names_the_engine_it_used(engine):
    result = run_cli("validate", "--engine", engine)
    assert result.returncode == 0, result.stderr
    assert f"engine: {engine}" in result.stdout


def test_validate_reports_the_same_violation_with_either_engine(tmp_path):
    for folder in ("ontology", "shapes", "data"):
        shutil.copytree(PROJECT_ROOT / folder, tmp_path / folder)
    cases.edit(tmp_path, "data/meeting/source-ar.ttl", "    schema:location place:un-headquarters ;",
               "    schema:location organization:escwa ;")
    reports = {}
    for engine in ("pyshacl", "turbo"):
        result = run_cli("validate", "--engine", engine, "--root", str(tmp_path))
        assert result.returncode == 1 and "NOT publishable" in result.stderr, result.stderr
        reports[engine] = result.stderr[result.stderr.index("Does not conform"):result.stderr.rindex("\n\n")]
    assert "source-ar.ttl:" in reports["turbo"] and "must be the IRI of a schema:Place" in reports["turbo"]
    assert reports["turbo"] == reports["pyshacl"]


def test_an_unknown_engine_is_refused():
    result = run_cli("validate", "--engine", "fast")
    assert result.returncode == 2 and "--engine" in result.stderr


def test_build_shows_its_phases_on_stderr(tmp_path):
    result = run_cli("build", "--releases", str(tmp_path / "releases"))
    assert result.returncode == 0, result.stderr
    for phase in ("parse", "validate (turbo)", "dumps and store", "search index and statistics", "description"):
        line = rf"^lodpub: {re.escape(phase)}(: \d+/\d+)? done in "
        assert re.search(line, result.stderr, re.MULTILINE), result.stderr


def test_a_terminal_gets_progress_bars():
    """stderr a terminal: rich's live bars (a tick and files done / total per phase), not plain lines."""
    import os
    import pty
    parent, child = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "server.cli", "validate"], stdout=subprocess.PIPE,
                               stderr=child, cwd=PROJECT_ROOT)
    os.close(child)
    shown = b""
    while True:
        try:
            chunk = os.read(parent, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    assert process.wait(timeout=120) == 0
    os.close(parent)
    screen = shown.decode("utf-8", "replace")
    assert "\u2713 parse" in screen and "\u2713 validate (turbo)" in screen, screen[-2000:]
    assert re.search(r"(?<!\d)(\d+)/\1(?!\d)", screen) and "lodpub: parse" not in screen, screen[-2000:]
    assert "engine: turbo" in process.stdout.read().decode()  # stdout, a pipe, is left alone
