"""The validation report points an editor to the file and line to fix."""
from __future__ import annotations

import shutil

from server.config import PROJECT_ROOT, Settings
from server.validation import format_report, validate_sources


def test_a_violation_is_located_in_the_file_that_holds_the_broken_statement(tmp_path):
    for folder in ("ontology", "shapes", "data"):
        shutil.copytree(PROJECT_ROOT / folder, tmp_path / folder)
    source = tmp_path / "data" / "meeting" / "source-ar.ttl"
    text = source.read_text(encoding="utf-8")
    broken = 'schema:position 3 ;'
    assert broken in text
    source.write_text(text.replace(broken, 'schema:position "three" ;'), encoding="utf-8")

    report = validate_sources(Settings(root=tmp_path)).report

    focus = Settings().base + "id/objective/nua-regional-commissions-2022-3"
    found = [v for v in report.violations if v.focus == focus and v.path == "https://schema.org/position"]
    assert found, format_report(report)
    path, line = found[0].location
    assert path == source
    assert text.splitlines()[line - 1].startswith("objective:nua-regional-commissions-2022-3")
    assert f"source-ar.ttl:{line}" in format_report(report)
    assert not any("\u0600" <= ch <= "\u06ff" for ch in found[0].message)
