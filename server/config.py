"""All configuration in one place. Every setting has a default that works on a laptop and can
be overridden by an environment variable named ``LODPUB_<NAME>``."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    #: Canonical IRIs live under this base; it must end with "/".
    base: str = "https://w3id.org/un-meetings/"
    #: Folder holding ontology/, shapes/ and data/.
    root: Path = PROJECT_ROOT
    #: Folder where `build` writes releases; `current` links to the one served.
    releases: Path = field(default=PROJECT_ROOT / "releases")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    #: SPARQL limits (also stated in the service description).
    query_timeout: float = 5.0
    #: Seconds a query may wait for a free evaluator before 503 "Server busy" (its evaluation
    #: then has `query_timeout`). Waiting costs no CPU but holds a request thread.
    sparql_queue_timeout: float = 15.0
    max_result_rows: int = 10000
    max_request_bytes: int = 1_000_000
    #: (half of the server's evaluators: one client cannot hold them all)
    max_concurrent_queries_per_client: int = 1
    #: SPARQL evaluator processes of the whole server, shared by its workers (server/evaluators.py;
    #: one per core keeps a small machine busy, and each holds its own store handle), their
    #: address-space cap (MiB, 0 = none) and the per-worker result cache (bytes, 0 = off). Read
    #: in the workers and in the evaluator processes alike, so they come from the environment.
    sparql_evaluators: int = 2
    sparql_memory_mb: int = 2048
    sparql_cache_bytes: int = 32 << 20
    #: An evaluator left this many seconds without a job after its queries grew it is replaced
    #: by a fresh one, giving back its store's block cache and its last queries' heap (0: never;
    #: php-fpm's process_idle_timeout, for the same reason).
    sparql_evaluator_idle_seconds: float = 10.0
    #: A query whose work the data bounds to at most this many solutions is evaluated in the
    #: worker, without an evaluator's round trip (0: every query goes to an evaluator;
    #: server/light_queries.py).
    inline_query_max_bindings: int = 1000
    #: Statements pointing at a thing kept in its document, per property (0: all); the HTML page
    #: says how many there are and links to the SPARQL query listing them (server/documents.py).
    max_inbound_per_property: int = 100
    #: Whole responses (documents, their 303s, SPARQL answers when the result cache is on) kept
    #: per worker and release and answered without entering Flask (bytes, 0 = off;
    #: server/response_cache.py).
    response_cache_bytes: int = 64 << 20
    #: glibc malloc arenas per server process (0: glibc's default, 8 per core). A worker's 8
    #: request threads would otherwise each get an arena that keeps its freed memory
    #: (docs/performance.md, "Memory: malloc arenas …").
    malloc_arenas: int = 2
    #: Reverse proxies in front whose X-Forwarded-For/-Proto/-Host are trusted (0: none).
    trusted_proxies: int = 0
    #: SHACL engine of validate/build: "auto" (pyshacl-turbo when it can, else pySHACL), "pyshacl"
    #: (the reference) or "turbo" (server/validation_engines.py).
    validation_engine: str = "auto"
    #: The build writes the release while it validates, on both cores (three processes: 3.9 GiB
    #: at its peak at 1M triples, 98 s); off, one step after the other in one process (2.2 GiB,
    #: 164 s: docs/performance.md, "Validation beside the release").
    build_in_parallel: bool = True
    #: Licence of the published data (a URL).
    license: str = "https://creativecommons.org/licenses/by/4.0/"
    #: One JSON line per request on the "lodpub.access" logger (stderr); LODPUB_ACCESS_LOG=0 turns it off.
    access_log: bool = True
    #: /health/ready fails when the store has not answered ASK {} within this many seconds.
    health_timeout: float = 2.0
    #: A remote SPARQL 1.1 store (Virtuoso, Fuseki, GraphDB …) to serve from instead of the
    #: embedded one: its query endpoint; empty = the release's embedded Oxigraph store.
    store_url: str = ""
    #: Where `lodpub publish` writes: SPARQL Update endpoint (default: store_url) and, if the
    #: store has one, its Graph Store Protocol endpoint (faster loads); credentials for both.
    store_update_url: str = ""
    store_gsp_url: str = ""
    store_user: str = ""
    store_password: str = ""
    #: Seconds to wait for the remote store on the server's own queries (pages, descriptions).
    store_timeout: float = 10.0
    #: Releases kept in the remote store besides the current one (older ones are dropped).
    store_keep_releases: int = 1

    @property
    def remote_store(self) -> bool:
        return bool(self.store_url)

    @property
    def ontology_dir(self) -> Path:
        return self.root / "ontology"

    @property
    def shapes_dir(self) -> Path:
        return self.root / "shapes"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def with_overrides(self, **changes: object) -> "Settings":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def from_environment(environ: dict[str, str] | None = None) -> Settings:
    """Settings with every ``LODPUB_*`` variable applied, converted to the field's type."""
    environ = os.environ if environ is None else environ
    defaults = Settings()
    changes: dict[str, object] = {}
    for f in fields(Settings):
        raw = environ.get(f"LODPUB_{f.name.upper()}")
        if raw is not None:
            changes[f.name] = _converted(raw, type(getattr(defaults, f.name)))
    if "root" in changes and "releases" not in changes:
        changes["releases"] = Path(changes["root"]) / "releases"
    settings = replace(defaults, **changes)
    if not settings.base.endswith("/"):
        raise ValueError(f"LODPUB_BASE must end with '/': {settings.base!r}")
    return settings


def _converted(raw: str, kind: type) -> object:
    # bool("0") is True: a switch reads as off for 0, false, no, off and the empty string
    if kind is bool:
        return raw.strip().lower() not in ("0", "false", "no", "off", "")
    return kind(raw)
