"""SQLAlchemy models of the shared store (the chat side's tables; later issues add billing and mail)."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlalchemy.orm.decl_api import DeclarativeMeta

from core.db.types import Money

mapper_registry = registry()


class Base(metaclass=DeclarativeMeta):
    """Declarative base of every model of the shared store (the typed SQLAlchemy 1.4 form)."""

    __abstract__ = True
    registry = mapper_registry
    metadata = mapper_registry.metadata
    __init__ = mapper_registry.constructor

# Unambiguous characters for reference numbers customers read aloud or type (no 0/O, 1/I/L).
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def utcnow() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(timezone.utc)


def new_reference(prefix: str, length: int = 6) -> str:
    """A random reference such as ``HO-7K3Q9D``; unique constraints catch the rare collision."""
    return f"{prefix}-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(length))


class HandoffRequest(Base):
    """A customer's request for a human agent, recorded for an agent to follow up."""

    __tablename__ = "handoff_requests"

    id = sa.Column(sa.Integer, primary_key=True)
    reference = sa.Column(sa.String(16), nullable=False, unique=True)
    conversation_id = sa.Column(sa.String(255), nullable=False, index=True)
    channel = sa.Column(sa.String(32), nullable=False, default="chat")
    language = sa.Column(sa.String(2), nullable=False)
    reason = sa.Column(sa.String(40), nullable=False)
    contact_email = sa.Column(sa.String(320))
    last_message = sa.Column(sa.Text)
    status = sa.Column(sa.String(16), nullable=False, default="open")
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)


class Feedback(Base):
    """A customer's answer to "Was this helpful?" after an FAQ answer."""

    __tablename__ = "feedback"

    id = sa.Column(sa.Integer, primary_key=True)
    conversation_id = sa.Column(sa.String(255), nullable=False, index=True)
    article_id = sa.Column(sa.String(64), nullable=False, index=True)
    language = sa.Column(sa.String(2), nullable=False)
    helpful = sa.Column(sa.Boolean, nullable=False)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)


# --- The billing store: accounts and what the Billing Portal shows of them. ------------------------------------
MONEY = Money()


class Account(Base):
    """A customer's billing account.

    ``region`` is the team that serves it ("CA": billing@net2phone.ca, "US": billing@net2phone.com);
    ``language`` is the account-level language of invoices and notifications.
    """

    __tablename__ = "accounts"

    id = sa.Column(sa.Integer, primary_key=True)
    number = sa.Column(sa.String(20), nullable=False, unique=True)
    name = sa.Column(sa.String(200), nullable=False)
    region = sa.Column(sa.String(2), nullable=False)
    language = sa.Column(sa.String(2), nullable=False)
    autopay = sa.Column(sa.Boolean, nullable=False, default=False)
    bill_to_name = sa.Column(sa.String(200), nullable=False)
    street = sa.Column(sa.String(200), nullable=False)
    city = sa.Column(sa.String(100), nullable=False)
    province = sa.Column(sa.String(2), nullable=False)
    postal_code = sa.Column(sa.String(12), nullable=False)
    time_zone = sa.Column(sa.String(40), nullable=False)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)


class BillingContact(Base):
    """An address on the account's billing emails (Edit Profile > Email); ``notifications`` if it gets them."""

    __tablename__ = "billing_contacts"
    __table_args__ = (sa.UniqueConstraint("account_id", "email"),)

    id = sa.Column(sa.Integer, primary_key=True)
    account_id = sa.Column(sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True)
    email = sa.Column(sa.String(320), nullable=False, index=True)
    name = sa.Column(sa.String(200))
    notifications = sa.Column(sa.Boolean, nullable=False, default=True)

class PortalUser(Base):
    """A Billing Portal login. ``role``: office_manager, admin or regular; ``language``: the user-level UI language."""

    __tablename__ = "portal_users"

    id = sa.Column(sa.Integer, primary_key=True)
    account_id = sa.Column(sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True)
    email = sa.Column(sa.String(320), nullable=False, unique=True)
    name = sa.Column(sa.String(200), nullable=False)
    role = sa.Column(sa.String(20), nullable=False)
    language = sa.Column(sa.String(2), nullable=False)
    active = sa.Column(sa.Boolean, nullable=False, default=True)

