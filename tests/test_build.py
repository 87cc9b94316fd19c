"""The build: a release whose files parse back to the source data, written atomically."""
from __future__ import annotations

import gzip
import hashlib
import multiprocessing
import shutil
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import rdflib
from rdflib.compare import isomorphic, to_isomorphic

from server import loading, release
from server.config import PROJECT_ROOT, Settings
from server.rdfterms import dataset_from_quads, graph_from_quads
from server.validation import parse_sources, validate_parsed, validate_sources
from tests.conftest import members_left_after


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


def test_the_release_is_written_while_the_sources_are_validated(tmp_path):
    """`lodpub build` writes the release in a child while the sources are validated: here the
    validation waits until the child has written the store, so a build that validated first would
    never finish. (In a process of its own: this test runner has RocksDB's threads, see below.)"""
    settings = _copy_project(tmp_path)
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from server import release
        from server.config import Settings
        from server.validation import parse_sources, validate_parsed

        settings = Settings(root=Path({str(tmp_path)!r}), releases=Path({str(settings.releases)!r}))
        parsed = parse_sources(settings)

        def validate_once_the_store_is_written():
            deadline = time.monotonic() + 60
            while not list(settings.releases.glob(".building-*/store/CURRENT")):
                assert time.monotonic() < deadline, "the store was not written while validating"
                time.sleep(0.02)
            return validate_parsed(parsed, settings)

        built = release.build(parsed, settings, validate=validate_once_the_store_is_written)
        print(built.manifest["validation"]["conforms"], built.manifest["validation"]["focus_nodes"])
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    conforms, focus_nodes = done.stdout.split()
    assert conforms == "True" and int(focus_nodes) > 0
    assert release.verify_checksums(release.current_release(settings.releases)) == []


def test_a_build_in_one_process_validates_first_and_makes_the_same_release(tmp_path, built):
    """LODPUB_BUILD_IN_PARALLEL=0, for a machine short of memory: the phases one after the other
    (validation done before the first file is written), the same data."""
    import os
    settings = _copy_project(tmp_path)
    done = subprocess.run([sys.executable, "-m", "server.cli", "build", "--root", str(tmp_path)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "LODPUB_BUILD_IN_PARALLEL": "0"})
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines.index("lodpub: dumps and store …") > next(
        i for i, line in enumerate(lines) if line.startswith("lodpub: validate (turbo) done in"))
    one = release.current_release(settings.releases)
    assert (one.manifest["quads"], one.manifest["graphs"], one.manifest["statistics"]) == \
        (built.manifest["quads"], built.manifest["graphs"], built.manifest["statistics"])
    assert release.verify_checksums(one) == []


def test_a_process_that_opened_a_store_builds_without_waiting_for_ever(tmp_path, built):
    """RocksDB's background threads do not survive fork: a child of a process that has them waits
    for ever when it writes a store. Such a process (this test runner, once it opened a store)
    validates first and writes the release itself."""
    store = built.open_store()
    assert len(store) > 0
    settings = _copy_project(tmp_path)
    parsed = parse_sources(settings)
    result = []
    thread = threading.Thread(target=lambda: result.append(release.build(
        parsed, settings, validate=lambda: validate_parsed(parsed, settings))), daemon=True)
    thread.start()
    thread.join(120)
    assert result and result[0].manifest["quads"] == built.manifest["quads"]


def test_sources_that_do_not_conform_leave_no_release_and_no_process(tmp_path):
    """The verdict comes while the release is being written: the writing child is stopped, its
    folder removed, the current release left alone, and the report printed with file and line."""
    from tests.conftest import run_cli
    settings = _copy_project(tmp_path)
    assert run_cli("build", "--root", str(tmp_path)).returncode == 0
    good = release.current_release(settings.releases)
    meeting = tmp_path / "data" / "meeting" / "source-ar.ttl"
    meeting.write_text(meeting.read_text(encoding="utf-8").replace(
        "    schema:location place:un-headquarters ;", "    schema:location organization:escwa ;"), encoding="utf-8")
    failed = run_cli("build", "--root", str(tmp_path))
    assert failed.returncode == 1
    assert "must be the IRI of a schema:Place" in failed.stderr and "source-ar.ttl:" in failed.stderr
    assert "NOT publishable" in failed.stderr
    assert release.current_release(settings.releases).path == good.path
    assert sorted(p.name for p in settings.releases.iterdir()) == sorted([good.path.name, release.CURRENT])

    parsed = parse_sources(settings)
    with pytest.raises(release.NotPublishable):
        release.build(parsed, settings, validate=lambda: validate_parsed(parsed, settings))
    assert multiprocessing.active_children() == []
    assert sorted(p.name for p in settings.releases.iterdir()) == sorted([good.path.name, release.CURRENT])


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


def test_ctrl_c_while_the_sources_are_validated_stops_the_build_at_once(tmp_path):
    """The SHACL engine holds Ctrl-C back until it returns (52 s at 1M triples): the build waits
    for it on another thread, so it stops within seconds, leaving no process, no staging folder
    and no release. (A corpus of ~150,000 triples, whose validation takes several seconds.)"""
    import os
    import signal
    from bench import generate
    root = generate.generate(tmp_path / "corpus", meetings=1200)
    log = tmp_path / "build.log"
    with log.open("w") as out:
        build = subprocess.Popen([sys.executable, "-m", "server.cli", "build", "--root", str(root)],
                                 cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while "search index and statistics …" not in log.read_text():  # (validating since the dumps began)
        assert build.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    time.sleep(2.0)  # the engine's own work, past turning the quads into its input
    os.killpg(build.pid, signal.SIGINT)  # Ctrl-C: the whole group
    stopped = time.monotonic()
    assert build.wait(30) == 130, log.read_text()
    assert time.monotonic() - stopped < 4, log.read_text()
    assert "validate (turbo) done" not in log.read_text() and log.read_text().endswith("interrupted\n")
    assert members_left_after(build.pid) == []
    assert sorted(p.name for p in (root / "releases").iterdir()) == []
