"""Write a validated build as a release folder, atomically.

A release folder holds the dumps, the SHACL report, a read-only Oxigraph store and a
``manifest.json`` (version, date, checksums, counts). It is written under a temporary name and
renamed into place; ``releases/current`` is then switched with an atomic symlink replace, so a
reader sees the old release or the new one, never a mix, and a failed build changes nothing.
The data's files are written while the sources are validated; sources that do not conform
leave nothing behind.
"""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import shutil
import socket
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pyoxigraph as ox

from . import dataset_description, light_queries, loading, search_index, statistics
from .child_process import run_beside
from .config import Settings
from .namespaces import prefixes
from .orphans import folder_name_prefix, remove_orphans
from .progress import Progress
from .rdfterms import graph_from_quads
from .validation import ParsedSources, ValidatedSources

T = TypeVar("T")
U = TypeVar("U")

MANIFEST = "manifest.json"
CURRENT = "current"
STORE_DIR = "store"
#: a build writes its release in `{releases}/.building-{host}-{pid}-…` and renames it when complete
STAGING_PREFIX = ".building-"

#: file name → (media type, how it is written)
DUMPS = {
    "dataset.nq.gz": "application/n-quads",
    "dataset.trig": "application/trig",
    "dataset.ttl": "text/turtle",
    "dataset.jsonld": "application/ld+json",
}
EXTRA_FILES = {
    "ontology.ttl": "text/turtle",
    "shapes.ttl": "text/turtle",
    "validation-report.ttl": "text/turtle",
    search_index.FILE_NAME: search_index.MEDIA_TYPE,  # the text-search index (SQLite FTS5)
}
#: The DCAT/VoID/DQV description of the release (server/dataset_description.py); written last,
#: as it states the other files' sizes and checksums.
DESCRIPTION_FILE = "description.ttl"


class ReleaseError(Exception):
    """A release folder that is missing, incomplete or corrupted."""


class NotPublishable(ReleaseError):
    """The sources do not conform to the shapes: no release is made of them."""


@dataclass(frozen=True)
class Release:
    path: Path
    manifest: dict

    @property
    def version(self) -> str:
        return self.manifest["version"]

    def file(self, name: str) -> Path:
        return self.path / name

    def open_store(self) -> ox.Store:
        return ox.Store.read_only(str(self.path / STORE_DIR))


def source_digest(sources: ParsedSources, base: str, root: Path | None = None) -> str:
    """A hash of every source file's path and bytes (and the catalogue metadata's under `root`),
    and of the base: same sources, same release."""
    digest = hashlib.sha256(base.encode())
    for f in sources.ontology + sources.shapes + sources.data:
        digest.update(f.source.path.name.encode() + b"\0" + f.source.path.read_bytes())
    catalog = dataset_description.catalog_file(root) if root else None
    if catalog and catalog.is_file():
        digest.update(b"catalog\0" + catalog.read_bytes())
    return digest.hexdigest()


def build(sources: ParsedSources, settings: Settings, validate: Callable[[], ValidatedSources] | None = None,
          now: dt.datetime | None = None, progress: Progress | None = None) -> Release:
    """Write a release of the sources and make it current; reuse an identical one. `validate`
    (by default, the verdict `sources` carry) runs here while a forked child writes the data's
    files on the other core (a process with RocksDB's threads validates first, then writes them
    itself: _has_rocksdb_threads). If the sources do not conform (NotPublishable), the child is
    stopped and nothing is kept. `progress` shows the phases (server/progress.py)."""
    def verdict() -> ValidatedSources:
        validated = _interruptible(validate) if validate else sources
        if not validated.report.conforms:
            raise NotPublishable(f"refusing to build: the data does not conform to the shapes "
                                 f"({len(validated.report.violations)} results)")
        return validated

    now = now or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    digest = source_digest(sources, settings.base, settings.root)
    version = f"{now:%Y-%m-%d}.{digest[:8]}"
    settings.releases.mkdir(parents=True, exist_ok=True)
    previous = current_release(settings.releases, required=False)
    final = settings.releases / version
    remove_orphans(settings.releases, _staging_prefix())  # of builds killed before they could clean up
    if final.exists():
        verdict()
    else:
        staging = Path(tempfile.mkdtemp(prefix=folder_name_prefix(_staging_prefix()), dir=settings.releases))
        staging.chmod(0o755)
        try:
            _write_release(staging, sources, verdict, settings, version, now, digest, previous,
                           progress or Progress.off())
            os.rename(staging, final)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not final.is_dir():
                raise
            # A concurrent build of the same sources renamed its identical release first.
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    _point_current_to(settings.releases, version)
    return open_release(final)