class Invoice(Base):
    """A monthly invoice. Taxes are stored apart (GST, HST, QST, PST); ``total`` includes them and any credits
    shown on it. ``status``: "paid" or "unpaid" (past due is derived from the due date)."""

    __tablename__ = "invoices"

    id = sa.Column(sa.Integer, primary_key=True)
    account_id = sa.Column(sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True)
    number = sa.Column(sa.String(24), nullable=False, unique=True)
    period_start = sa.Column(sa.Date, nullable=False)
    period_end = sa.Column(sa.Date, nullable=False)
    issue_date = sa.Column(sa.Date, nullable=False, index=True)
    due_date = sa.Column(sa.Date, nullable=False)
    subtotal = sa.Column(MONEY, nullable=False)
    gst = sa.Column(MONEY, nullable=False, default=0)
    hst = sa.Column(MONEY, nullable=False, default=0)
    qst = sa.Column(MONEY, nullable=False, default=0)
    pst = sa.Column(MONEY, nullable=False, default=0)
    credits_applied = sa.Column(MONEY, nullable=False, default=0)
    total = sa.Column(MONEY, nullable=False)
    status = sa.Column(sa.String(10), nullable=False)
    pdf_ref = sa.Column(sa.String(200), nullable=False)


class Payment(Base):
    """A payment attempt. ``status``: pending, accepted or declined. Only the card's brand and last four digits
    are ever stored."""

    __tablename__ = "payments"

    id = sa.Column(sa.Integer, primary_key=True)
    account_id = sa.Column(sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True)
    invoice_id = sa.Column(sa.Integer, sa.ForeignKey("invoices.id", ondelete="SET NULL"))
    amount = sa.Column(MONEY, nullable=False)
    method = sa.Column(sa.String(20), nullable=False)
    card_last4 = sa.Column(sa.String(4))
    status = sa.Column(sa.String(10), nullable=False)
    autopay = sa.Column(sa.Boolean, nullable=False, default=False)
    decline_reason = sa.Column(sa.String(40))
    submitted_at = sa.Column(sa.DateTime(timezone=True), nullable=False, index=True)
    processed_at = sa.Column(sa.DateTime(timezone=True))


class Credit(Base):
    """A credit: it lowers the Current Balance on ``applied_on``; ``invoice_id`` is the invoice it first shows
    on (None until the next invoice is generated, which is why it is not yet in the Transaction History)."""

    __tablename__ = "credits"

    id = sa.Column(sa.Integer, primary_key=True)
    account_id = sa.Column(sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True)
    amount = sa.Column(MONEY, nullable=False)
    reason = sa.Column(sa.String(200), nullable=False)
    applied_on = sa.Column(sa.Date, nullable=False)
    invoice_id = sa.Column(sa.Integer, sa.ForeignKey("invoices.id", ondelete="SET NULL"))


