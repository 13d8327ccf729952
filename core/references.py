"""Reference numbers customers read aloud and type (``BL-7K3Q9D``): drawing one that is free, and finding one in
a mail subject whatever reply and forward prefixes a mail client put before it.

References are random (unguessable, short): a unique constraint catches the rare collision and the row is
written again with a new draw, here and nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.db.engine import unit_of_work
from core.db.models import REFERENCE_ALPHABET, new_reference
from core.errors import TransientError

TICKET_PREFIX = "BL"
REQUEST_PREFIX = "RQ"
HANDOFF_PREFIX = "HO"
DRAWS = 5  # a collision is one in hundreds of millions: five draws in a row never all collide

TICKET_REFERENCE = re.compile(rf"\[?#?\b({TICKET_PREFIX}-[{REFERENCE_ALPHABET}]{{6}})\b\]?")
# "Re:", "RE :", "Réf. :", "TR :", "Fwd:", "FW :", "AW:", "Re[2]:", "Réponse :", "Transféré :", repeated.
SUBJECT_PREFIX = re.compile(
    r"^\s*(?:re|r[ée]f\.?|r[ée]p(?:onse)?|tr|transf[ée]r[ée]|fwd?|fw|aw|sv|wg|vs|antw)(?:\s*\[\d+\])?\s*[:：]\s*",
    re.IGNORECASE,
)
Row = TypeVar("Row")


class NoFreeReference(TransientError):
    """Raised when ``DRAWS`` references in a row were taken (something else is wrong: retry later)."""


def strip_prefixes(subject: str) -> str:
    """The subject without its reply and forward prefixes."""
    previous = None
    while previous != subject:
        previous, subject = subject, SUBJECT_PREFIX.sub("", subject, count=1)
    return subject.strip()


def ticket_reference_in(subject: str) -> str | None:
    """The ticket reference a subject names (``[BL-7K3Q9D]``, ``#BL-7K3Q9D``...), if any."""
    match = TICKET_REFERENCE.search(strip_prefixes(subject))
    return match.group(1) if match else None


def commit_with_reference(factory: sessionmaker[Session], prefix: str, build: Callable[[str], Row]) -> Row:
    """Add the row ``build(reference)`` in a transaction of its own, drawing the reference again on a collision."""
    for _ in range(DRAWS):
        try:
            with unit_of_work(factory) as session:
                row = build(new_reference(prefix))
                session.add(row)
            return row
        except IntegrityError:
            continue
    raise NoFreeReference(f"no free {prefix}- reference after {DRAWS} draws")


def flush_with_reference(session: Session, prefix: str, build: Callable[[str], Row]) -> Row:
    """Add and flush the row ``build(reference)`` in the caller's transaction (a savepoint per draw)."""
    for _ in range(DRAWS):
        try:
            with session.begin_nested():
                row = build(new_reference(prefix))
                session.add(row)
                session.flush()
            return row
        except IntegrityError as error:
            if "reference" not in str(error.orig).lower():
                raise  # another unique key: not ours to retry
    raise NoFreeReference(f"no free {prefix}- reference after {DRAWS} draws")
