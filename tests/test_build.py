"""The build: a release whose files parse back to the source data, written atomically."""
from __future__ import annotations

import gzip
import hashlib
import shutil

import pytest
import rdflib
from rdflib.compare import isomorphic, to_isomorphic

from server import loading, release
from server.config import PROJECT_ROOT, Settings
from server.rdfterms import dataset_from_quads, graph_from_quads
from server.validation import validate_sources


@pytest.fixture(scope="module")
def sources():
    return validate_sources(Settings())


def _source_dataset(sources) -> rdflib.Dataset:
    return dataset_from_quads(loading.all_quads(sources.data + sources.ontology))


def _graphs(dataset: rdflib.Dataset) -> dict[str, rdflib.Graph]:
    return {str(g.identifier): g for g in dataset.graphs() if len(g)}


def test_nquads_and_trig_dumps_are_isomorphic_to_the_sources_graph_by_graph(built, sources):
    expected = _graphs(_source_dataset(sources))
    for name, fmt in [("dataset.nq.gz", "nquads"), ("dataset.trig", "trig"), ("dataset.jsonld", "json-ld")]:
        raw = release.open_release(built.path).file(name).read_bytes()
        data = gzip.decompress(raw) if name.endswith(".gz") else raw
        parsed = _graphs(rdflib.Dataset().parse(data=data, format=fmt))
        assert parsed.keys() == expected.keys(), name
        for iri, graph in expected.items():
            assert isomorphic(parsed[iri], graph), f"{name}: graph {iri} differs"


def test_turtle_dump_is_the_union_of_all_graphs(built, sources):
    union = graph_from_quads(loading.all_quads(sources.data + sources.ontology))
    parsed = rdflib.Graph().parse(built.file("dataset.ttl"), format="turtle")
    assert to_isomorphic(parsed) == to_isomorphic(union)


def test_manifest_states_true_checksums_sizes_and_counts(built, sources):
    manifest = built.manifest
    for name, described in manifest["files"].items():
        data = built.file(name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == described["sha256"], name
        assert len(data) == described["bytes"], name
    quads = loading.all_quads(sources.data + sources.ontology)
    assert manifest["quads"] == len(quads)
    assert sum(manifest["graphs"].values()) == len(quads)
    assert manifest["graphs"][Settings().base + "graph/meeting/source-ar"] == sum(
        1 for q in quads if q.graph_name.value.endswith("graph/meeting/source-ar"))
    assert release.verify_checksums(built) == []


def test_the_store_holds_exactly_the_dump(built):
    store = built.open_store()
    with gzip.open(built.file("dataset.nq.gz"), "rt", encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    assert len(store) == len(lines)


def _copy_project(tmp_path):
    for folder in ("ontology", "shapes", "data"):
        shutil.copytree(PROJECT_ROOT / folder, tmp_path / folder)
    return Settings(root=tmp_path, releases=tmp_path / "releases")


def test_rebuilding_unchanged_sources_reuses_the_release(tmp_path):
    from tests.conftest import run_cli
    settings = _copy_project(tmp_path)
    first = run_cli("build", "--root", str(tmp_path))
    second = run_cli("build", "--root", str(tmp_path))
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    versions = [p.name for p in settings.releases.iterdir() if not p.name.startswith(".") and p.name != "current"]
    assert len(versions) == 1


def test_a_failed_build_leaves_the_last_good_release_current(tmp_path):
    from tests.conftest import run_cli
    settings = _copy_project(tmp_path)
    assert run_cli("build", "--root", str(tmp_path)).returncode == 0
    good = release.current_release(settings.releases)
    meeting = tmp_path / "data" / "meeting" / "source-ar.ttl"
    meeting.write_text(meeting.read_text(encoding="utf-8").replace(
        'schema:startDate "2022-04-28T10:00:00+03:00"^^xsd:dateTime ;', 'schema:startDate "not a date ;'),
        encoding="utf-8")
    failed = run_cli("build", "--root", str(tmp_path))
    assert failed.returncode == 1
    assert "source-ar.ttl:" in failed.stderr
    assert release.current_release(settings.releases).path == good.path
    assert not [p for p in settings.releases.iterdir() if p.name.startswith(".building-")]


def test_a_new_build_records_the_previous_release(tmp_path):
    from tests.conftest import run_cli
    settings = _copy_project(tmp_path)
    assert run_cli("build", "--root", str(tmp_path)).returncode == 0
    first = release.current_release(settings.releases)
    places = tmp_path / "data" / "places" / "reference.ttl"
    places.write_text(places.read_text(encoding="utf-8") + "\n# an edit\n", encoding="utf-8")
    assert run_cli("build", "--root", str(tmp_path)).returncode == 0
    second = release.current_release(settings.releases)
    assert second.version != first.version
    assert second.manifest["previous"] == first.version


def test_a_truncated_release_is_refused(tmp_path, built):
    copy = tmp_path / "copy"
    shutil.copytree(built.path, copy)
    dump = copy / "dataset.trig"
    dump.write_bytes(dump.read_bytes()[:100])
    with pytest.raises(release.ReleaseError, match="truncated"):
        release.open_release(copy)
    (copy / release.MANIFEST).write_text("{not json", encoding="utf-8")
    with pytest.raises(release.ReleaseError, match="manifest"):
        release.open_release(copy)


def test_the_folder_of_a_killed_build_is_removed_by_the_next(tmp_path):
    """A build killed outright (SIGKILL, or stopped in native code after Ctrl-C) leaves its
    half-written `.building-{host}-{pid}-…` folder; the next build removes it, as its process is
    gone, and leaves alone those of builds on other hosts sharing the folder, a host whose name
    starts with ours included."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    from tests.conftest import run_cli
    settings = _copy_project(tmp_path)
    env = {**os.environ, "LODPUB_ROOT": str(tmp_path)}
    for _ in range(20):  # the staging folder lives a fraction of a second at this size
        build = subprocess.Popen([sys.executable, "-m", "server.cli", "build"], cwd=PROJECT_ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while build.poll() is None and not list(settings.releases.glob(".building-*")):
            time.sleep(0.002)
        build.send_signal(signal.SIGKILL)
        build.wait()
        leftovers = list(settings.releases.glob(f".building-{socket.gethostname()}-{build.pid}-*"))
        if leftovers:
            break
        shutil.rmtree(settings.releases, ignore_errors=True)
    else:
        pytest.fail("no build was caught writing its release")
    host = socket.gethostname()
    elsewhere = [settings.releases / f".building-{build.pid}-{build.pid}-abcd1234",  # host "{pid}"
                 settings.releases / f".building-{host}-{build.pid}-{build.pid}-abcd1234"]  # host "{host}-{pid}"
    for folder in elsewhere:
        folder.mkdir()
    assert run_cli("build", "--root", str(tmp_path)).returncode == 0
    assert not [p for p in leftovers if p.exists()]
    assert all(folder.is_dir() for folder in elsewhere)
    assert release.current_release(settings.releases) is not None