class CdrExport(Base):
    """The call detail records export of one invoice's period (a link in the Billing Portal)."""

    __tablename__ = "cdr_exports"

    id = sa.Column(sa.Integer, primary_key=True)
    invoice_id = sa.Column(
        sa.Integer, sa.ForeignKey("invoices.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    period_start = sa.Column(sa.Date, nullable=False)
    period_end = sa.Column(sa.Date, nullable=False)
    link = sa.Column(sa.String(300), nullable=False)


class AccountRequest(Base):
    """A request an agent must carry out (add/remove a portal user, change permissions, enable French), with the
    reference given to the customer. ``details`` holds the request's fields as JSON."""

    __tablename__ = "account_requests"

    id = sa.Column(sa.Integer, primary_key=True)
    reference = sa.Column(sa.String(16), nullable=False, unique=True)
    account_id = sa.Column(sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True)
    requested_by = sa.Column(sa.Integer, sa.ForeignKey("portal_users.id", ondelete="SET NULL"))
    kind = sa.Column(sa.String(24), nullable=False)
    details = sa.Column(sa.JSON, nullable=False)
    status = sa.Column(sa.String(16), nullable=False, default="open")
    channel = sa.Column(sa.String(16), nullable=False, default="chat")
    conversation_id = sa.Column(sa.String(255))
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)


# --- The mailroom: tickets from the billing@ inboxes, their messages, and what is sent back. -----------------
# Ticket statuses, in the order an agent works them: new (nobody has touched it), open (being worked),
# waiting (on the customer), solved (answered; the customer may still reply), closed (done; merged ones too).
TICKET_STATUSES = ("new", "open", "waiting", "solved", "closed")
ACTIVE_STATUSES = ("new", "open", "waiting")
ACTIVE_SQL = "status IN ('new', 'open', 'waiting')"
# Priorities, most urgent first; ``priority_rank`` is the index, so that "priority then age" is an index order.
PRIORITIES = ("urgent", "high", "normal")


def priority_rank(priority: str) -> int:
    """0 for urgent, 1 for high, 2 for normal (and anything unknown)."""
    return PRIORITIES.index(priority) if priority in PRIORITIES else len(PRIORITIES) - 1


class Ticket(Base):
    """One customer case, from email or from a chat handed to a person (``channel``). ``team`` is the team whose
    work it is ("CA" or "US"); ``misroute`` says whether the mail reached the other team's inbox (to_us, to_ca),
    might have (unsure: an agent confirms or rejects), or not (none)."""

    __tablename__ = "tickets"
    __table_args__ = (
        # Worklists, "priority then age" read in index order: active tickets of a team, of all teams, and any
        # status of a team. The partial indexes serve the queries that spell ACTIVE_STATUSES literally.
        sa.Index("ix_tickets_active_team", "team", "priority_rank", "created_at", "id",
                 sqlite_where=sa.text(ACTIVE_SQL), postgresql_where=sa.text(ACTIVE_SQL)),
        sa.Index("ix_tickets_active", "priority_rank", "created_at", "id",
                 sqlite_where=sa.text(ACTIVE_SQL), postgresql_where=sa.text(ACTIVE_SQL)),
        sa.Index("ix_tickets_worklist", "team", "status", "priority_rank", "created_at", "id"),
        sa.Index("ix_tickets_team_queue_status", "team", "queue", "status"),
    )

    id = sa.Column(sa.Integer, primary_key=True)
    reference = sa.Column(sa.String(16), nullable=False, unique=True)
    channel = sa.Column(sa.String(8), nullable=False, default="email")
    team = sa.Column(sa.String(2), nullable=False)
    mailbox = sa.Column(sa.String(64), nullable=False)
    queue = sa.Column(sa.String(16), nullable=False, index=True)
    priority = sa.Column(sa.String(8), nullable=False)
    priority_rank = sa.Column(sa.SmallInteger, nullable=False, default=2)
    language = sa.Column(sa.String(2), nullable=False)
    status = sa.Column(sa.String(16), nullable=False, default="new")
    subject = sa.Column(sa.String(500), nullable=False)
    customer_email = sa.Column(sa.String(320), nullable=False, index=True)
    customer_name = sa.Column(sa.String(200))
    customer_company = sa.Column(sa.String(200))  # from the mail's signature (core.nlp.find_sender)
    account_id = sa.Column(sa.Integer, sa.ForeignKey("accounts.id", ondelete="SET NULL"), index=True)
    topic = sa.Column(sa.String(64))
    misroute = sa.Column(sa.String(8), nullable=False, default="none")
    misroute_confidence = sa.Column(sa.Float, nullable=False, default=0.0)
    misroute_reasons = sa.Column(sa.JSON, nullable=False, default=list)
    assignee_id = sa.Column(sa.Integer, sa.ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    merged_into_id = sa.Column(sa.Integer, sa.ForeignKey("tickets.id", ondelete="SET NULL"))
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)


class TicketMessage(Base):
    """A message of a ticket. ``direction``: in (the customer's), out (to the customer) or internal (a note).
    ``kind``: mail, ack, forward, reply, note or notice. ``text`` is the text with card data removed; ``quoted``
    the earlier conversation a customer quoted (also redacted). An agent's message names them (``author_id``)."""

    __tablename__ = "ticket_messages"

    id = sa.Column(sa.Integer, primary_key=True)
    ticket_id = sa.Column(sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True)
    direction = sa.Column(sa.String(8), nullable=False)
    kind = sa.Column(sa.String(8), nullable=False, default="mail")
    author_id = sa.Column(sa.Integer, sa.ForeignKey("agents.id", ondelete="SET NULL"))
    message_id = sa.Column(sa.String(500), index=True)
    in_reply_to = sa.Column(sa.String(500))
    from_address = sa.Column(sa.String(320), nullable=False)
    to_addresses = sa.Column(sa.Text, nullable=False, default="")
    subject = sa.Column(sa.String(500), nullable=False, default="")
    text = sa.Column(sa.Text, nullable=False, default="")
    quoted = sa.Column(sa.Text, nullable=False, default="")
    language = sa.Column(sa.String(2))
    automated = sa.Column(sa.String(10))
    size = sa.Column(sa.Integer, nullable=False, default=0)
    attachments_dropped = sa.Column(sa.Boolean, nullable=False, default=False)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)


