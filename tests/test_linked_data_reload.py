"""SIGHUP rebuilds from the sources; invalid sources keep the last good release being served.

Dynamic server only: reloading (SIGHUP, rebuild) is the app's; a static export is redone with
`lodpub export-static` instead.
"""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time

from rdflib import URIRef

from server.config import PROJECT_ROOT, Settings
from tests.conftest import LiveServer, free_port
from tests.test_linked_data_helpers import BASE, MEETING, parse_rdf
from tests.test_linked_data_html import copy_sources

NAME = "Localization and implementation of the New Urban Agenda: Regional Commissions high-level meeting"
SCHEMA_NAME = URIRef("https://schema.org/name")


class BuildingServer(LiveServer):
    """`lodpub serve` WITHOUT --no-build: it validates and builds at start and on SIGHUP."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "LODPUB_ROOT": str(settings.root), "LODPUB_RELEASES": str(settings.releases)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(self.port), "--workers", "1"],
            cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.output = collections.deque(maxlen=5000)
        threading.Thread(target=self._drain, daemon=True).start()
        self._wait(90)

    def reload(self) -> None:
        os.kill(self.process.pid, signal.SIGHUP)

    def wait_for_log(self, text: str, after: int, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if text in "".join(list(self.output)[after:]):
                return
            time.sleep(0.2)
        raise AssertionError(f"{text!r} not logged:\n{self.log[-3000:]}")


def _english_names(server) -> set[str]:
    response = server.get(f"/doc/{MEETING}.ttl")
    assert response.status_code == 200, response.text[:500]
    graph = parse_rdf(response.content, "ttl", server)
    return {str(n) for n in graph.objects(URIRef(BASE + "id/" + MEETING), SCHEMA_NAME) if n.language == "en"}


def test_sighup_keeps_the_last_good_release_then_publishes_the_fixed_one(tmp_path):
    copy_sources(tmp_path)
    settings = Settings(root=tmp_path, releases=tmp_path / "releases")
    source = tmp_path / "data/meeting/source-en.ttl"
    original = source.read_text(encoding="utf-8")
    assert f'"{NAME}"@en' in original
    server = BuildingServer(settings)
    try:
        assert _english_names(server) == {NAME}
        good = os.readlink(settings.releases / "current")

        # 1. broken data: the rebuild fails, the reason is logged, the old data is still served
        source.write_text(original + "\nthis is not Turtle .\n", encoding="utf-8")
        mark = len(server.output)
        server.reload()
        server.wait_for_log("still serving the last good release", mark)
        assert "source-en.ttl" in "".join(list(server.output)[mark:])  # the log says where
        server.wait_for_log("Booting worker", mark)
        time.sleep(1.0)
        assert os.readlink(settings.releases / "current") == good
        assert _english_names(server) == {NAME}

        # 2. fixed data with a visible change: the rebuild succeeds and the new data is served
        source.write_text(original.replace(f'"{NAME}"@en', f'"{NAME} (reloaded)"@en'), encoding="utf-8")
        mark = len(server.output)
        server.reload()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if _english_names(server) == {NAME + " (reloaded)"}:
                    break
            except Exception:  # a worker being replaced
                pass
            time.sleep(0.3)
        else:
            raise AssertionError("the fixed data was not published:\n" + server.log[-3000:])
        assert os.readlink(settings.releases / "current") != good
    finally:
        server.stop()


def _peak_kib(pid: int) -> int:
    """A live process's peak resident memory (VmHWM), KiB."""
    for line in open(f"/proc/{pid}/status", encoding="ascii"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for {pid}")


def _build_peak_kib(settings: Settings) -> int:
    """Peak resident memory of `lodpub build` of the same sources, in a process of its own."""
    env = {**os.environ, "LODPUB_ROOT": str(settings.root), "LODPUB_RELEASES": str(settings.releases)}
    build = subprocess.Popen([sys.executable, "-m", "server.cli", "build"], cwd=PROJECT_ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(build.pid, 0)
    build.returncode = os.waitstatus_to_exitcode(status)
    assert build.returncode == 0
    return usage.ru_maxrss  # KiB on Linux


def test_the_master_keeps_none_of_the_builds_memory(tmp_path):
    """Validating and building run in a child, at start and on SIGHUP: gunicorn's master, which
    lives as long as the server and forks every worker, never holds what they took (at 1M triples
    a build left 1.2 GiB in the master and a copy in each worker)."""
    copy_sources(tmp_path)
    build_peak = _build_peak_kib(Settings(root=tmp_path, releases=tmp_path / "elsewhere"))
    server = BuildingServer(Settings(root=tmp_path, releases=tmp_path / "releases"))
    try:
        started_peak = _peak_kib(server.process.pid)
        assert started_peak < 0.8 * build_peak, (started_peak, build_peak)
        mark = len(server.output)
        server.reload()
        server.wait_for_log("Booting worker", mark)
        assert "conform to" in "".join(list(server.output)[mark:])  # it did validate again
        assert _peak_kib(server.process.pid) < 0.8 * build_peak
        assert server.get("/health/ready").status_code == 200
    finally:
        server.stop()
