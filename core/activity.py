"""Live activity: what changed (a ticket created, a message added, a claim, a chat message), for the pages open
right now, in every process that serves them.

A change writes its event in its own transaction (``publish``): an event exists if and only if its change was
committed, whichever process made it (the mailroom, a console replica, the chat hub). Readers follow the table in
order of ``id`` (``events_after``); on PostgreSQL the commit also sends a NOTIFY on ``CHANNEL``, so that a reader
wakes at once instead of at its next look. Events are a feed, not a record: ``prune`` drops old ones (the audit
trail is ``core.audit``'s).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from core.db.models import ActivityEvent

CHANNEL = "billing_activity"
KEEP = timedelta(days=2)


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
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


def latest_id(session: Session) -> int:
    """The id of the newest event (0 when there is none): a reader starting now follows from there."""
    return int(session.execute(select(func.coalesce(func.max(ActivityEvent.id), 0))).scalar_one())


def events_after(session: Session, last_id: int, limit: int = 500) -> list[Event]:
    """The events after ``last_id``, oldest first."""
    rows = session.execute(select(ActivityEvent).where(ActivityEvent.id > last_id)
                           .order_by(ActivityEvent.id).limit(limit)).scalars()
    return [Event(int(r.id), str(r.kind), r.team, r.ticket_id, r.agent_id, dict(r.data or {})) for r in rows]


def prune(session: Session, now: datetime | None = None) -> int:
    """Drop events older than ``KEEP``; returns how many."""
    cutoff = (now or datetime.now(timezone.utc)) - KEEP
    result: Any = session.execute(delete(ActivityEvent).where(ActivityEvent.at < cutoff))
    return int(result.rowcount)