class TicketAttachment(Base):
    """What a message had attached: name, type and size (the content stays in the mailbox)."""

    __tablename__ = "ticket_attachments"

    id = sa.Column(sa.Integer, primary_key=True)
    message_id = sa.Column(
        sa.Integer, sa.ForeignKey("ticket_messages.id", ondelete="CASCADE"), nullable=False, index=True
    )
    filename = sa.Column(sa.String(300))
    content_type = sa.Column(sa.String(200), nullable=False)
    size = sa.Column(sa.Integer, nullable=False)


class InboundMail(Base):
    """Every message the mailroom has handled, once: by mailbox, UIDVALIDITY and UID, and by Message-ID. The
    row is committed with the ticket, before the message is flagged on the server: this is what makes a restart
    after a crash skip it instead of creating a second ticket. ``outcome`` "quarantined" is a message that could not be
    handled; "reprocess" one a person asked the mailroom to try again (it then clears the row and reads it anew)."""

    __tablename__ = "inbound_mail"
    __table_args__ = (sa.UniqueConstraint("mailbox", "uidvalidity", "uid"),)

    id = sa.Column(sa.Integer, primary_key=True)
    mailbox = sa.Column(sa.String(64), nullable=False)
    uidvalidity = sa.Column(sa.BigInteger, nullable=False)
    uid = sa.Column(sa.BigInteger, nullable=False)
    team = sa.Column(sa.String(2))  # whose inbox it reached
    message_id = sa.Column(sa.String(500), index=True)
    outcome = sa.Column(sa.String(16), nullable=False)
    reason = sa.Column(sa.Text)
    ticket_id = sa.Column(sa.Integer, sa.ForeignKey("tickets.id", ondelete="SET NULL"))
    handled_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)


class MailboxState(Base):
    """Where a mailbox was read up to (IMAP UIDVALIDITY and the highest UID handled)."""

    __tablename__ = "mailbox_state"

    mailbox = sa.Column(sa.String(64), primary_key=True)
    uidvalidity = sa.Column(sa.BigInteger, nullable=False)
    last_uid = sa.Column(sa.BigInteger, nullable=False, default=0)
    updated_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)


class OutboxMail(Base):
    """A mail to send (acknowledgement, forward to the other team, an agent's reply, a notice), committed with what caused
    it and sent later; ``raw`` is the complete message, Message-ID included, so a second attempt sends the very
    same mail.

    ``status``: pending (due at ``next_attempt_at``), sending (claimed by the sender ``claimed_by`` until
    ``lease_until``), sent, failed (for good) or suppressed (a hard-bounced address). ``doubts`` counts the claims
    that lapsed mid-send (the sender died during the SMTP transaction, so the mail may have gone out)."""

    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_due", "status", "next_attempt_at"),)

    id = sa.Column(sa.Integer, primary_key=True)
    kind = sa.Column(sa.String(16), nullable=False)
    ticket_id = sa.Column(sa.Integer, sa.ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    message_id = sa.Column(sa.String(500), nullable=False, unique=True)
    sender = sa.Column(sa.String(320), nullable=False)
    recipient = sa.Column(sa.String(320), nullable=False, index=True)
    raw = sa.Column(sa.Text, nullable=False)
    status = sa.Column(sa.String(10), nullable=False, default="pending", index=True)
    attempts = sa.Column(sa.Integer, nullable=False, default=0)
    doubts = sa.Column(sa.Integer, nullable=False, default=0)
    claimed_by = sa.Column(sa.String(200))
    lease_until = sa.Column(sa.DateTime(timezone=True))
    next_attempt_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)
    last_error = sa.Column(sa.Text)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow, index=True)
    sent_at = sa.Column(sa.DateTime(timezone=True))


