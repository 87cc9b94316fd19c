"""Folders named after the process that made them, removed once that process is gone.

A process killed outright (SIGKILL, or a build stopped in native code) runs no clean-up: the
next one of its kind removes what it left, telling it apart by the pid in the name
(``{prefix}{pid}-{random}``)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path


def folder_name_prefix(prefix: str) -> str:
    """The prefix of a folder that this process makes (for ``tempfile.mkdtemp(prefix=...)``)."""
    return f"{prefix}{os.getpid()}-"


def remove_orphans(parent: Path, prefix: str) -> None:
    """Remove the folders of `parent` named ``{prefix}{pid}-…`` whose process has ended."""
    for folder in parent.glob(prefix + "*-*"):
        pid = folder.name[len(prefix):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
