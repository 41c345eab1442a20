"""What an account leaves outside its home: cron and at jobs, files in the shared temporary folders."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path


def remove_spooled_jobs(spool_dirs: tuple[Path, ...], name: str, uid: int) -> int:
    """Delete the account's crontab (named after it) and its at jobs (owned by it); how many."""
    removed = 0
    for folder in spool_dirs:
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            if entry.name == name or _owner(entry) == uid:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed += 1
    return removed


def remove_owned(roots: tuple[Path, ...], uid: int) -> int:
    """Delete what the account owns under shared folders like /tmp (whole folders it made); how many."""
    return sum(_remove_owned(root, uid) for root in roots if root.is_dir())


def _remove_owned(folder: Path, uid: int) -> int:
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        owner = _owner(entry)
        is_dir = entry.is_dir(follow_symlinks=False)
        if owner == uid:
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(entry.path) if is_dir else os.unlink(entry.path)
                removed += 1
        elif is_dir:
            removed += _remove_owned(Path(entry.path), uid)
    return removed


def _owner(entry: os.DirEntry[str]) -> int | None:
    try:
        return entry.stat(follow_symlinks=False).st_uid
    except FileNotFoundError:
        return None
