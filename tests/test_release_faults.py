"""Release safety under faults (issue 8).

1. `lodpub build` is SIGKILLed at seeded random moments (20 points uniform over a measured build
   duration, 4 more inside its writing phase), while the gunicorn master is sent SIGHUP (a reload,
   which rebuilds in the master) during some of them. Throughout, clients polling the server on
   fresh connections must always get one complete release — old or new, never a mix, never
   nothing: every answer is 200, and the version each answer names (the /dumps/ listing, the
   X-Release header of a dump, the dataset description) matches the bytes served in that same
   answer, checked against that version's manifest on disk — and ``releases/current`` must
   always point at a complete release (files of the sizes in its manifest, a store folder).
   Leftover ``.building-*`` folders are harmless: a later build succeeds and is served.
2. A corrupted or truncated release folder is refused at start-up (`lodpub serve --no-build`):
   a clear message naming the problem and a non-zero exit.
"""
from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from server.config import PROJECT_ROOT, Settings
from server.release import CURRENT, ReleaseError, open_release, verify_checksums

from .conftest import free_port
from .test_fuzz_support import WatchedServer

SEED = 20261129
UNIFORM_FAULTS = 20
WRITE_PHASE_FAULTS = 4
SOURCE_DIRS = ("ontology", "shapes", "data", "catalog", "queries")


def _copy_sources(root: Path) -> None:
    for name in SOURCE_DIRS:
        if (PROJECT_ROOT / name).is_dir():
            shutil.copytree(PROJECT_ROOT / name, root / name)


def _touch_sources(root: Path, n: int) -> None:
    """A new source digest (so a new release version), same data: a comment in a data file."""
    data_file = sorted((root / "data").rglob("*.ttl"))[0]
    text = data_file.read_text(encoding="utf-8").split("\n# fault-injection ")[0]
    data_file.write_text(text + f"\n# fault-injection {n}\n", encoding="utf-8")


def _build_command(root: Path, releases: Path) -> list[str]:
    return [sys.executable, "-m", "server.cli", "build", "--root", str(root), "--releases", str(releases)]


class Poller(threading.Thread):
    """A client that keeps asking, on a fresh connection each time, and checks every answer."""

    def __init__(self, url: str, releases: Path):
        super().__init__(daemon=True)
        self.url, self.releases = url, releases
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.checked = 0
        self.versions: set[str] = set()

    def _manifest(self, version: str) -> dict:
        path = self.releases / version
        release = open_release(path)  # raises if that release is not complete on disk
        return release.manifest

    def _get(self, path: str) -> requests.Response:
        response = requests.get(self.url + path, timeout=30, headers={"Connection": "close"})
        if response.status_code != 200:
            raise AssertionError(f"{path}: {response.status_code} {response.text[:200]}")
        return response

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                listing = self._get("/dumps/").json()
                manifest = self._manifest(listing["version"])
                for name, described in listing["files"].items():
                    if manifest["files"][name]["sha256"] != described["sha256"]:
                        raise AssertionError(f"/dumps/ of {listing['version']} lists {name} with another checksum")
                dump = self._get("/dumps/description.ttl")
                version = dump.headers["X-Release"]
                if hashlib.sha256(dump.content).hexdigest() != self._manifest(version)["files"]["description.ttl"]["sha256"]:
                    raise AssertionError(f"/dumps/description.ttl says {version} but its bytes are another release's")
                if version.encode() not in dump.content:
                    raise AssertionError(f"description of {version} does not name it")
                description = self._get("/dataset.ttl")
                tag = description.headers["ETag"]
                named = tag.split('"')[1].split("-dataset")[0]
                self._manifest(named)
                if named.encode() not in description.content:
                    raise AssertionError(f"/dataset.ttl ETag {tag} but the body is another release's")
                self.versions.update({listing["version"], version, named})
                self.checked += 3
            except (requests.RequestException, AssertionError, ReleaseError, KeyError, ValueError) as error:
                self.failures.append(f"{time.strftime('%X')} {type(error).__name__}: {error}")
            time.sleep(0.02)


