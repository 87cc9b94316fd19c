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
from email.utils import format_datetime
from datetime import datetime
from pathlib import Path

import pyoxigraph as ox

from .config import Settings
from .release import CURRENT, Release, ReleaseError, open_release

log = logging.getLogger(__name__)


@dataclass
class Publication:
    settings: Settings
    release: Release
    store: ox.Store
    #: per-release memo: anything derived only from the release (documents, descriptions ...)
    cache: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def version(self) -> str:
        return self.release.version

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.release.manifest["created"].replace("Z", "+00:00"))

    @property
    def last_modified(self) -> str:
        """The release date as an HTTP date (for Last-Modified)."""
        return format_datetime(self.created, usegmt=True)

    def memo(self, key, compute):
        """The value for `key` in this release, computing it once (thread-safe, per process)."""
        try:
            return self.cache[key]
        except KeyError:
            pass
        value = compute()
        with self._lock:
            return self.cache.setdefault(key, value)


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
