"""The outbox: mail committed with what caused it (a ticket, an agent's reply) and sent afterwards by a sender.

What is guaranteed, whatever crashes and whichever of several senders runs:

- **A row is claimed one at a time, with a lease that names its sender.** ``claim_next`` moves one due row from
  ``pending`` to ``sending`` (``claimed_by``, ``lease_until``) in its own commit, then the sender sends it and
  records the result. On PostgreSQL the row is picked with ``FOR UPDATE SKIP LOCKED``, and everywhere the claim is
  a conditional UPDATE (``WHERE status = 'pending'``): two senders never claim the same row.
- **A crash leaves at most the one message then in the SMTP transaction in doubt.** Its row stays ``sending``
  until ``release_lapsed`` sees that its claim is over: the lease ran out, or the sender was a process of this
  machine that no longer exists (found at once, so a restarted mailroom does not wait for the lease). The row then
  goes back to ``pending`` with ``doubts`` counted and is **sent again with the same Message-ID**: a forward to the
  other team must never be lost, and a customer who gets an acknowledgement twice (the second with the same
  Message-ID, which mail clients show once) suffers less than one who gets none. Never more than that one message:
  the rest of the outbox is still ``pending``, untouched.
- **Nothing is forgotten silently.** A refusal for good (SMTP 5xx) marks the row ``failed``; a temporary one
  retries it later with a growing delay, ``failed`` after ``MAX_ATTEMPTS``. Each of these, and each claim that
  lapsed, is logged as a warning with the ticket's reference once it matters (``WARN_AFTER_ATTEMPTS``);
  ``problem_rows`` lists them for ``make -s outbox`` and the agent console.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.db.engine import unit_of_work
from core.db.models import MailSuppression, OutboxMail, Ticket, utcnow

logger = logging.getLogger(__name__)

PENDING, SENDING, SENT, FAILED, SUPPRESSED = "pending", "sending", "sent", "failed", "suppressed"
MAX_DELAY = timedelta(hours=1)
MAX_ATTEMPTS = 20
WARN_AFTER_ATTEMPTS = 3
DEFAULT_LEASE = timedelta(minutes=5)


def _process_start_ticks(pid: int) -> str | None:
    """When process ``pid`` started, in clock ticks since boot (``/proc/<pid>/stat``), or None if it does not
    exist: with the pid, it names one process, never a later one that reused the pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the name before ")" may contain spaces


@lru_cache(maxsize=1)
def _this_host() -> str:
    return socket.gethostname()


def sender_identity() -> str:
    """This process as an outbox sender: ``host/pid/start-ticks`` (or ``host/pid`` where /proc is missing)."""
    pid = os.getpid()
    ticks = _process_start_ticks(pid)
    return f"{_this_host()}/{pid}" + (f"/{ticks}" if ticks else "")


def is_gone(owner: str) -> bool:
    """True when ``owner`` (a ``sender_identity``) was a process of this machine that has ended. A sender of
    another machine is never judged from here: its lease decides."""
    host, _, rest = owner.partition("/")
    pid_text, _, ticks = rest.partition("/")
    if host != _this_host() or not pid_text.isdigit() or not ticks:
        return False
    return _process_start_ticks(int(pid_text)) != ticks


@dataclass(frozen=True)
class Claim:
    """A row this sender owns until its lease ends: what to send, and to whom."""

    id: int
    kind: str
    sender: str
    recipient: str
    raw: bytes
    message_id: str
    ticket_reference: str | None
    attempt: int


def queue_mail(session: Session, kind: str, ticket_id: int | None, message_id: str, sender: str, recipient: str,
               raw: str) -> OutboxMail:
    """Add a mail to the outbox in the caller's transaction (sent once that commits)."""
    row: OutboxMail = OutboxMail(kind=kind, ticket_id=ticket_id, message_id=message_id, sender=sender, recipient=recipient,
                     raw=raw, status=PENDING, next_attempt_at=utcnow())
    session.add(row)
    return row


def _changed(session: Session, statement: Any) -> int:
    """Run an UPDATE; how many rows it changed (the conditional updates below tell who won a row by it)."""
    result: Any = session.execute(statement.execution_options(synchronize_session=False))
    return int(result.rowcount)


def _reference(session: Session, ticket_id: int | None) -> str | None:
    if ticket_id is None:
        return None
    return session.execute(select(Ticket.reference).where(Ticket.id == ticket_id)).scalar_one_or_none()