class LinkWatcher(threading.Thread):
    """Checks, as often as it can, that releases/current points at a complete release."""

    def __init__(self, releases: Path):
        super().__init__(daemon=True)
        self.releases = releases
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.checked = 0

    def run(self) -> None:
        link = self.releases / CURRENT
        while not self.stop.is_set():
            try:
                target = os.readlink(link)
                release = open_release(self.releases / target)
                if self.checked % 50 == 0:
                    bad = verify_checksums(release)
                    if bad:
                        raise ReleaseError(f"{target}: checksums differ for {bad}")
                self.checked += 1
            except (OSError, ReleaseError) as error:
                self.failures.append(f"{type(error).__name__}: {error}")
            time.sleep(0.005)


@pytest.fixture(scope="module")
def faulty_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("fault-root")
    _copy_sources(root)
    releases = root / "releases"
    started = time.monotonic()
    first = subprocess.run(_build_command(root, releases), capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)
    assert first.returncode == 0, first.stderr
    return root, releases, time.monotonic() - started


def test_killed_builds_and_reloads_never_break_the_release(faulty_world):
    root, releases, _ = faulty_world
    rng = random.Random(SEED)
    # How long a build takes here, and when it starts writing (after validation), measured.
    _touch_sources(root, -1)
    started = time.monotonic()
    process = subprocess.Popen(_build_command(root, releases), cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    writing = None
    for line in process.stdout:
        if "conform" in line and writing is None:
            writing = time.monotonic() - started
    assert process.wait(300) == 0
    duration = time.monotonic() - started
    writing = writing or duration * 0.6

    server = WatchedServer(Settings(root=root, releases=releases), workers=2)
    poller, watcher = Poller(server.url, releases), LinkWatcher(releases)
    poller.start()
    watcher.start()
    outcomes = []
    try:
        delays = [rng.uniform(0, duration) for _ in range(UNIFORM_FAULTS)] + \
                 [rng.uniform(writing, duration) for _ in range(WRITE_PHASE_FAULTS)]
        for n, delay in enumerate(delays):
            _touch_sources(root, n)
            build = subprocess.Popen(_build_command(root, releases), cwd=PROJECT_ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if n % 4 == 1:  # a reload of the server meanwhile (the master rebuilds too)
                threading.Timer(rng.uniform(0, duration), lambda: server.process.send_signal(signal.SIGHUP)).start()
            time.sleep(delay)
            build.send_signal(signal.SIGKILL)
            outcomes.append((round(delay, 2), build.wait(60)))
        time.sleep(duration + 1.5)  # let a master's reload build finish, and the workers notice
        # After all that, a clean build still succeeds and is what the server serves.
        _touch_sources(root, 999)
        final = subprocess.run(_build_command(root, releases), capture_output=True, text=True, timeout=300,
                               cwd=PROJECT_ROOT)
        assert final.returncode == 0, final.stdout + final.stderr
        version = open_release(releases / os.readlink(releases / CURRENT)).version
        deadline = time.monotonic() + 15
        while requests.get(server.url + "/dumps/", timeout=30).json()["version"] != version:
            assert time.monotonic() < deadline, "the server did not pick up the new release"
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        poller.stop.set()
        watcher.stop.set()
        poller.join(60)
        watcher.join(60)
        server.stop()
    killed = sum(1 for _, code in outcomes if code == -signal.SIGKILL)
    leftovers = sorted(p.name for p in releases.glob(".building-*"))
    complete = [p.name for p in releases.iterdir() if p.is_dir() and not p.name.startswith(".")]
    print(f"\nbuild {duration:.2f}s (writing from {writing:.2f}s); {len(outcomes)} faults injected "
          f"({killed} builds killed, {len(outcomes) - killed} finished first), {len(delays) // 4} reloads; "
          f"{poller.checked} answers checked over {len(poller.versions)} releases; link checked {watcher.checked} "
          f"times; {len(complete)} complete releases, {len(leftovers)} leftover .building-* folders")
    assert len(outcomes) >= 20 and killed >= 10, outcomes
    assert not poller.failures, "\n".join(poller.failures[:30])
    assert not watcher.failures, "\n".join(watcher.failures[:30])
    assert poller.checked > 100 and len(poller.versions) >= 2, (poller.checked, poller.versions)
    assert not server.errors, "\n".join(server.errors[:60])
    for name in complete:  # every folder with a version name is a complete release
        open_release(releases / name)


def test_concurrent_builds_of_the_same_sources_and_a_reload(faulty_world):
    """Regression: `lodpub build` and the master's reload build (SIGHUP) of the same sources
    raced to rename their staging folders to the same version; the loser died on
    `OSError: Directory not empty` — and when the loser was the gunicorn master's reload hook,
    the master itself exited ("Unhandled exception in main loop"): the whole server down."""
    root, releases, _ = faulty_world
    server = WatchedServer(Settings(root=root, releases=releases), workers=1)
    results = []
    try:
        for n in range(2):
            _touch_sources(root, 500 + n)
            build = subprocess.Popen(_build_command(root, releases), cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
            server.process.send_signal(signal.SIGHUP)
            output = build.communicate(timeout=300)[0]
            results.append((build.returncode, output.strip().splitlines()[-1:]))
            time.sleep(4)  # the master's reload build started with the other one: done by now
            assert server.process.poll() is None, "the gunicorn master died:\n" + "\n".join(server.errors[-40:])
            version = open_release(releases / os.readlink(releases / CURRENT)).version
            assert requests.get(server.url + "/dumps/", timeout=30).status_code == 200
    finally:
        server.stop()
    assert all(code == 0 for code, _ in results), results
    assert not [line for line in server.errors if "Unhandled exception" in line or "Traceback" in line], \
        "\n".join(server.errors[:60])
    assert version


# --------------------------------------------------------------------------------------------
# Start-up refuses a broken release
# --------------------------------------------------------------------------------------------

@pytest.fixture
def release_copy(built, tmp_path):
    releases = tmp_path / "releases"
    releases.mkdir()
    shutil.copytree(built.path, releases / built.path.name, symlinks=True)
    (releases / CURRENT).symlink_to(built.path.name)
    return releases, releases / built.path.name


def _serve(releases: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LODPUB_RELEASES": str(releases)}
    try:
        return subprocess.run([sys.executable, "-m", "server.cli", "serve", "--no-build", "--port", str(free_port())],
                              capture_output=True, text=True, timeout=20, cwd=PROJECT_ROOT, env=env)
    except subprocess.TimeoutExpired as timeout:
        raise AssertionError(f"the server started on a broken release:\n{timeout.stderr}") from None


def _truncate(folder: Path) -> None:
    path = folder / "dataset.nq.gz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _corrupt_manifest(folder: Path) -> None:
    (folder / "manifest.json").write_text('{"version": "2026-11-29.', encoding="utf-8")


def _delete_store(folder: Path) -> None:
    shutil.rmtree(folder / "store")


def _flip_a_byte(folder: Path) -> None:
    path = folder / "dataset.ttl"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x20
    path.write_bytes(bytes(data))


def _empty_store(folder: Path) -> None:
    for f in (folder / "store").iterdir():
        f.unlink() if f.is_file() else shutil.rmtree(f)


def _no_current(folder: Path) -> None:
    (folder.parent / CURRENT).unlink()
    (folder.parent / CURRENT).symlink_to("2000-01-01.00000000")


@pytest.mark.parametrize("damage, words", [
    (_truncate, "dataset.nq.gz"),
    (_corrupt_manifest, "manifest.json"),
    (_delete_store, "store"),
    (_flip_a_byte, "dataset.ttl"),
    (_empty_store, "store"),
    (_no_current, "release"),
], ids=["truncated-dump", "corrupt-manifest", "store-deleted", "flipped-byte", "store-emptied", "dangling-current"])
def test_broken_release_refused_at_start_up(release_copy, damage, words):
    releases, folder = release_copy
    damage(folder)
    result = _serve(releases)
    assert result.returncode != 0, result.stdout + result.stderr
    message = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    assert message.startswith("error: not serving:") and words in message, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
