"""Live activity: what changed (a ticket created, a message added, a claim, a chat message), for the pages open
right now, in every process that serves them.

A change writes its event in its own transaction (``publish``): an event exists if and only if its change was
committed, whichever process made it (the mailroom, a console replica, the chat hub). Readers follow the table in
order of ``id`` (``Follower``); on PostgreSQL the commit also sends a NOTIFY on ``CHANNEL`` (a trigger on the
table, migration 0007), so that a reader wakes at once instead of at its next look. Events are a feed, not a
record: ``prune`` drops old ones (the audit trail is ``core.audit``'s).

Ids are not committed in their order on PostgreSQL: a transaction that took id 7 may commit after another took and
committed id 8. A reader that only asks for ids above the last it saw would miss 7 for good, so a ``Follower`` keeps
the ids it skipped (gaps) and asks for them again until they appear or ``GAP_SECONDS`` pass (an id whose
transaction rolled back never appears).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, sessionmaker

from core.db.models import ActivityEvent

CHANNEL = "billing_activity"
KEEP = timedelta(days=2)
_PUBLISHED = "billing_published"
GAP_SECONDS = 120.0  # longer than any transaction that publishes runs
MAX_GAPS = 2000
RECENT_IDS = 50  # how far below the newest id a new follower looks for ids not committed yet


@dataclass(frozen=True)
class Event:
    """One committed change, as pages receive it."""

    id: int
    kind: str
    team: str | None
    ticket_id: int | None
    agent_id: int | None
    data: dict[str, Any]


def publish(session: Session, kind: str, team: str | None, ticket_id: int | None = None,
            agent_id: int | None = None, **data: Any) -> None:
    """Record an event in the caller's transaction (seen by readers once it commits)."""
    session.add(ActivityEvent(kind=kind, team=team, ticket_id=ticket_id, agent_id=agent_id, data=data))
    session.info[_PUBLISHED] = True  # (on PostgreSQL the table's trigger sends the NOTIFY: migration 0007)


def on_commit(factory: sessionmaker[Session], callback: Callable[[], None]) -> None:
    """Call ``callback`` after each commit of a session of ``factory`` that published events: a reader in the
    same process (the console's hub) looks at once instead of at its next look."""
    def committed(session: Session) -> None:
        if session.info.pop(_PUBLISHED, False):
            callback()

    sa_event.listen(factory, "after_commit", committed)
    sa_event.listen(factory, "after_rollback", lambda session: session.info.pop(_PUBLISHED, None))


def latest_id(session: Session) -> int:
    """The id of the newest event (0 when there is none): a reader starting now follows from there."""
    return int(session.execute(select(func.coalesce(func.max(ActivityEvent.id), 0))).scalar_one())


def events_after(session: Session, last_id: int, limit: int = 500, also: Collection[int] = ()) -> list[Event]:
    """The events after ``last_id`` (and those among the ids ``also``), in order of id."""
    where = ActivityEvent.id > last_id
    if also:
        where = or_(where, ActivityEvent.id.in_(sorted(also)))
    rows = session.execute(select(ActivityEvent).where(where).order_by(ActivityEvent.id).limit(limit)).scalars()
    return [Event(int(r.id), str(r.kind), r.team, r.ticket_id, r.agent_id, dict(r.data or {})) for r in rows]


class Follower:
    """Reads the feed from a position on, each event once, including those committed after a higher id."""

    def __init__(self, last_id: int, clock: Callable[[], float] = time.monotonic,
                 awaited: Collection[int] = ()) -> None:
        self.last_id = last_id
        self._clock = clock
        self._gaps: dict[int, float] = dict.fromkeys(awaited, clock())  # an id skipped -> when it was first missed

    @classmethod
    def from_now(cls, session: Session, clock: Callable[[], float] = time.monotonic) -> Follower:
        """A follower of what is committed from now on: after the newest event, and awaiting the ids just below
        it that are not there (transactions that took them may not have committed yet)."""
        newest = latest_id(session)
        present = set(session.execute(select(ActivityEvent.id).where(ActivityEvent.id > newest - RECENT_IDS)).scalars())
        return cls(newest, clock, [id_ for id_ in range(max(newest - RECENT_IDS, 0) + 1, newest) if id_ not in present])

    @property
    def gaps(self) -> frozenset[int]:
        """The ids still awaited."""
        return frozenset(self._gaps)

    def read(self, session: Session, limit: int = 500) -> list[Event]:
        """The events not read yet, in order of id."""
        now = self._clock()
        self._gaps = {id_: since for id_, since in self._gaps.items() if now - since < GAP_SECONDS}
        events = events_after(session, self.last_id, limit, also=self._gaps)
        for event in events:
            if self._gaps.pop(event.id, None) is not None:
                continue  # a late commit, found
            for missing in range(self.last_id + 1, event.id):
                self._gaps[missing] = now
            self.last_id = max(self.last_id, event.id)
        if len(self._gaps) > MAX_GAPS:  # (a burst of rollbacks): the oldest are given up
            self._gaps = dict(sorted(self._gaps.items(), key=lambda item: item[1])[-MAX_GAPS:])
        return events


def prune(session: Session, now: datetime | None = None) -> int:
    """Drop events older than ``KEEP`` but the newest (ids go on from it); returns how many."""
    cutoff = (now or datetime.now(timezone.utc)) - KEEP
    newest = latest_id(session)
    result: Any = session.execute(delete(ActivityEvent).where(ActivityEvent.at < cutoff, ActivityEvent.id < newest))
    return int(result.rowcount)
