"""Shared fixtures: one build of the real data per test session, and a live gunicorn server on it.

Tests talk to the server over real HTTP, as users' clients do.
"""
from __future__ import annotations

import collections
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from server.config import PROJECT_ROOT, Settings

ARTIFACTS = PROJECT_ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_group_members(group: int) -> list[str]:
    """The pid and command line of each live process of the group (a zombie is not live: it
    waits only for its parent to read its exit status)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group and fields[0] != "Z":
                command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                members.append(f"{stat.parent.name} {command}")
        except OSError:  # a process that ended meanwhile
            continue
    return members


def members_left_after(group: int, seconds: float = 2.0) -> list[str]:
    """The group's live processes once it has had `seconds` to end (a process killed a moment
    ago may still be tearing down)."""
    deadline = time.monotonic() + seconds
    while (left := process_group_members(group)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def run_cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=PROJECT_ROOT, env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> Settings:
    """Settings for a build of the real data into a temporary releases folder."""
    return Settings(releases=tmp_path_factory.mktemp("releases"))


@pytest.fixture(scope="session")
def built(settings):
    result = run_cli("build", "--releases", str(settings.releases))
    assert result.returncode == 0, result.stderr + result.stdout
    from server.release import current_release
    return current_release(settings.releases)


class ServerProcess:
    """A server in a child process on a free loopback port: its output drained (so a full pipe
    never blocks it), `get` with redirects off, `stop`. Subclasses start it and name the path
    that answers once it is ready (`probe`)."""

    name = "server"
    probe = "/"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def _start(self, argv: list[str], **popen) -> None:
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)
        self.output: collections.deque[str] = collections.deque(maxlen=2000)
        threading.Thread(target=self._drain, daemon=True).start()
        self._wait()

    def _drain(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)

    @property
    def log(self) -> str:
        return "".join(self.output)

    def _wait(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                time.sleep(0.2)
                raise RuntimeError(f"{self.name} exited:\n" + self.log)
            try:
                requests.get(self.url + self.probe, timeout=1)
                return
            except requests.RequestException:  # not listening yet, or no worker ready yet
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not start in time:\n" + self.log)

    def get(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", 30)
        return requests.get(self.url + path, **kwargs)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class LiveServer(ServerProcess):
    """`lodpub serve --no-build` (gunicorn) on the settings' release; `env` adds settings, e.g.
    a remote store's (see `store_env`)."""

    def __init__(self, settings: Settings, workers: int = 2, env: dict | None = None):
        super().__init__(settings)
        #: whether the server reads a remote SPARQL store (see `store_env`)
        self.remote = bool((env or {}).get("LODPUB_STORE_URL"))
        env = {**os.environ, "LODPUB_RELEASES": str(settings.releases), "LODPUB_ROOT": str(settings.root), **(env or {})}
        self._start([sys.executable, "-m", "server.cli", "serve", "--no-build", "--port", str(self.port),
                     "--workers", str(workers)], cwd=PROJECT_ROOT, env=env)


#: The stores every HTTP test runs against: the embedded Oxigraph store of the release, and
#: OpenLink Virtuoso (Debian's virtuoso-opensource) as a remote SPARQL store loaded by `publish`.
STORES = ("embedded", "virtuoso")
VIRTUOSO_INSTALL = "apt-get install -y virtuoso-opensource"


def start_virtuoso(folder: Path):
    """A Virtuoso on loopback; skipped where it is not installed, failed in CI
    (LODPUB_REQUIRE_VIRTUOSO=1), where nothing may be skipped for want of it."""
    from .virtuoso import Virtuoso, available
    if not available():
        if os.environ.get("LODPUB_REQUIRE_VIRTUOSO") == "1":
            pytest.fail(f"Virtuoso required (LODPUB_REQUIRE_VIRTUOSO=1) but not installed; install: {VIRTUOSO_INSTALL}")
        pytest.skip(f"Virtuoso is not installed; install: {VIRTUOSO_INSTALL}")
    return Virtuoso(folder).start()


@pytest.fixture(scope="session")
def virtuoso(tmp_path_factory):
    store = start_virtuoso(tmp_path_factory.mktemp("virtuoso"))
    yield store
    store.stop()


@pytest.fixture(scope="session", params=STORES)
def store_env(request, built, settings) -> dict[str, str]:
    """The environment of a front end on this store (empty for the embedded one); the remote
    store holds the session's release, loaded with `lodpub publish`."""
    if request.param == "embedded":
        return {}
    env = request.getfixturevalue(request.param).settings_env
    published = run_cli("publish", "--releases", str(settings.releases), env=env, timeout=300)
    assert published.returncode == 0, published.stderr + published.stdout
    return env


@pytest.fixture(scope="session")
def server(built, settings, store_env):
    live = LiveServer(settings, env=store_env)
    yield live
    live.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
BROWSER_INSTALL = "apt-get install -y chromium chromium-driver && pip install selenium"


def _browser_unavailable(reason: str):
    if os.environ.get("LODPUB_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser required (LODPUB_REQUIRE_BROWSER=1) but {reason}; install: {BROWSER_INSTALL}")
    pytest.skip(f"{reason}; install: {BROWSER_INSTALL}")


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by Selenium; one per test module."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _browser_unavailable("selenium is not installed")
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        _browser_unavailable("chromium or chromedriver is missing")
    profile = tempfile.mkdtemp(prefix="lodpub-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     f"--user-data-dir={profile}", "--window-size=1100,1400", "--lang=en-US"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)
