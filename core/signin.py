"""Signing agents in: throttled guesses, sessions the server can end.

**Throttle.** Failed sign-ins are counted per account and per client address. From ``ACCOUNT_FREE`` failures of
an account (``ADDRESS_FREE`` of an address: an office may share one) each failure locks it, for a time that
doubles every ``DOUBLING`` failures, from ``FIRST_LOCK`` to ``LONGEST_LOCK``. While locked, no password is
checked (the right one is refused too, and the refusal says for how long) and every attempt counts as a failure:
guessing on keeps it locked longer. A success clears the account's count (not the address's: a guesser who knows
one password must not reset their count for the others).

**Sessions.** The browser holds a random token (in the console's signed cookie); the store keeps its SHA-256
(``agent_sessions``), so a stolen copy of the store opens no session. A session ends at logout, when the agent
changes their password (all of theirs), after ``IDLE`` without a request or ``LONGEST`` in all. A new token is
drawn at every sign-in: a token planted before sign-in is worth nothing after it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.db.models import Agent, AgentSession, LoginThrottle, normalize_email, utcnow

ACCOUNT_FREE = 5
ADDRESS_FREE = 10
DOUBLING = 5
FIRST_LOCK = timedelta(minutes=1)
LONGEST_LOCK = timedelta(hours=1)
IDLE = timedelta(hours=2)
LONGEST = timedelta(hours=12)
SEEN_EVERY = timedelta(minutes=1)  # how often a session's last request is written down


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)  # SQLite returns what it was given, without the zone
    return moment


def _keys(email: str, address: str | None) -> list[tuple[str, int]]:
    keys = [(f"account:{normalize_email(email)[:380]}", ACCOUNT_FREE)]
    if address:
        keys.append((f"address:{address[:380]}", ADDRESS_FREE))
    return keys


def locked_for(session: Session, email: str, address: str | None, now: datetime | None = None) -> timedelta | None:
    """How long the account or the address stays locked (the longer of the two), or None."""
    moment = now or datetime.now(timezone.utc)
    longest: timedelta | None = None
    for key, _ in _keys(email, address):
        row = session.get(LoginThrottle, key)
        until = _aware(row.locked_until) if row is not None else None
        if until is not None and until > moment and (longest is None or until - moment > longest):
            longest = until - moment
    return longest


def lock_length(failures: int, free: int) -> timedelta | None:
    """The lock after ``failures`` failures in a row, when ``free`` are allowed: None below, then doubling."""
    if failures < free:
        return None
    lock: timedelta = min(FIRST_LOCK * 2 ** ((failures - free) // DOUBLING), LONGEST_LOCK)
    return lock


def record_failure(session: Session, email: str, address: str | None, now: datetime | None = None) -> None:
    """Count a failed sign-in against the account and the address, locking them when it is time."""
    moment = now or datetime.now(timezone.utc)
    for key, free in _keys(email, address):
        row = session.get(LoginThrottle, key)
        if row is None:
            row = LoginThrottle(key=key, failures=0)
            session.add(row)
        row.failures = int(row.failures or 0) + 1
        row.last_failure_at = moment
        lock = lock_length(int(row.failures), free)
        if lock is not None:
            row.locked_until = moment + lock


def record_success(session: Session, email: str) -> None:
    """A right password: the account's count starts again."""
    row = session.get(LoginThrottle, f"account:{normalize_email(email)[:380]}")
    if row is not None:
        session.delete(row)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NewSession:
    """A session just opened: the token for the browser (never stored as such)."""

    token: str
    expires_at: datetime


def open_session(session: Session, agent: Any, address: str | None, user_agent: str | None,
                 now: datetime | None = None) -> NewSession:
    """Open a session for ``agent`` (signed in just now) and return its token."""
    moment = now or datetime.now(timezone.utc)
    token = secrets.token_urlsafe(32)
    expires = moment + LONGEST
    session.add(AgentSession(id=_digest(token), agent_id=agent.id, created_at=moment, last_seen_at=moment,
                             expires_at=expires, address=(address or "")[:64] or None,
                             user_agent=(user_agent or "")[:300] or None))
    agent.last_login_at = moment
    return NewSession(token, expires)


def agent_of_session(session: Session, token: str | None, now: datetime | None = None) -> Any:
    """The active agent whose live session ``token`` is, or None (ended, expired, idle too long, unknown);
    notes the request so that an active session does not go idle."""
    if not token or len(token) > 200:
        return None
    moment = now or datetime.now(timezone.utc)
    row = session.execute(select(AgentSession, Agent).join(Agent, Agent.id == AgentSession.agent_id)
                          .where(AgentSession.id == _digest(token))).first()
    if row is None:
        return None
    record, agent = row.AgentSession, row.Agent
    last_seen, expires = _aware(record.last_seen_at), _aware(record.expires_at)
    if record.ended_at is not None or not agent.active or expires is None or expires <= moment \
            or last_seen is None or moment - last_seen > IDLE:
        return None
    if moment - last_seen > SEEN_EVERY:
        record.last_seen_at = moment
    return agent


def end_session(session: Session, token: str | None) -> None:
    """Log out: the session is over, whatever the browser keeps."""
    if token:
        session.execute(update(AgentSession).where(AgentSession.id == _digest(token), AgentSession.ended_at.is_(None))
                        .values(ended_at=utcnow()).execution_options(synchronize_session=False))


def end_all_sessions(session: Session, agent_id: int, keep: str | None = None) -> None:
    """End every session of an agent (a password change), but ``keep`` (the one that changed it)."""
    query = update(AgentSession).where(AgentSession.agent_id == agent_id, AgentSession.ended_at.is_(None))
    if keep:
        query = query.where(AgentSession.id != _digest(keep))
    session.execute(query.values(ended_at=utcnow()).execution_options(synchronize_session=False))


def signed_in_agents(session: Session, team: str, now: datetime | None = None) -> list[Any]:
    """The active agents of ``team`` with a live session (seen within ``IDLE``)."""
    moment = now or datetime.now(timezone.utc)
    rows = session.execute(select(Agent).join(AgentSession, AgentSession.agent_id == Agent.id)
                           .where(AgentSession.ended_at.is_(None), AgentSession.expires_at > moment,
                                  AgentSession.last_seen_at > moment - IDLE, Agent.active.is_(True))
                           .distinct()).scalars()
    return [agent for agent in rows if team in str(agent.teams).split(",")]