def _interruptible(function: Callable[[], T]) -> T:
    """`function()` on a thread of its own while this one waits: a SHACL engine in native code
    holds Ctrl-C back until it returns (52 s at 1M triples), the wait here does not. (A daemon
    thread: concurrent.futures joins its threads at exit, which would wait for the engine.)"""
    outcome: list = []

    def run() -> None:
        try:
            outcome.append((True, function()))
        except BaseException as error:
            outcome.append((False, error))

    thread = threading.Thread(target=run, name="validation", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
    succeeded, value = outcome[0]
    if succeeded:
        return value
    raise value


def _staging_prefix() -> str:
    # the host's name too: replicas on other machines may build into a shared releases folder,
    # where a pid of theirs means nothing here
    return f"{STAGING_PREFIX}{socket.gethostname()}-"


@dataclass(frozen=True)
class _DataFiles:
    """What the child that wrote the data's files tells the rest of the release."""
    quads: int
    graphs: dict[str, int]
    stats: statistics.Statistics
    fanout: dict
    shapes: int
    focus_nodes: int


def _write_release(folder: Path, sources: ParsedSources, verdict: Callable[[], ValidatedSources],
                   settings: Settings, version: str, now: dt.datetime, digest: str,
                   previous: Release | None, progress: Progress) -> None:
    if not settings.build_in_parallel or _has_rocksdb_threads():
        validated = verdict()
        with progress.steps() as step:
            written = _write_data_files(folder, sources, settings.base, step, settings.build_in_parallel)
    else:  # the data's files need no verdict: a child writes them while the sources are validated here
        with progress.steps_of_a_child() as child_step:
            written, validated = run_beside(_write_data_files, (folder, sources, settings.base, child_step, True), verdict)
    with progress.steps() as step:
        step("description")
        (folder / "validation-report.ttl").write_bytes(
            validated.report.graph.serialize(format="turtle", encoding="utf-8"))
        _write_description_and_manifest(folder, settings, written, _validation_summary(validated, written),
                                        version, now, digest, previous)
        step("sync")
        _fsync_tree(folder)


def _validation_summary(validated: ValidatedSources, written: _DataFiles) -> dict:
    return {
        "conforms": validated.report.conforms,
        "results": len(validated.report.violations),
        "shapes_files": [f.source.path.name for f in validated.shapes],
        "shapes": written.shapes,
        "focus_nodes": written.focus_nodes,
    }


def _write_description_and_manifest(folder: Path, settings: Settings, written: _DataFiles, validation: dict,
                                    version: str, now: dt.datetime, digest: str, previous: Release | None) -> None:
    files = {name: _describe(folder / name, media) for name, media in {**DUMPS, **EXTRA_FILES}.items()}
    created = now.isoformat().replace("+00:00", "Z")
    first_issued = (previous.manifest.get("first_issued") or previous.manifest["created"]) if previous else created
    description = dataset_description.describe(
        base=settings.base, catalog=dataset_description.load_catalog(settings.root, settings.base),
        license=settings.license, version=version, created=created, first_issued=first_issued,
        previous=previous.version if previous else None, source_sha256=digest, files=files,
        stats=written.stats, validation=validation)
    (folder / DESCRIPTION_FILE).write_bytes(description.serialize(format="turtle", encoding="utf-8"))
    files[DESCRIPTION_FILE] = _describe(folder / DESCRIPTION_FILE, "text/turtle")
    manifest = {
        "version": version,
        "created": created,
        "first_issued": first_issued,
        "base": settings.base,
        "source_sha256": digest,
        "previous": previous.version if previous else None,
        "quads": written.quads,
        "graphs": written.graphs,
        "validation": validation,
        "statistics": written.stats.to_json(),
        light_queries.MANIFEST_KEY: written.fanout,
        "files": files,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _has_rocksdb_threads() -> bool:
    """Whether this process runs RocksDB's background threads (it opened a store before, as a test
    runner does). They do not survive fork: a child that writes a store would wait for them for
    ever, so such a process validates first and then writes the release itself (Linux names the
    threads; elsewhere the answer is no)."""
    for name in Path("/proc/self/task").glob("*/comm"):
        try:
            if name.read_text().startswith("rocksdb"):
                return True
        except OSError:  # a thread that ended meanwhile
            continue
    return False


def _write_data_files(folder: Path, sources: ParsedSources, base: str,
                      step: Callable[[str | None], None], parallel: bool) -> _DataFiles:
    """The dumps, the store, the search index and the figures; `parallel`, on two cores: the dumps
    beside the store, then the search index beside the figures (both read the store). A child
    sees the quads without a copy."""
    both = run_beside if parallel else _one_after_the_other
    step("dumps and store")
    data_quads = list(dict.fromkeys(loading.all_quads(sources.data + sources.ontology)))  # a triple stated twice counts once
    both(_write_dumps, (folder, data_quads, base), lambda: _write_store(folder / STORE_DIR, data_quads))
    _write_triples(folder / "ontology.ttl", loading.all_quads(sources.ontology), base)
    _write_triples(folder / "shapes.ttl", loading.all_quads(sources.shapes), base)
    step("search index and statistics")
    _, (stats, fanout, (shapes, focus_nodes)) = both(
        search_index.write, (folder / search_index.FILE_NAME, folder / STORE_DIR),
        lambda: _figures(folder / STORE_DIR, sources, base))
    step(None)
    graphs = dict(sorted(Counter(q.graph_name.value for q in data_quads).items()))
    return _DataFiles(len(data_quads), graphs, stats, fanout, shapes, focus_nodes)


def _one_after_the_other(function: Callable[..., T], args: tuple, then: Callable[[], U]) -> tuple[T, U]:
    """run_beside's results, in this process, one step after the other."""
    return function(*args), then()


def _figures(store_path: Path, sources: ParsedSources, base: str) -> tuple[statistics.Statistics, dict, tuple[int, int]]:
    """The release's statistics, fan-out figures (server/light_queries.py), and the number of
    shapes and of the focus nodes they have."""
    store = ox.Store.read_only(str(store_path))
    focus = dataset_description.count_focus_nodes(graph_from_quads(loading.all_quads(sources.shapes)), store)
    return statistics.compute(store, base), light_queries.fanout_statistics(store), focus


def _write_dumps(folder: Path, quads: list[ox.Quad], base: str) -> None:
    nquads = ox.serialize(quads, format=ox.RdfFormat.N_QUADS)
    with gzip.GzipFile(folder / "dataset.nq.gz", "wb", mtime=0) as out:
        out.write(b"".join(sorted(nquads.splitlines(keepends=True))))
    ox.serialize(quads, folder / "dataset.trig", format=ox.RdfFormat.TRIG, prefixes=prefixes(base))
    _write_triples(folder / "dataset.ttl", quads, base)
    ox.serialize(quads, folder / "dataset.jsonld", format=ox.RdfFormat.JSON_LD)


def _write_triples(path: Path, quads: list[ox.Quad], base: str) -> None:
    triples = {ox.Triple(q.subject, q.predicate, q.object) for q in quads}
    ox.serialize(triples, path, format=ox.RdfFormat.TURTLE, prefixes=prefixes(base))


def _write_store(path: Path, quads: list[ox.Quad]) -> None:
    store = ox.Store(str(path))
    store.bulk_extend(quads)
    store.flush()
    store.optimize()
    del store


def _describe(path: Path, media_type: str) -> dict:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"sha256": digest.hexdigest(), "bytes": path.stat().st_size, "media_type": media_type}


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as f:
                os.fsync(f.fileno())


def _point_current_to(releases: Path, version: str) -> None:
    link = releases / f".{CURRENT}.{os.getpid()}"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(version)
    os.replace(link, releases / CURRENT)


def current_release(releases: Path, required: bool = True) -> Release | None:
    link = releases / CURRENT
    if not link.exists():
        if required:
            raise ReleaseError(f"no release at {link}: run `lodpub build` first")
        return None
    return open_release(link.resolve())


def open_release(path: Path, need_store: bool = True) -> Release:
    """Open a release folder, refusing one whose files do not match its manifest (a front end
    of a remote store does not need the embedded store's folder)."""
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ReleaseError(f"{path}: no readable {MANIFEST} ({error})") from None
    for name, described in manifest.get("files", {}).items():
        file = path / name
        if not file.is_file() or file.stat().st_size != described["bytes"]:
            raise ReleaseError(f"{path}: {name} is missing or truncated")
    if need_store and not (path / STORE_DIR).is_dir():
        raise ReleaseError(f"{path}: the store folder is missing")
    return Release(path, manifest)


def verify_release(release: Release) -> None:
    """Refuse a release whose bytes or store differ from its manifest (reads every byte: for
    start-up, not for each request)."""
    corrupted = verify_checksums(release)
    if corrupted:
        raise ReleaseError(f"{release.path}: {', '.join(corrupted)} does not match its SHA-256 in {MANIFEST}")
    try:
        quads = len(release.open_store())
    except OSError as error:
        raise ReleaseError(f"{release.path}: the store is unusable ({error})") from None
    if quads != release.manifest["quads"]:
        raise ReleaseError(f"{release.path}: the store holds {quads} quads, the manifest says "
                           f"{release.manifest['quads']}")


def verify_checksums(release: Release) -> list[str]:
    """Names of the files whose SHA-256 differs from the manifest (slow: reads every byte)."""
    return [name for name, d in release.manifest["files"].items()
            if _describe(release.file(name), d["media_type"])["sha256"] != d["sha256"]]
