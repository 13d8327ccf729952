"""The effects of a triaged mail, in the caller's transaction: the ticket (or the existing one it joins), its
message and attachments, the mail to send (outbox), and the record that the source message was handled.

Nothing here talks to a mail server. The caller commits, then flags or moves the message on the server: a crash
before the commit loses nothing (the message is still there, unflagged), a crash after it creates nothing twice
(the ``inbound_mail`` row is found on the next pass).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.db.models import (
    InboundMail,
    MailSuppression,
    Ticket,
    TicketAttachment,
    TicketMessage,
    priority_rank,
    utcnow,
)
from core.activity import publish
from core.outbox import queue_mail
from core.references import TICKET_PREFIX, flush_with_reference
from core.compose import Outgoing
from mailroom.compose import acknowledgement, forward
from mailroom.context import TriageContext
from mailroom.mail import BOUNCE, Mail, SourceKey



def is_handled(session: Session, key: SourceKey) -> bool:
    """True when the message at ``key`` has its record (committed by this process or, concurrently, another)."""
    return session.execute(
        select(InboundMail.id).where(InboundMail.mailbox == key.mailbox, InboundMail.uidvalidity == key.uidvalidity,
                                     InboundMail.uid == key.uid)
    ).first() is not None


def reprocess_requests(session: Session, mailbox: str) -> list[SourceKey]:
    """The quarantined messages of ``mailbox`` that a person asked to be read again."""
    rows = session.execute(select(InboundMail.mailbox, InboundMail.uidvalidity, InboundMail.uid)
                           .where(InboundMail.mailbox == mailbox, InboundMail.outcome == "reprocess")).all()
    return [SourceKey(str(r.mailbox), int(r.uidvalidity), int(r.uid)) for r in rows]


def forget(session: Session, key: SourceKey) -> None:
    """Drop the record of the message at ``key`` (to be read again, as if new)."""
    session.execute(delete(InboundMail).where(InboundMail.mailbox == key.mailbox,
                                              InboundMail.uidvalidity == key.uidvalidity, InboundMail.uid == key.uid))


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


def _queue_mail(session: Session, kind: str, ticket: Any, mail: Outgoing, language: str) -> None:
    """Queue ``mail`` for sending, and show it in the ticket's thread."""
    queue_mail(session, kind, ticket.id, mail.message_id, mail.sender, mail.recipient, mail.raw)
    session.add(TicketMessage(
        ticket_id=ticket.id, direction="out", kind=kind, message_id=mail.message_id, from_address=mail.sender,
        to_addresses=mail.recipient, subject="", text=mail.text, language=language,
    ))


def record(mail: Mail, context: TriageContext, key: SourceKey) -> InboundMail:
    """Store what ``mail`` means, in ``context.session``; returns the inbound record (not committed). The caller
    tells ``context.view`` (``note_recorded``) once the rows are safely written."""
    session, view = context.session, context.view
    assert session is not None and view is not None, "record() needs the store and its view"
    duplicate = view.seen.get(mail.message_id or "")
    if duplicate is not None:
        return _handled(session, key, mail, "duplicate", duplicate.ticket_id,
                        f"same Message-ID as {duplicate.mailbox} UID {duplicate.uid}")
    if not mail.needs_ticket:
        return _record_automated(mail, context, key)
    if mail.ticket_id is not None:
        ticket = _surviving(session, mail.ticket_id)
        _add_message(session, ticket.id, mail)
        ticket.updated_at = utcnow()
        reopened = ticket.status in REOPENED_BY_REPLY
        if reopened:
            ticket.status = "open"
        publish(session, "ticket.message", ticket.team, ticket.id, reopened=reopened, reference=ticket.reference)
        return _handled(session, key, mail, "threaded", ticket.id, f"joined {ticket.reference}")
    confident = mail.misroute in ("to_us", "to_ca")
    ticket = flush_with_reference(session, TICKET_PREFIX, lambda reference: Ticket(
        reference=reference, team=mail.right_team, mailbox=key.mailbox, queue=mail.queue,
        priority=mail.priority, priority_rank=priority_rank(mail.priority), language=mail.language, status="new",
        subject=(mail.subject or "(no subject)")[:500], customer_email=(mail.reply_to or mail.from_address or "")[:320],
        customer_name=(mail.sender.person or mail.from_name or None), customer_company=mail.sender.company,
        account_id=mail.account_id, topic=mail.topic,
        misroute=mail.misroute, misroute_confidence=mail.misroute_confidence,
        misroute_reasons=[r for r in mail.reasons if r.startswith("misroute")],
    ))
    mail.ticket_id, mail.ticket_reference = int(ticket.id), str(ticket.reference)
    _add_message(session, ticket.id, mail)
    if confident:
        _queue_mail(session, "forward", ticket, forward(mail, ticket, context, ticket.misroute_reasons), mail.language)
    if mail.acknowledge:
        _queue_mail(session, "ack", ticket, acknowledgement(mail, ticket, context), mail.language)
    publish(session, "ticket.created", ticket.team, ticket.id, reference=ticket.reference)
    return _handled(session, key, mail, "ticket", ticket.id, f"ticket {ticket.reference}")


# A customer who writes again about a ticket that waits on them, or that was solved or closed, reopens it.
REOPENED_BY_REPLY = ("waiting", "solved", "closed")


def _surviving(session: Session, ticket_id: int) -> Any:
    """The ticket (a ``Ticket``) a mail joins: ``ticket_id``'s, or the one it was merged into (and so on)."""
    ticket = session.get(Ticket, ticket_id)
    assert ticket is not None, f"ticket {ticket_id} is in the store's view but not in the store"
    for _ in range(10):  # merges cannot form a loop (a ticket is merged once), but never follow one forever
        if ticket.merged_into_id is None:
            break
        target = session.get(Ticket, ticket.merged_into_id)
        if target is None:
            break
        ticket = target
    return ticket


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
        return _handled(session, key, mail, "bounce", mail.ticket_id, "bounce joined its ticket")
    outcome = "own_mail" if mail.own_mail else (mail.automated or "automated")
    return _handled(session, key, mail, outcome, None, "; ".join(mail.reasons[:3]))


def record_quarantine(session: Session, key: SourceKey, mail: Mail, reason: str) -> InboundMail:
    """A message that could not be handled: recorded with its reason; the message itself stays on the server."""
    return _handled(session, key, mail, "quarantined", None, reason)


def _handled(session: Session, key: SourceKey, mail: Mail, outcome: str, ticket_id: int | None,
             reason: str) -> InboundMail:
    """The record that the message at ``key`` was handled, and how."""
    row: InboundMail = InboundMail(mailbox=key.mailbox, uidvalidity=key.uidvalidity, uid=key.uid, team=mail.team,
                                   message_id=mail.message_id, outcome=outcome, reason=reason[:2000],
                                   ticket_id=ticket_id)
    session.add(row)
    return row