class MailSuppression(Base):
    """An address that gets no acknowledgement until ``until`` (it hard-bounced)."""

    __tablename__ = "mail_suppressions"

    email = sa.Column(sa.String(320), primary_key=True)
    reason = sa.Column(sa.String(200), nullable=False)
    until = sa.Column(sa.DateTime(timezone=True), nullable=False)


# --- The agent console: agents, their sessions, sign-in throttles, the audit trail, live activity. -----------
AGENT_ROLES = ("agent", "supervisor")
TEAMS = ("CA", "US")


class Agent(Base):
    """A billing agent. ``teams``: the teams whose work they see ("CA", "US" or "CA,US"); ``languages``: those
    they work in ("en,fr"); ``role``: agent or supervisor (sees every team, the audit trail); ``ui_language``:
    the console's language for them. ``password_hash`` is Argon2id (``core.agents``)."""

    __tablename__ = "agents"

    id = sa.Column(sa.Integer, primary_key=True)
    email = sa.Column(sa.String(320), nullable=False, unique=True)
    name = sa.Column(sa.String(200), nullable=False)
    teams = sa.Column(sa.String(20), nullable=False)
    languages = sa.Column(sa.String(20), nullable=False, default="en,fr")
    role = sa.Column(sa.String(12), nullable=False, default="agent")
    ui_language = sa.Column(sa.String(2), nullable=False, default="en")
    password_hash = sa.Column(sa.String(200), nullable=False)
    active = sa.Column(sa.Boolean, nullable=False, default=True)
    password_changed_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)
    last_login_at = sa.Column(sa.DateTime(timezone=True))
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)


class AgentSession(Base):
    """A signed-in session: the browser holds a random token, the store its SHA-256 (``id``). A session ends at
    logout, on a password change, after ``expires_at`` or when idle too long (``last_seen_at``)."""

    __tablename__ = "agent_sessions"

    id = sa.Column(sa.String(64), primary_key=True)
    agent_id = sa.Column(sa.Integer, sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False, index=True)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)
    last_seen_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)
    expires_at = sa.Column(sa.DateTime(timezone=True), nullable=False)
    ended_at = sa.Column(sa.DateTime(timezone=True))
    address = sa.Column(sa.String(64))
    user_agent = sa.Column(sa.String(300))


class LoginThrottle(Base):
    """Failed sign-ins counted per account (``account:<email>``) and per client address (``address:<ip>``), and
    until when each is locked (the lock grows with the failures)."""

    __tablename__ = "login_throttles"

    key = sa.Column(sa.String(400), primary_key=True)
    failures = sa.Column(sa.Integer, nullable=False, default=0)
    last_failure_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)
    locked_until = sa.Column(sa.DateTime(timezone=True))