def claim_next(factory: sessionmaker[Session], owner: str, lease: timedelta = DEFAULT_LEASE,
               now: datetime | None = None) -> Claim | None:
    """Claim the next due row for ``owner`` (committed), or None when nothing is due.

    An acknowledgement to an address that hard-bounced is marked ``suppressed`` on the way instead of claimed."""
    while True:
        moment = now or datetime.now(timezone.utc)
        with unit_of_work(factory) as session:
            query = (select(OutboxMail).where(OutboxMail.status == PENDING, OutboxMail.next_attempt_at <= moment)
                     .order_by(OutboxMail.next_attempt_at, OutboxMail.id).limit(1))
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            row = session.execute(query).scalars().first()
            if row is None:
                return None
            recipient = row.recipient.lower()
            suppression = session.execute(
                select(MailSuppression).where(MailSuppression.email == recipient, MailSuppression.until > moment)
            ).scalars().first()
            if suppression is not None and row.kind == "ack":
                values: dict[str, Any] = {"status": SUPPRESSED, "last_error": f"{recipient}: {suppression.reason}"}
            else:
                values = {"status": SENDING, "claimed_by": owner, "lease_until": moment + lease,
                          "attempts": OutboxMail.attempts + 1}
            won = _changed(session, update(OutboxMail).where(OutboxMail.id == row.id, OutboxMail.status == PENDING)
                           .values(**values))
            if won != 1 or values["status"] == SUPPRESSED:
                continue  # another sender took it first, or it was suppressed: look for the next one
            return Claim(id=int(row.id), kind=str(row.kind), sender=str(row.sender), recipient=recipient,
                         raw=str(row.raw).encode("utf-8"), message_id=str(row.message_id),
                         ticket_reference=_reference(session, row.ticket_id), attempt=int(row.attempts) + 1)


def _settle(factory: sessionmaker[Session], claim: Claim, owner: str, values: dict[str, Any]) -> bool:
    """Record the outcome of ``claim`` if the row is still this sender's; False if the claim had lapsed and the
    row was given back meanwhile (then it is left to whoever has it now)."""
    with unit_of_work(factory) as session:
        return bool(_changed(session, update(OutboxMail).where(
            OutboxMail.id == claim.id, OutboxMail.status == SENDING, OutboxMail.claimed_by == owner
        ).values(claimed_by=None, lease_until=None, **values)))


def mark_sent(factory: sessionmaker[Session], claim: Claim, owner: str) -> None:
    """The server accepted the message."""
    if not _settle(factory, claim, owner, {"status": SENT, "sent_at": utcnow(), "last_error": None}):
        # Sent, though our claim had lapsed: record it anyway, so that nobody sends it a third time.
        with unit_of_work(factory) as session:
            _changed(session, update(OutboxMail).where(OutboxMail.id == claim.id, OutboxMail.status != SENT)
                     .values(status=SENT, sent_at=utcnow()))


def mark_failed(factory: sessionmaker[Session], claim: Claim, owner: str, error: str) -> None:
    """The server refused the message for good: never retried (an agent sees it)."""
    _settle(factory, claim, owner, {"status": FAILED, "last_error": error[:2000]})
    logger.warning("outbox %s (%s of ticket %s) to %s refused for good: %s", claim.id, claim.kind,
                   claim.ticket_reference or "-", claim.recipient, error)


def retry_delay(attempts: int) -> timedelta:
    """30 s after the first failure, doubling, at most an hour."""
    return min(timedelta(seconds=30 * 2 ** max(attempts - 1, 0)), MAX_DELAY)


def mark_for_retry(factory: sessionmaker[Session], claim: Claim, owner: str, error: str) -> None:
    """The server could not take the message now: try again later, ``failed`` after ``MAX_ATTEMPTS``."""
    final = claim.attempt >= MAX_ATTEMPTS
    _settle(factory, claim, owner, {
        "status": FAILED if final else PENDING, "last_error": error[:2000],
        "next_attempt_at": utcnow() + retry_delay(claim.attempt),
    })
    if final or claim.attempt >= WARN_AFTER_ATTEMPTS:
        logger.warning("outbox %s (%s of ticket %s) to %s: attempt %d failed%s: %s", claim.id, claim.kind,
                       claim.ticket_reference or "-", claim.recipient, claim.attempt,
                       ", given up" if final else ", will be retried", error)
    else:
        logger.info("outbox %s to %s will be retried: %s", claim.id, claim.recipient, error)


