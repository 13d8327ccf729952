"""Run-time files that a later start reads, written so that a crash never leaves half of one.

Every such file (model caches, the development signing secret, pid files, the local outbox's mail) is written
to a temporary file in the same folder, flushed and fsynced, then renamed over its final name: a reader sees the
old file or the new one, never a truncated one; a crash leaves at most a temporary file, which
``remove_stale_temporaries`` clears at the next start. The folder is fsynced too, so that the rename itself
survives a power cut.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

TEMPORARY_PREFIX = ".tmp-"


def fsync_directory(directory: Path) -> None:
    """Make the entries of ``directory`` (a rename, a new file) durable."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _temporary_beside(path: Path, mode: int) -> tuple[int, Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(prefix=f"{TEMPORARY_PREFIX}{path.name}.", dir=path.parent)
    os.fchmod(descriptor, mode)
    return descriptor, Path(name)


def write_atomic(path: Path, data: bytes | str, mode: int = 0o644) -> Path:
    """Replace ``path`` with ``data`` in one step (the old content or the new, never a mix)."""
    descriptor, temporary = _temporary_beside(path, mode)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data.encode("utf-8") if isinstance(data, str) else data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
    return path


def create_atomic(path: Path, data: bytes | str, mode: int = 0o600) -> bool:
    """Create ``path`` with ``data`` unless it exists; True if this call created it.

    The file appears complete or not at all (hard-linked from a synced temporary file), and of two processes
    creating it at once exactly one wins: the other keeps the winner's content."""
    descriptor, temporary = _temporary_beside(path, mode)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data.encode("utf-8") if isinstance(data, str) else data)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
    finally:
        temporary.unlink(missing_ok=True)
    fsync_directory(path.parent)
    return True


def replace_directory(source: Path, target: Path) -> None:
    """Put the finished folder ``source`` (same parent) at ``target``, replacing any older one.

    Its files are synced first; an older ``target`` is renamed aside before the swap and deleted after it, so a
    crash leaves either folder whole at ``target`` (or nothing there), never a mix."""
    for child in source.iterdir():
        with child.open("rb") as file:
            os.fsync(file.fileno())
    fsync_directory(source)
    aside: Path | None = None
    if target.exists():
        aside = target.with_name(f"{TEMPORARY_PREFIX}{target.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(target, aside)
    os.replace(source, target)
    fsync_directory(target.parent)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def temporary_directory_beside(target: Path) -> Path:
    """A fresh folder next to ``target``, to fill and then ``replace_directory`` into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{TEMPORARY_PREFIX}{target.name}.", dir=target.parent))


def remove_stale_temporaries(directory: Path, older_than_seconds: float = 60.0) -> int:
    """Delete what crashed writers left in ``directory`` (temporary files and folders older than the given age:
    a younger one may belong to a writer still at work). Returns how many were removed."""
    if not directory.is_dir():
        return 0
    removed, now = 0, time.time()
    for entry in directory.iterdir():
        if not entry.name.startswith(TEMPORARY_PREFIX):
            continue
        try:
            if now - entry.lstat().st_mtime < older_than_seconds:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
        except FileNotFoundError:
            continue
    return removed
