"""Folders named after the process that made them, removed once that process is gone.

A process killed outright (SIGKILL, or a build stopped in native code) runs no clean-up: the
next one of its kind removes what it left, telling it apart by the pid in the name
(``{prefix}{pid}-{random}``, the random part ``tempfile.mkdtemp``'s, which has no ``-``)."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path


def folder_name_prefix(prefix: str) -> str:
    """The prefix of a folder that this process makes (for ``tempfile.mkdtemp(prefix=...)``)."""
    return f"{prefix}{os.getpid()}-"


def fresh_folder(parent: Path, prefix: str) -> Path:
    """A new folder of this process in `parent`, once the orphans of its kind are removed."""
    remove_orphans(parent, prefix)
    return Path(tempfile.mkdtemp(prefix=folder_name_prefix(prefix), dir=parent))


def remove_orphans(parent: Path, prefix: str) -> None:
    """Remove the folders of `parent` named ``{prefix}{pid}-…`` whose process has ended."""
    for folder in parent.glob(prefix + "*-*"):
        # the whole rest of the name: another prefix that starts with ours ("host-2-" after
        # "host-") must not have its first word read as a pid
        named = _PID_AND_RANDOM.fullmatch(folder.name[len(prefix):])
        if named and not _alive(int(named[1])):
            shutil.rmtree(folder, ignore_errors=True)


_PID_AND_RANDOM = re.compile(r"(\d+)-[a-z0-9_]+")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
