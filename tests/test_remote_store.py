"""Publishing to a remote SPARQL store (Virtuoso) and serving from it, when things go wrong:
re-publishing, invalid data, a publish killed half way, the store stopped and restarted.

Every other HTTP test also runs against Virtuoso (conftest's `store_env`); this module has its
own Virtuoso and its own releases, as it stops the store and publishes new releases.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import requests

from server.config import PROJECT_ROOT, Settings
from server.publishing import StoreClient, control_graph
from server.stores import Endpoint

from .conftest import LiveServer, run_cli, start_virtuoso

BASE = Settings().base
ESCWA = BASE + "id/organization/escwa"


def name_query() -> str:
    """ESCWA's English name, asked in words no answer cache has seen (a comment would not do:
    the cache key is the query without comments)."""
    return (f'SELECT ?name WHERE {{ <{ESCWA}> <https://schema.org/name> ?name FILTER(lang(?name) = "en") '
            f'FILTER(STR(?name) != "{time.monotonic_ns()}") }}')
ENGLISH_NAME = "Economic and Social Commission for Western Asia"


def _copy_sources(target):
    for folder in ("ontology", "shapes", "data", "queries"):
        shutil.copytree(PROJECT_ROOT / folder, target / folder)
    return target


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A Virtuoso of this module's own (this module stops and restarts it)."""
    own = start_virtuoso(tmp_path_factory.mktemp("virtuoso-remote"))
    yield own
    own.stop()


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Two versions of the sources: A (as in the project) and B (one English name changed)."""
    a = _copy_sources(tmp_path_factory.mktemp("sources-a"))
    b = _copy_sources(tmp_path_factory.mktemp("sources-b"))
    reference = b / "data" / "organizations" / "reference.ttl"
    text = reference.read_text(encoding="utf-8")
    assert f'"{ENGLISH_NAME}"@en' in text
    reference.write_text(text.replace(f'"{ENGLISH_NAME}"@en', f'"{ENGLISH_NAME} (B)"@en', 1), encoding="utf-8")
    return {"a": a, "b": b}


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    return tmp_path_factory.mktemp("remote-releases")


def publish(store, root, releases, **extra) -> subprocess.CompletedProcess:
    return run_cli("publish", "--root", str(root), "--releases", str(releases), env=store.settings_env, **extra)


@pytest.fixture(scope="module")
def front(store, sources, releases):
    """Release A published, and a front end on the store."""
    done = publish(store, sources["a"], releases)
    assert done.returncode == 0, done.stderr + done.stdout
    live = LiveServer(Settings(root=sources["a"], releases=releases), env=store.settings_env)
    yield live
    live.stop()


def served(front) -> tuple[str, str]:
    """(release version, ESCWA's English name) as one answer of the front end gives them now.
    Both come from the same response: the workers of a front end each switch within about a
    second of one another, so two requests may be answered from two releases."""
    answer = requests.get(front.url + "/sparql", params={"query": name_query()},
                          headers={"Accept": "application/sparql-results+json"}, timeout=30)
    assert answer.status_code == 200, answer.text
    (row,) = answer.json()["results"]["bindings"]
    return answer.headers["X-Release"], row["name"]["value"]


def wait_for(front, version: str, seconds: float = 15) -> None:
    """Until every worker serves `version`: seen once, then again after every worker's next look
    at the store (each looks at most once a second)."""
    deadline = time.monotonic() + seconds
    while served(front)[0] != version:
        assert time.monotonic() < deadline, f"the front end did not switch to {version}"
        time.sleep(0.3)
    time.sleep(1.5)
    for _ in range(8):
        assert served(front)[0] == version


def stored_graph_counts(store) -> dict[str, int]:
    client = StoreClient(Endpoint.from_settings(Settings(store_url=store.settings_env["LODPUB_STORE_URL"])))
    rows = client.select(f"SELECT ?g (COUNT(*) AS ?n) WHERE {{ GRAPH ?g {{ ?s ?p ?o }} "
                         f"FILTER(STRSTARTS(STR(?g), \"{BASE}release/\")) }} GROUP BY ?g")
    return {r["g"].value: int(r["n"].value) for r in rows}


def version_of(releases, root) -> str:
    done = run_cli("build", "--root", str(root), "--releases", str(releases))
    assert done.returncode == 0, done.stderr
    return (releases / "current").resolve().name


def test_publish_then_query_through_the_front_end(front, releases):
    version = (releases / "current").resolve().name
    health = requests.get(front.url + "/health/ready", timeout=30).json()
    assert health["status"] == "pass" and health["release"]["version"] == version
    assert health["store"].startswith("remote SPARQL http://127.0.0.1:")
    assert served(front) == (version, ENGLISH_NAME)
    # the graphs keep their published names through the front end
    graphs = requests.get(front.url + "/sparql", params={"query": "SELECT DISTINCT ?g { GRAPH ?g { ?s ?p ?o } }"},
                          headers={"Accept": "application/sparql-results+json"}, timeout=30).json()
    assert {b["g"]["value"] for b in graphs["results"]["bindings"]} == set(
        json.loads((releases / version / "manifest.json").read_text())["graphs"])


def test_republishing_the_same_release_is_idempotent(front, store, sources, releases):
    before = stored_graph_counts(store)
    again = publish(store, sources["a"], releases)
    assert again.returncode == 0, again.stderr
    assert "already in the store: not loaded again" in again.stdout
    assert stored_graph_counts(store) == before


def test_invalid_data_is_refused_and_the_old_release_stays(front, store, sources, releases, tmp_path):
    broken = _copy_sources(tmp_path / "broken")
    reference = broken / "data" / "organizations" / "reference.ttl"
    reference.write_text(reference.read_text(encoding="utf-8").replace(
        f'"{ENGLISH_NAME}"@en', f'"{ENGLISH_NAME}"@en , "Second English name"@en', 1), encoding="utf-8")
    version = served(front)[0]
    before = stored_graph_counts(store)
    done = publish(store, broken, releases)
    assert done.returncode == 1
    assert "NOT publishable" in done.stderr and "organizations/reference.ttl" in done.stderr
    assert stored_graph_counts(store) == before
    assert served(front) == (version, ENGLISH_NAME)


def test_a_publish_stopped_before_the_switch_leaves_the_old_release(front, store, sources, releases):
    """The state a publish killed at any point of its load leaves: B's graphs (partly) in the
    store, no switch. Readers stay on A; the next publish of B drops the leftovers and completes."""
    from server.graph_names import GraphNames
    from server.publishing import _load, _record_graphs
    from server.release import open_release
    version_a = served(front)[0]
    version_b = version_of(releases, sources["b"])
    release_b = open_release(releases / version_b)
    client = StoreClient(Endpoint.from_settings(Settings(**{k: v for k, v in {
        "store_url": store.settings_env["LODPUB_STORE_URL"], "store_update_url": store.settings_env["LODPUB_STORE_UPDATE_URL"],
        "store_gsp_url": store.settings_env["LODPUB_STORE_GSP_URL"], "store_user": "dba", "store_password": "dba"}.items()})))
    names = GraphNames(BASE, version_b, list(release_b.manifest["graphs"]))
    _record_graphs(client, BASE, version_b, names)
    _load(client, release_b, names, say=lambda _: None)
    time.sleep(1.5)  # longer than the front end's interval between looks at the store
    assert served(front) == (version_a, ENGLISH_NAME)
    done = publish(store, sources["b"], releases)
    assert done.returncode == 0, done.stderr
    wait_for(front, version_b)
    assert served(front) == (version_b, ENGLISH_NAME + " (B)")
    # B was loaded once, not twice: every graph holds what the manifest says
    counts = stored_graph_counts(store)
    assert {names.published(g): n for g, n in counts.items() if g.startswith(names.stored_prefix)} == \
        release_b.manifest["graphs"]


def test_a_publish_killed_at_any_moment_never_shows_half_a_release(front, store, sources, releases):
    """Kill `lodpub publish` at several moments of its run: readers always see one complete
    release (the version they are told and the data they get agree), then a full publish wins."""
    target = "a" if served(front)[0] == version_of(releases, sources["b"]) else "b"
    expected = {version_of(releases, sources["a"]): ENGLISH_NAME, version_of(releases, sources["b"]): ENGLISH_NAME + " (B)"}
    for delay in (0.5, 1.0, 1.5, 2.0):
        process = subprocess.Popen([sys.executable, "-m", "server.cli", "publish", "--root", str(sources[target]),
                                    "--releases", str(releases)], cwd=PROJECT_ROOT,
                                   env={**os.environ, **store.settings_env},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        version, name = served(front)
        assert expected[version] == name
        target = "a" if target == "b" else "b"
    done = publish(store, sources["a"], releases)
    assert done.returncode == 0, done.stderr
    wait_for(front, version_of(releases, sources["a"]))


def test_publish_without_a_graph_store_endpoint_loads_by_sparql_update(front, store, releases, tmp_path):
    """Stores without the Graph Store Protocol are loaded with SPARQL Update (blank nodes
    included: a postal address, coordinates)."""
    sources = _copy_sources(tmp_path / "c")
    reference = sources / "data" / "organizations" / "reference.ttl"
    reference.write_text(reference.read_text(encoding="utf-8").replace(
        f'"{ENGLISH_NAME}"@en', f'"{ENGLISH_NAME} (C)"@en', 1), encoding="utf-8")
    env = {**store.settings_env, "LODPUB_STORE_GSP_URL": ""}
    done = run_cli("publish", "--root", str(sources), "--releases", str(releases), env=env)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "through the SPARQL Update" in done.stdout
    version = (releases / "current").resolve().name
    wait_for(front, version)
    assert served(front) == (version, ENGLISH_NAME + " (C)")
    turtle = requests.get(front.url + "/doc/place/un-headquarters", headers={"Accept": "text/turtle"}, timeout=30)
    assert turtle.status_code == 200 and "760 United Nations Plaza" in turtle.text  # the blank-node address


def test_store_stopped_gives_503_then_the_front_end_recovers_by_itself(front, store):
    pid = front.process.pid
    version, name = served(front)
    store.stop()
    try:
        answer = requests.get(front.url + "/sparql", params={"query": name_query()},
                              headers={"Accept": "application/sparql-results+json"}, timeout=30)
        assert answer.status_code == 503
        assert answer.json()["title"] == "Store unavailable"
        assert "Retry-After" in answer.headers
        page = requests.get(front.url + "/doc/place/un-headquarters", headers={"Accept": "text/turtle"}, timeout=30)
        assert page.status_code in (200, 503)  # 200 only if this worker had it computed already
        if page.status_code == 503:
            assert page.headers["Content-Type"].startswith("application/problem+json")
        health = requests.get(front.url + "/health/ready", timeout=30)
        assert health.status_code == 503
    finally:
        store.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            if served(front) == (version, name):
                break
        except AssertionError:
            pass
        assert time.monotonic() < deadline, "the front end did not recover"
        time.sleep(0.5)
    assert requests.get(front.url + "/health/ready", timeout=30).status_code == 200
    assert front.process.pid == pid and front.process.poll() is None
