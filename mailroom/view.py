"""What the deciding stages need from the store, for a whole batch of mail at once.

Threading, the sender's account, acknowledgement rate limits and suppressions, and Message-IDs seen before are
read in a handful of queries per batch (``StoreView.load``) instead of several per mail; as the batch is recorded,
``note_*`` keeps the view current, so a later mail of the same batch sees what an earlier one did (its ticket,
its acknowledgement counted against the sender's limit, its Message-ID). The view lives for one transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from core.db.models import (
    Account,
    BillingContact,
    InboundMail,
    MailSuppression,
    OutboxMail,
    PortalUser,
    Ticket,
    TicketMessage,
)
from core.settings import Settings
from core.references import ticket_reference_in
from mailroom.mail import Mail

ACK = "ack"
# SQL "IN" lists stay well below every database's parameter limit.
CHUNK = 500


@dataclass(frozen=True)
class AccountLink:
    """A billing account a sender belongs to."""

    id: int
    region: str
    number: str


@dataclass(frozen=True)
class TicketLink:
    """A ticket a mail can join."""

    id: int
    reference: str


@dataclass(frozen=True)
class SeenMail:
    """An earlier inbound mail with the same Message-ID."""

    mailbox: str
    uid: int
    ticket_id: int | None


@dataclass
class StoreView:
    """The store as the deciding stages of one batch see it."""

    now: datetime
    accounts: dict[str, AccountLink] = field(default_factory=dict)
    tickets_by_message_id: dict[str, TicketLink] = field(default_factory=dict)
    tickets_by_reference: dict[str, TicketLink] = field(default_factory=dict)
    seen: dict[str, SeenMail] = field(default_factory=dict)
    suppressed: dict[str, str] = field(default_factory=dict)
    acks_last_hour: Counter[str] = field(default_factory=Counter)
    acks_last_day: Counter[str] = field(default_factory=Counter)
    acks_all_last_hour: int = 0

    @classmethod
    def load(cls, session: Session, mails: Sequence[Mail], now: datetime) -> StoreView:
        """Read what ``mails`` may need: their senders' accounts, suppressions and recent acknowledgements, the
        tickets their references point to, and earlier mail with their Message-IDs."""
        view = cls(now)
        senders = {m.from_address.lower() for m in mails if m.from_address}
        recipients = {(m.reply_to or m.from_address).lower() for m in mails if m.reply_to or m.from_address}
        message_ids = {m.message_id for m in mails if m.message_id}
        referenced = {i for m in mails for i in (m.bounce_of, m.in_reply_to, *m.references) if i}
        references = {reference for m in mails if (reference := ticket_reference_in(m.subject))}
        view._load_accounts(session, senders)
        view._load_tickets(session, referenced, references)
        view._load_seen(session, message_ids)
        view._load_acknowledgements(session, recipients)
        return view

    def _load_accounts(self, session: Session, senders: set[str]) -> None:
        # Portal users first: when an address is both, its own login's account wins.
        for model in (BillingContact, PortalUser):
            for part in _chunks(senders):
                rows = session.execute(
                    select(model.email, Account.id, Account.region, Account.number)
                    .join(Account, Account.id == model.account_id).where(model.email.in_(part))
                )
                for email, account_id, region, number in rows:
                    self.accounts[str(email).lower()] = AccountLink(int(account_id), str(region), str(number))

    def _load_tickets(self, session: Session, referenced: set[str], references: set[str]) -> None:
        for model in (TicketMessage, OutboxMail):  # mail we sent wins over a customer's message with the same ID
            for part in _chunks(referenced):
                rows = session.execute(
                    select(model.message_id, Ticket.id, Ticket.reference)
                    .join(Ticket, Ticket.id == model.ticket_id).where(model.message_id.in_(part))
                )
                for message_id, ticket_id, reference in rows:
                    self.tickets_by_message_id[str(message_id)] = TicketLink(int(ticket_id), str(reference))
        for part in _chunks(references):
            for ticket_id, reference in session.execute(select(Ticket.id, Ticket.reference).where(Ticket.reference.in_(part))):
                self.tickets_by_reference[str(reference)] = TicketLink(int(ticket_id), str(reference))

    def _load_seen(self, session: Session, message_ids: set[str]) -> None:
        for part in _chunks(message_ids):
            rows = session.execute(
                select(InboundMail.message_id, InboundMail.mailbox, InboundMail.uid, InboundMail.ticket_id)
                .where(InboundMail.message_id.in_(part), InboundMail.outcome != "quarantined")
                .order_by(InboundMail.id.desc())
            )
            for message_id, mailbox, uid, ticket_id in rows:
                self.seen[str(message_id)] = SeenMail(str(mailbox), int(uid), int(ticket_id) if ticket_id else None)

    def _load_acknowledgements(self, session: Session, recipients: set[str]) -> None:
        hour_ago, day_ago = self.now - timedelta(hours=1), self.now - timedelta(days=1)
        for part in _chunks(recipients):
            for email, reason in session.execute(
                select(MailSuppression.email, MailSuppression.reason)
                .where(MailSuppression.email.in_(part), MailSuppression.until > self.now)
            ):
                self.suppressed[str(email)] = str(reason)
            last_hour = func.sum(case((OutboxMail.created_at > hour_ago, 1), else_=0))
            for recipient, day_count, hour_count in session.execute(
                select(OutboxMail.recipient, func.count(), last_hour)
                .where(OutboxMail.kind == ACK, OutboxMail.recipient.in_(part), OutboxMail.created_at > day_ago)
                .group_by(OutboxMail.recipient)
            ):
                self.acks_last_day[str(recipient)] = int(day_count)
                self.acks_last_hour[str(recipient)] = int(hour_count or 0)
        self.acks_all_last_hour = session.execute(
            select(func.count()).select_from(OutboxMail).where(OutboxMail.kind == ACK, OutboxMail.created_at > hour_ago)
        ).scalar_one()

    def note_recorded(self, mail: Mail, outcome: str, mailbox: str, uid: int) -> None:
        """What a mail of the batch left in the store once its rows are written: its Message-ID, the ticket it
        opened or joined, the acknowledgement it queued, the address its bounce suppressed."""
        if mail.message_id and outcome != "quarantined":
            self.seen.setdefault(mail.message_id, SeenMail(mailbox, uid, mail.ticket_id))
        if mail.ticket_id is not None and mail.ticket_reference is not None and outcome in ("ticket", "threaded"):
            ticket = TicketLink(mail.ticket_id, mail.ticket_reference)
            self.tickets_by_reference[ticket.reference] = ticket
            if mail.message_id:
                self.tickets_by_message_id[mail.message_id] = ticket
        if outcome == "ticket" and mail.acknowledge:
            recipient = (mail.reply_to or mail.from_address).lower()
            self.acks_last_hour[recipient] += 1
            self.acks_last_day[recipient] += 1
            self.acks_all_last_hour += 1
        if outcome == "bounce" and mail.hard_bounce and mail.bounced_recipient:
            self.suppressed[mail.bounced_recipient.lower()] = "hard bounce"

    def rate_limit(self, recipient: str, settings: Settings) -> str | None:
        """Which acknowledgement limit ``recipient`` has reached, in words, or None."""
        for count, limit, scope in (
            (self.acks_last_hour[recipient], settings.ack_per_sender_hour, f"to {recipient} per hour"),
            (self.acks_last_day[recipient], settings.ack_per_sender_day, f"to {recipient} per day"),
            (self.acks_all_last_hour, settings.ack_global_hour, "in all per hour"),
        ):
            if count >= limit:
                return f"rate limit of {limit} {scope} reached"
        return None


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    ordered = sorted(values)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]

