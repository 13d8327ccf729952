"""The audit trail: every action on a ticket or a chat, with who, what, when, the values before and after.

Written in the transaction of the action itself (an action and its record commit together or not at all) and
never changed afterwards. Agents read the trail of a ticket they can see; supervisors the whole trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import desc, select
from sqlalchemy.orm import Session

from core.db.models import Agent, AuditEvent, Ticket


def record(session: Session, action: str, *, agent_id: int | None, team: str | None, ticket_id: int | None = None,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None, detail: str | None = None) -> None:
    """Add one entry to the trail (in the caller's transaction)."""
    session.add(AuditEvent(action=action, agent_id=agent_id, team=team, ticket_id=ticket_id, before=before,
                           after=after, detail=(detail or None) and detail[:4000]))


@dataclass(frozen=True)
class AuditEntry:
    """One entry as pages show it."""

    at: datetime
    action: str
    agent: str | None
    ticket: str | None
    ticket_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    detail: str | None


def _entries(session: Session, query: Any) -> list[AuditEntry]:
    rows = session.execute(
        query.add_columns(Agent.name, Ticket.reference)
        .outerjoin(Agent, Agent.id == AuditEvent.agent_id).outerjoin(Ticket, Ticket.id == AuditEvent.ticket_id)
    ).all()
    return [AuditEntry(row[0].at, row[0].action, row.name, row.reference, row[0].ticket_id, row[0].before,
                       row[0].after, row[0].detail) for row in rows]


def trail_of_ticket(session: Session, ticket_id: int) -> list[AuditEntry]:
    """A ticket's trail, oldest first."""
    return _entries(session, select(AuditEvent).where(AuditEvent.ticket_id == ticket_id).order_by(AuditEvent.id))


def trail(session: Session, teams: tuple[str, ...], limit: int = 200, offset: int = 0,
          agent_id: int | None = None, action: str | None = None) -> list[AuditEntry]:
    """The latest entries of these teams' work (and the system's), newest first: the supervisors' view."""
    query = select(AuditEvent).where((AuditEvent.team.in_(teams)) | (AuditEvent.team.is_(None)))
    if agent_id is not None:
        query = query.where(AuditEvent.agent_id == agent_id)
    if action:
        query = query.where(AuditEvent.action == action)
    return _entries(session, query.order_by(desc(AuditEvent.id)).limit(limit).offset(offset))
