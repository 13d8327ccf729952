"""The effects of a triaged mail, in the caller's transaction: the ticket (or the existing one it joins), its
message and attachments, the mail to send (outbox), and the record that the source message was handled.

Nothing here talks to a mail server. The caller commits, then flags or moves the message on the server: a crash
before the commit loses nothing (the message is still there, unflagged), a crash after it creates nothing twice
(the ``inbound_mail`` row is found on the next pass).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import desc, select
from sqlalchemy.orm import Session

from core.db.models import (
    InboundMail,
    MailSuppression,
    Ticket,
    TicketAttachment,
    TicketMessage,
    new_reference,
    utcnow,
)
from core.outbox import queue_mail
from mailroom.compose import Outgoing, acknowledgement, forward
from mailroom.context import TriageContext
from mailroom.mail import BOUNCE, Mail

TICKET_PREFIX = "BL"


@dataclass(frozen=True)
class SourceKey:
    """Where a message came from: mailbox, UIDVALIDITY and UID (a Maildir file gets a stable pseudo-UID)."""

    mailbox: str
    uidvalidity: int
    uid: int


def is_handled(session: Session, key: SourceKey) -> bool:
    """True when the message at ``key`` has its record (committed by this process or, concurrently, another)."""
    return session.execute(
        select(InboundMail.id).where(InboundMail.mailbox == key.mailbox, InboundMail.uidvalidity == key.uidvalidity,
                                     InboundMail.uid == key.uid)
    ).first() is not None


def handled_keys(session: Session, keys: Sequence[SourceKey]) -> set[SourceKey]:
    """Which of ``keys`` were handled before (a restart after a crash between commit and flag): one query per
    mailbox and UIDVALIDITY among them."""
    groups: dict[tuple[str, int], list[int]] = {}
    for key in keys:
        groups.setdefault((key.mailbox, key.uidvalidity), []).append(key.uid)
    found: set[SourceKey] = set()
    for (mailbox, uidvalidity), uids in groups.items():
        rows = session.execute(
            select(InboundMail.uid).where(InboundMail.mailbox == mailbox, InboundMail.uidvalidity == uidvalidity,
                                          InboundMail.uid.in_(uids))
        ).scalars()
        found.update(SourceKey(mailbox, uidvalidity, int(uid)) for uid in rows)
    return found


def _add_message(session: Session, ticket_id: int, mail: Mail) -> None:
    message = TicketMessage(
        ticket_id=ticket_id, direction="in", message_id=mail.message_id, in_reply_to=mail.in_reply_to,
        from_address=mail.from_address or "", to_addresses=", ".join(mail.recipients)[:4000],
        subject=mail.subject[:500], text=mail.body, quoted=mail.quoted, language=mail.language,
        automated=mail.automated, size=mail.size, attachments_dropped=mail.attachments_dropped,
    )
    session.add(message)
    if mail.attachments:
        session.flush()  # the attachments need the message's id
    for attachment in mail.attachments:
        session.add(TicketAttachment(message_id=message.id, filename=(attachment.filename or "")[:300] or None,
                                     content_type=attachment.content_type[:200], size=attachment.size))


def _queue_mail(session: Session, kind: str, ticket_id: int, mail: Outgoing) -> None:
    queue_mail(session, kind, ticket_id, mail.message_id, mail.sender, mail.recipient, mail.raw)


def record(mail: Mail, context: TriageContext, key: SourceKey) -> InboundMail:
    """Store what ``mail`` means, in ``context.session``; returns the inbound record (not committed). The caller
    tells ``context.view`` (``note_recorded``) once the rows are safely written."""
    session, view = context.session, context.view
    assert session is not None and view is not None, "record() needs the store and its view"
    duplicate = view.seen.get(mail.message_id or "")
    if duplicate is not None:
        return _inbound(session, key, mail, "duplicate", duplicate.ticket_id,
                        f"same Message-ID as {duplicate.mailbox} UID {duplicate.uid}")
    if not mail.needs_ticket:
        return _record_automated(mail, context, key)
    if mail.ticket_id is not None:
        ticket = session.get(Ticket, mail.ticket_id)
        assert ticket is not None
        _add_message(session, ticket.id, mail)
        ticket.updated_at = utcnow()
        if ticket.status == "closed":
            ticket.status = "open"
        return _inbound(session, key, mail, "threaded", ticket.id, f"joined {ticket.reference}")
    confident = mail.misroute in ("to_us", "to_ca")
    ticket = Ticket(
        reference=new_reference(TICKET_PREFIX), team=mail.right_team, mailbox=key.mailbox, queue=mail.queue,
        priority=mail.priority, language=mail.language, status="forwarded" if confident else "open",
        subject=(mail.subject or "(no subject)")[:500], customer_email=(mail.reply_to or mail.from_address or "")[:320],
        customer_name=(mail.from_name or None), account_id=mail.account_id, topic=mail.topic,
        misroute=mail.misroute, misroute_confidence=mail.misroute_confidence,
        misroute_reasons=[r for r in mail.reasons if r.startswith("misroute")],
    )
    session.add(ticket)
    session.flush()
    mail.ticket_id, mail.ticket_reference = int(ticket.id), str(ticket.reference)
    _add_message(session, ticket.id, mail)
    if confident:
        _queue_mail(session, "forward", ticket.id, forward(mail, ticket, context, ticket.misroute_reasons))
    if mail.acknowledge:
        _queue_mail(session, "ack", ticket.id, acknowledgement(mail, ticket, context))
    return _inbound(session, key, mail, "ticket", ticket.id, f"ticket {ticket.reference}")


def _record_automated(mail: Mail, context: TriageContext, key: SourceKey) -> InboundMail:
    session = context.session
    assert session is not None
    if mail.automated == BOUNCE and mail.ticket_id is not None:
        _add_message(session, mail.ticket_id, mail)
        if mail.hard_bounce and mail.bounced_recipient:
            recipient = mail.bounced_recipient.lower()
            until = context.now + timedelta(days=context.settings.bounce_suppression_days)
            existing = session.get(MailSuppression, recipient)
            if existing is None:
                session.add(MailSuppression(email=recipient, reason="hard bounce", until=until))
            else:
                existing.until, existing.reason = until, "hard bounce"
        return _inbound(session, key, mail, "bounce", mail.ticket_id, "bounce joined its ticket")
    outcome = "own_mail" if mail.own_mail else (mail.automated or "automated")
    return _inbound(session, key, mail, outcome, None, "; ".join(mail.reasons[:3]))


def _inbound(session: Session, key: SourceKey, mail: Mail, outcome: str, ticket_id: int | None,
             reason: str) -> InboundMail:
    return _handled(session, key, mail.message_id, outcome, ticket_id, reason)


def record_quarantine(session: Session, key: SourceKey, message_id: str | None, reason: str) -> InboundMail:
    """A message that could not be handled: recorded with its reason; the message itself stays on the server."""
    return _handled(session, key, message_id, "quarantined", None, reason)


def _handled(session: Session, key: SourceKey, message_id: str | None, outcome: str, ticket_id: int | None,
             reason: str) -> InboundMail:
    """The record that the message at ``key`` was handled, and how."""
    row: InboundMail = InboundMail(mailbox=key.mailbox, uidvalidity=key.uidvalidity, uid=key.uid,
                                   message_id=message_id, outcome=outcome, reason=reason[:2000], ticket_id=ticket_id)
    session.add(row)
    return row


def latest_tickets(session: Session, limit: int = 20) -> list[dict[str, Any]]:
    """The latest tickets, newest first, as plain rows (for the CLI)."""
    rows = session.execute(select(Ticket).order_by(desc(Ticket.id)).limit(limit)).scalars()
    return [
        {"reference": t.reference, "created": t.created_at.strftime("%Y-%m-%d %H:%M") if t.created_at else "",
         "team": t.team, "queue": t.queue, "priority": t.priority, "language": t.language, "status": t.status,
         "misroute": t.misroute, "customer": t.customer_email, "subject": t.subject}
        for t in rows
    ]
