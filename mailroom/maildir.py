"""The embedded source: a local Maildir (``var/mail/inbox``) a new user drops .eml files into.

A file in ``new/`` is handled, then moved to ``cur/`` (the Maildir way of flagging it seen); one that cannot be
handled goes to ``quarantine/``. A file gets a stable pseudo-UID from its name, so that a restart after a crash
between the commit and the move recognises it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from mailroom.mail import SourceKey


class MaildirSource:
    """A Maildir folder read as one mailbox."""

    def __init__(self, root: Path, name: str = "local") -> None:
        self.root = root
        self.name = name
        for sub in ("new", "cur", "tmp", "quarantine"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def pending(self) -> list[Path]:
        """Files waiting in ``new/``, oldest first (dot files are being written)."""
        files = [p for p in (self.root / "new").iterdir() if p.is_file() and not p.name.startswith(".")]
        return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))

    def key(self, path: Path) -> SourceKey:
        uid = int(hashlib.sha1(path.name.encode("utf-8", "surrogateescape")).hexdigest()[:15], 16)
        return SourceKey(self.name, 0, uid)

    def done(self, path: Path) -> None:
        """Flag as handled: move to ``cur/`` with the Seen flag."""
        os.replace(path, self.root / "cur" / f"{path.name.split(':')[0]}:2,S")

    def release(self, uid: int) -> bool:
        """Put the quarantined file whose pseudo-UID is ``uid`` back into ``new/``; False if there is none."""
        for path in (self.root / "quarantine").iterdir():
            if self.key(path).uid == uid:
                os.replace(path, self.root / "new" / path.name)
                return True
        return False

    def quarantine(self, path: Path) -> None:
        """Set aside a message that could not be handled (nothing is deleted)."""
        os.replace(path, self.root / "quarantine" / path.name)