class AuditEvent(Base):
    """One action, forever: who (``agent_id``; None for the system), what (``action``), when, on which ticket, the
    values before and after, and a detail in words."""

    __tablename__ = "audit_events"
    __table_args__ = (sa.Index("ix_audit_events_team_at", "team", "at"),)

    id = sa.Column(sa.Integer, primary_key=True)
    at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)
    agent_id = sa.Column(sa.Integer, sa.ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    team = sa.Column(sa.String(2))
    ticket_id = sa.Column(sa.Integer, sa.ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    action = sa.Column(sa.String(40), nullable=False)
    before = sa.Column(sa.JSON)
    after = sa.Column(sa.JSON)
    detail = sa.Column(sa.Text)


class ActivityEvent(Base):
    """What changed, for the pages open right now (live updates): written in the transaction of the change, read
    by every console process in order of ``id``. ``team``: whose agents may see it (None: supervisors only)."""

    __tablename__ = "activity"

    id = sa.Column(sa.Integer, primary_key=True)
    at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow, index=True)
    team = sa.Column(sa.String(2))
    kind = sa.Column(sa.String(40), nullable=False)
    ticket_id = sa.Column(sa.Integer)
    agent_id = sa.Column(sa.Integer)
    data = sa.Column(sa.JSON, nullable=False, default=dict)


class Conversation(Base):
    """A chat on the support site, owned by the chat hub (``core.chats``). ``owner`` says who answers the
    customer: the bot, the team's queue (handed off, waiting for an agent), an agent (``agent_id``), or nobody
    (closed). The browser proves it is the customer's with a random key whose SHA-256 is ``key_hash``;
    ``sender_id`` names the conversation to Rasa. ``identity_token``: the Billing Portal token the page sent
    (verified on every use, never trusted as stored)."""

    __tablename__ = "conversations"
    __table_args__ = (sa.Index("ix_conversations_owner", "owner", "handed_off_at"),)

    id = sa.Column(sa.Integer, primary_key=True)
    sender_id = sa.Column(sa.String(64), nullable=False, unique=True)
    key_hash = sa.Column(sa.String(64), nullable=False, unique=True)
    language = sa.Column(sa.String(2), nullable=False)
    owner = sa.Column(sa.String(8), nullable=False, default="bot")
    team = sa.Column(sa.String(2), nullable=False, default="CA")
    agent_id = sa.Column(sa.Integer, sa.ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    ticket_id = sa.Column(sa.Integer, sa.ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    identity_token = sa.Column(sa.Text)
    portal_user_id = sa.Column(sa.Integer, sa.ForeignKey("portal_users.id", ondelete="SET NULL"))
    reason = sa.Column(sa.String(32))
    rating = sa.Column(sa.SmallInteger)
    rating_comment = sa.Column(sa.Text)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)
    handed_off_at = sa.Column(sa.DateTime(timezone=True))
    closed_at = sa.Column(sa.DateTime(timezone=True))


class ChatMessage(Base):
    """One message of a chat: the customer's (text with card data removed), the bot's (with its buttons), an
    agent's (``agent_id``) or the hub's own notices (system). ``client_id``: the browser's id for a customer
    message, so that a send retried after a network loss is stored once."""

    __tablename__ = "chat_messages"
    __table_args__ = (sa.UniqueConstraint("conversation_id", "client_id", name="uq_chat_messages_client"),)

    id = sa.Column(sa.Integer, primary_key=True)
    conversation_id = sa.Column(sa.Integer, sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False,
                                index=True)
    sender = sa.Column(sa.String(8), nullable=False)
    agent_id = sa.Column(sa.Integer, sa.ForeignKey("agents.id", ondelete="SET NULL"))
    text = sa.Column(sa.Text, nullable=False, default="")
    buttons = sa.Column(sa.JSON, nullable=False, default=list)
    client_id = sa.Column(sa.String(64))
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)


class TicketPresence(Base):
    """Who has a ticket open right now, and whether they are writing a reply (until ``expires_at``, renewed by
    their page while it stays open)."""

    __tablename__ = "ticket_presence"

    ticket_id = sa.Column(sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    agent_id = sa.Column(sa.Integer, sa.ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    state = sa.Column(sa.String(10), nullable=False, default="viewing")
    expires_at = sa.Column(sa.DateTime(timezone=True), nullable=False)


def normalize_email(email: str) -> str:
    """Addresses are stored lower-cased and trimmed, so that lookups compare them with a plain (indexed) ``=``."""
    return email.strip().lower()


def _normalized_on_set(_target: object, value: object, _old: object, _initiator: object) -> object:
    return normalize_email(value) if isinstance(value, str) else value


for _email_column in (PortalUser.email, BillingContact.email, Agent.email):
    sa.event.listen(_email_column, "set", _normalized_on_set, retval=True)
