"""The release being served, and everything computed once per release.

Each worker process holds one `Publication` at a time. `current()` notices when
``releases/current`` points elsewhere (a new build) and swaps in the new release atomically:
a request sees one complete release, never a mix. Caches hang off the publication, so they
are dropped with the release they were computed from.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from functools import cached_property
from pathlib import Path

import pyoxigraph as ox

from .config import Settings
from .release import CURRENT, Release, ReleaseError, open_release
from .stores import Endpoint, RemoteStore, StoreUnavailable, open_remote

log = logging.getLogger(__name__)


@dataclass
class Publication:
    settings: Settings
    release: Release
    store: ox.Store | RemoteStore
    #: per-release memo: anything derived only from the release (documents, descriptions ...)
    cache: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _computing: dict = field(default_factory=dict)  # key → the lock of its computation

    @property
    def version(self) -> str:
        return self.release.version

    @property
    def store_label(self) -> str:
        """Which store answers, for /health and the logs (never credentials)."""
        if isinstance(self.store, RemoteStore):
            return self.store.label
        return f"embedded pyoxigraph at {self.release.path / 'store'}"

    @property
    def remote(self) -> bool:
        return isinstance(self.store, RemoteStore)

    @cached_property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.release.manifest["created"].replace("Z", "+00:00"))

    @cached_property
    def last_modified(self) -> str:
        """The release date as an HTTP date (for Last-Modified)."""
        return format_datetime(self.created, usegmt=True)

    def memo(self, key, compute):
        """The value for `key` in this release, computing it once (thread-safe, per process):
        concurrent first requests for the same key wait for one computation instead of each
        running it (a crawler's burst on a cold page would otherwise multiply the store's work)."""
        try:
            return self.cache[key]
        except KeyError:
            pass
        with self._lock:
            key_lock = self._computing.setdefault(key, threading.Lock())
        with key_lock:
            try:
                return self.cache[key]
            except KeyError:
                pass
            value = compute()
            with self._lock:
                self.cache[key] = value
                self._computing.pop(key, None)
            return value


class Publisher:
    """Serves the current release; re-checks the `current` link at most once per `interval` s."""

    def __init__(self, settings: Settings, interval: float = 1.0):
        self.settings, self.interval = settings, interval
        self._publication: Publication | None = None
        self._target: str | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def current(self) -> Publication:
        now = time.monotonic()
        if self._publication is None or now - self._checked >= self.interval:
            with self._lock:
                self._checked = now
                self._refresh()
        return self._publication

    def _refresh(self) -> None:
        if self.settings.remote_store:
            self._refresh_remote()
        else:
            self._refresh_local()

    def _refresh_remote(self) -> None:
        """Follow the release the remote store names as current (see server/publishing.py); the
        release folder with the same version (dumps, manifest) must be in the releases folder."""
        from .publishing import current_version
        endpoint = Endpoint.from_settings(self.settings)
        try:
            version = current_version(endpoint, self.settings.base)
        except StoreUnavailable:
            if self._publication is None:
                raise
            log.warning("the store at %s does not answer: still serving release %s", endpoint.query_url,
                        self._publication.version)
            return
        if version is None:
            if self._publication is None:
                raise ReleaseError(f"no release is published in the store at {endpoint.query_url}: "
                                   "run `lodpub publish` first")
            return
        if version == self._target:
            return
        try:
            release = open_release(self.settings.releases / version, need_store=False)
        except ReleaseError as error:
            if self._publication is None:
                raise ReleaseError(f"the store serves release {version} but {error}") from None
            log.error("keeping release %s: the store's current release is not here: %s", self._publication.version, error)
            self._target = version
            return
        self._publication = Publication(self.settings, release, open_remote(self.settings, version, release.manifest["graphs"]))
        self._target = version
        log.info("serving release %s from %s", version, endpoint.query_url)

    def _refresh_local(self) -> None:
        link = self.settings.releases / CURRENT
        try:
            target = os.readlink(link)
        except OSError as error:
            if self._publication is None:
                raise ReleaseError(f"no release at {link}: run `lodpub build` first") from error
            return
        if target == self._target:
            return
        try:
            release = open_release((link.parent / target).resolve())
            store = release.open_store()
        except (ReleaseError, OSError) as error:
            if self._publication is None:
                raise ReleaseError(str(error)) from error
            log.error("keeping release %s: the new one is unusable: %s", self._publication.version, error)
            self._target = target
            return
        self._publication = Publication(self.settings, release, store)
        self._target = target
        log.info("serving release %s from %s", release.version, release.path)


def release_path(settings: Settings) -> Path:
    return (settings.releases / CURRENT).resolve()