def give_back(factory: sessionmaker[Session], claim: Claim, owner: str, why: str) -> None:
    """Return a claim that its sender cannot finish (an unexpected error mid-send): pending again at once,
    counted as in doubt, since the message may have gone out."""
    _settle(factory, claim, owner, {"status": PENDING, "doubts": OutboxMail.doubts + 1, "next_attempt_at": utcnow(),
                                    "last_error": f"in doubt: {why}"[:2000]})
    logger.warning("outbox %s (%s of ticket %s) to %s given back in doubt: %s", claim.id, claim.kind,
                   claim.ticket_reference or "-", claim.recipient, why)


def release_lapsed(factory: sessionmaker[Session], now: datetime | None = None) -> int:
    """Give back to ``pending`` every row whose claim is over (lease run out, or its sender was a process of this
    machine that has ended): it may or may not have been sent, and is sent again. Returns how many."""
    moment = now or datetime.now(timezone.utc)
    released = 0
    with unit_of_work(factory) as session:
        rows = session.execute(select(OutboxMail.id, OutboxMail.claimed_by, OutboxMail.lease_until,
                                      OutboxMail.kind, OutboxMail.recipient, OutboxMail.ticket_id)
                               .where(OutboxMail.status == SENDING)).all()
        for row in rows:
            lease_until = _aware(row.lease_until)
            lapsed = lease_until is None or lease_until <= moment
            if not lapsed and not is_gone(row.claimed_by or ""):
                continue
            won = _changed(session, update(OutboxMail).where(
                OutboxMail.id == row.id, OutboxMail.status == SENDING,
                or_(OutboxMail.claimed_by == row.claimed_by, OutboxMail.claimed_by.is_(None)),
            ).values(
                status=PENDING, claimed_by=None, lease_until=None, doubts=OutboxMail.doubts + 1, next_attempt_at=utcnow(),
                last_error=f"in doubt: {row.claimed_by or 'a sender'} stopped during the SMTP transaction; "
                           "sent again with the same Message-ID",
            ))
            if won:
                released += 1
                logger.warning("outbox %s (%s of ticket %s) to %s was in doubt (its sender %s stopped mid-send): "
                               "sending it again with the same Message-ID", row.id, row.kind,
                               _reference(session, row.ticket_id) or "-", row.recipient, row.claimed_by)
    return released


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite gives datetimes back without their zone; they were written in UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment


def _isoformat(moment: Any) -> str | None:
    aware = _aware(moment)
    return aware.isoformat() if aware is not None else None


def retry_now(session: Session, row_id: int) -> bool:
    """Put a failed or suppressed row back in the queue at once (an agent's decision). False if it is not one."""
    return bool(_changed(session, update(OutboxMail).where(
        OutboxMail.id == row_id, OutboxMail.status.in_((FAILED, SUPPRESSED))
    ).values(status=PENDING, next_attempt_at=utcnow(), attempts=0)))


def state_of(row: OutboxMail, now: datetime) -> str:
    """What an operator needs to know of a row: pending, sending, in doubt (sending, but its claim is over, or
    pending again after one that was), failed, suppressed or sent."""
    if row.status == SENDING:
        lease_until: datetime | None = _aware(row.lease_until)  # type: ignore[arg-type]
        if lease_until is None or lease_until <= now or is_gone(str(row.claimed_by or "")):
            return "in doubt"
        return SENDING
    if row.status == PENDING and row.doubts:
        return "in doubt"
    return str(row.status)


PROBLEM_STATUSES = (PENDING, SENDING, FAILED, SUPPRESSED)


def problem_rows(session: Session, limit: int = 200, include_sent: bool = False) -> list[dict[str, Any]]:
    """The rows not (yet) sent, oldest first, as plain values: what ``make -s outbox`` and the console list."""
    now = datetime.now(timezone.utc)
    query = (select(OutboxMail, Ticket.reference).outerjoin(Ticket, Ticket.id == OutboxMail.ticket_id)
             .order_by(OutboxMail.id).limit(limit))
    if not include_sent:
        query = query.where(OutboxMail.status.in_(PROBLEM_STATUSES))
    rows = []
    for row, reference in session.execute(query).all():
        rows.append({
            "id": int(row.id), "state": state_of(row, now), "status": row.status, "kind": row.kind,
            "ticket": reference, "recipient": row.recipient, "message_id": row.message_id,
            "attempts": int(row.attempts), "doubts": int(row.doubts or 0),
            "next_attempt_at": _isoformat(row.next_attempt_at),
            "claimed_by": row.claimed_by, "last_error": row.last_error,
            "created_at": _isoformat(row.created_at),
        })
    return rows
