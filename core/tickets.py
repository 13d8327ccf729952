"""Reading tickets for agents: worklists with counts, one ticket with its whole thread, what needs a person.

Every query takes the agent (``AgentView``) and sees only the teams' work they may see (supervisors: all). A
ticket asked for by id that belongs to another team raises ``NotVisible``: the caller refuses it and logs it.
Worklists sort by priority, then age (oldest first), an order the ``ix_tickets_worklist`` index serves.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, bindparam, desc, func, or_, select
from sqlalchemy.orm import Session

from core.accounts import AccountSummary, account_summary
from core.agents import AgentView
from core.audit import AuditEntry, trail_of_ticket
from core.db.models import (
    ACTIVE_STATUSES,
    PRIORITIES,
    TEAMS,
    TICKET_STATUSES,
    Account,
    Agent,
    InboundMail,
    OutboxMail,
    Ticket,
    TicketAttachment,
    TicketMessage,
    TicketPresence,
)
from core.errors import PermanentError
from core.outbox import PROBLEM_STATUSES, state_of
from core.references import TICKET_REFERENCE

PER_PAGE = 50
STATUS_CHOICES = ("active", *TICKET_STATUSES, "all")
_ACCOUNT_NUMBER = re.compile(r"^(CA|US)-\d{4,}$", re.IGNORECASE)


class TicketError(PermanentError):
    """Raised when a ticket cannot be shown or changed as asked; the message says why."""


class NotFound(TicketError):
    """Raised when no ticket (or message, or mail) has the id asked for."""


class NotVisible(TicketError):
    """Raised when an agent asks for another team's ticket (the console refuses it and logs the attempt)."""


@dataclass(frozen=True)
class TicketFilter:
    """A worklist's choice. ``status``: a status, "active" (new, open, waiting) or "all"; ``assignee``: "me",
    "none", or an agent's id; ``misroute``: only the tickets flagged as perhaps the other team's."""

    status: str = "active"
    team: str | None = None
    queue: str | None = None
    language: str | None = None
    priority: str | None = None
    channel: str | None = None
    assignee: str | None = None
    misroute: bool = False
    search: str = ""


@dataclass(frozen=True)
class TicketRow:
    """One line of a worklist."""

    id: int
    reference: str
    channel: str
    team: str
    queue: str
    priority: str
    language: str
    status: str
    subject: str
    customer: str
    customer_name: str | None
    assignee: str | None
    misroute: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Worklist:
    """A page of a worklist, how many match in all, and the counts an agent steers by."""

    rows: list[TicketRow]
    total: int
    page: int
    pages: int
    counts: dict[str, Counter[str]]


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(timezone.utc)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _visible(agent: AgentView, team: str | None) -> tuple[str, ...]:
    teams = agent.visible_teams
    return (team,) if team in teams else teams


def is_active() -> Any:
    """``status IN ('new', 'open', 'waiting')`` with the values written into the SQL (not bound), so that both
    databases see it is the condition of the partial indexes on active tickets."""
    return Ticket.status.in_(bindparam("active_statuses", list(ACTIVE_STATUSES), expanding=True, literal_execute=True))


def _filtered(query: Any, agent: AgentView, choice: TicketFilter) -> Any:
    teams = _visible(agent, choice.team)
    if set(teams) != set(TEAMS):  # every team: no condition at all, and the all-teams index serves the order
        query = query.where(Ticket.team.in_(teams))
    if choice.status == "active":
        query = query.where(is_active())
    elif choice.status in TICKET_STATUSES:
        query = query.where(Ticket.status == choice.status)
    if choice.queue:
        query = query.where(Ticket.queue == choice.queue)
    if choice.language:
        query = query.where(Ticket.language == choice.language)
    if choice.priority in PRIORITIES:
        query = query.where(Ticket.priority == choice.priority)
    if choice.channel:
        query = query.where(Ticket.channel == choice.channel)
    if choice.misroute:
        query = query.where(Ticket.misroute == "unsure")
    if choice.assignee == "me":
        query = query.where(Ticket.assignee_id == agent.id)
    elif choice.assignee == "none":
        query = query.where(Ticket.assignee_id.is_(None))
    elif choice.assignee and choice.assignee.isdigit():
        query = query.where(Ticket.assignee_id == int(choice.assignee))
    return _searched(query, choice.search.strip())


def _searched(query: Any, text: str) -> Any:
    """By reference (exact), account number (exact), or sender and subject (contains, any case)."""
    if not text:
        return query
    reference = TICKET_REFERENCE.search(text.upper())
    if reference and len(text) <= 14:
        return query.where(Ticket.reference == reference.group(1))
    if _ACCOUNT_NUMBER.match(text):
        return query.join(Account, Account.id == Ticket.account_id).where(Account.number == text.upper())
    pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")[:200] + "%"
    return query.where(or_(func.lower(Ticket.customer_email).like(pattern, escape="\\"),
                           func.lower(Ticket.customer_name).like(pattern, escape="\\"),
                           func.lower(Ticket.subject).like(pattern, escape="\\")))


def worklist(session: Session, agent: AgentView, choice: TicketFilter, page: int = 1, per_page: int = PER_PAGE,
             team_counts_of: Callable[[tuple[str, ...]], dict[str, Counter[str]]] | None = None) -> Worklist:
    """The tickets of ``choice`` the agent may see: priority, then oldest first; a page of them, and the counts
    (``team_counts_of``: where the team-wide counts come from, a cache for instance; computed here by default)."""
    total = int(session.execute(_filtered(select(func.count(Ticket.id)), agent, choice)).scalar_one())
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    order = (Ticket.priority_rank, Ticket.created_at, Ticket.id)
    # The page's ids first, sorted from the worklist index alone; then only those rows are read whole.
    ids = _filtered(select(Ticket.id), agent, choice).order_by(*order).limit(per_page).offset((page - 1) * per_page)
    query = (select(Ticket.id, Ticket.reference, Ticket.channel, Ticket.team, Ticket.queue, Ticket.priority,
                    Ticket.language, Ticket.status, Ticket.subject, Ticket.customer_email, Ticket.customer_name,
                    Agent.name.label("assignee"), Ticket.misroute, Ticket.created_at, Ticket.updated_at)
             .outerjoin(Agent, Agent.id == Ticket.assignee_id).where(Ticket.id.in_(ids.scalar_subquery()))
             .order_by(*order))
    rows = [TicketRow(r.id, r.reference, r.channel, r.team, r.queue, r.priority, r.language, r.status, r.subject,
                      r.customer_email, r.customer_name, r.assignee, r.misroute, _aware(r.created_at),
                      _aware(r.updated_at)) for r in session.execute(query).all()]
    teams = _visible(agent, choice.team)
    found = {name: Counter(values) for name, values in
             (team_counts_of(teams) if team_counts_of else team_counts(session, teams)).items()}
    found["flags"]["mine"] = mine_count(session, agent.id)
    return Worklist(rows, total, page, pages, found)


def team_counts(session: Session, teams: tuple[str, ...]) -> dict[str, Counter[str]]:
    """What agents steer by, over ``teams``: tickets per status; and of the active ones, per queue, language,
    priority, channel and team, with a misroute to confirm, and unassigned. (The costly part of a worklist on a
    large store: the console caches it a moment.)"""
    result: dict[str, Counter[str]] = {name: Counter() for name in
                                       ("queue", "language", "priority", "channel", "team", "flags")}
    per_status: Counter[str] = Counter({status: 0 for status in TICKET_STATUSES})
    # Grouped by team first: the order of the (team, status, ...) index, read without touching the table.
    for _, status, number in session.execute(select(Ticket.team, Ticket.status, func.count())
                                             .where(Ticket.team.in_(teams)).group_by(Ticket.team, Ticket.status)):
        per_status[str(status)] += int(number)
    per_status["active"] = sum(per_status[s] for s in ACTIVE_STATUSES)
    result["status"] = per_status
    active = (select(Ticket.queue, Ticket.language, Ticket.priority, Ticket.channel, Ticket.team,
                     Ticket.misroute == "unsure", Ticket.assignee_id.is_(None), func.count())
              .where(Ticket.team.in_(teams), is_active())
              .group_by(Ticket.queue, Ticket.language, Ticket.priority, Ticket.channel, Ticket.team,
                        Ticket.misroute == "unsure", Ticket.assignee_id.is_(None)))
    for queue, language, priority, channel, team_of, unsure, unassigned, number in session.execute(active):
        for name, value in (("queue", queue), ("language", language), ("priority", priority),
                            ("channel", channel), ("team", team_of)):
            result[name][str(value)] += int(number)
        for flag, present in (("misroute", unsure), ("unassigned", unassigned)):
            if present:
                result["flags"][flag] += int(number)
    return result


def mine_count(session: Session, agent_id: int) -> int:
    """How many active tickets the agent has (always current: cheap, by the assignee index)."""
    return int(session.execute(select(func.count()).select_from(Ticket).where(
        Ticket.assignee_id == agent_id, is_active())).scalar_one())


def visible_ticket(session: Session, agent: AgentView, ticket_id: int) -> Any:
    """The ticket (a ``Ticket``) if the agent may see it; ``NotFound`` or ``NotVisible`` otherwise."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"no ticket {ticket_id}")
    if not agent.sees(ticket.team):
        raise NotVisible(f"ticket {ticket.reference} is the {ticket.team} team's")
    return ticket


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    size: int


@dataclass(frozen=True)
class ThreadItem:
    """One message of a ticket's thread, as agents read it. ``delivery``: for mail we sent, where it stands
    (pending, sending, in doubt, sent, failed, suppressed)."""

    id: int
    direction: str
    kind: str
    author: str | None
    from_address: str
    to_addresses: str
    subject: str
    text: str
    quoted: str
    language: str | None
    automated: str | None
    created_at: datetime
    attachments: list[Attachment] = field(default_factory=list)
    attachments_dropped: bool = False
    delivery: str | None = None


@dataclass(frozen=True)
class Presence:
    agent_id: int
    name: str
    state: str


@dataclass(frozen=True)
class TicketDetail:
    """Everything the ticket page shows."""

    ticket: Any
    thread: list[ThreadItem]
    account: AccountSummary | None
    assignee: str | None
    merged_into: str | None
    presence: list[Presence]
    audit: list[AuditEntry]
    last_message_id: int


def thread_of(session: Session, ticket_id: int) -> list[ThreadItem]:
    """A ticket's messages, oldest first, with their attachments and, for mail we sent, its delivery."""
    messages = session.execute(
        select(TicketMessage, Agent.name).outerjoin(Agent, Agent.id == TicketMessage.author_id)
        .where(TicketMessage.ticket_id == ticket_id).order_by(TicketMessage.created_at, TicketMessage.id)
    ).all()
    ids = [int(m.id) for m, _ in messages]
    attachments: dict[int, list[Attachment]] = {}
    if ids:
        for row in session.execute(select(TicketAttachment).where(TicketAttachment.message_id.in_(ids))
                                   .order_by(TicketAttachment.id)).scalars():
            attachments.setdefault(int(row.message_id), []).append(
                Attachment(row.filename, str(row.content_type), int(row.size)))
    now = datetime.now(timezone.utc)
    deliveries = {str(row.message_id): state_of(row, now) for row in session.execute(
        select(OutboxMail).where(OutboxMail.ticket_id == ticket_id)).scalars()}
    return [ThreadItem(
        id=int(m.id), direction=str(m.direction), kind=str(m.kind), author=author, from_address=str(m.from_address),
        to_addresses=str(m.to_addresses or ""), subject=str(m.subject or ""), text=str(m.text or ""),
        quoted=str(m.quoted or ""), language=m.language, automated=m.automated, created_at=_aware(m.created_at),
        attachments=attachments.get(int(m.id), []), attachments_dropped=bool(m.attachments_dropped),
        delivery=deliveries.get(str(m.message_id)) if m.direction == "out" else None,
    ) for m, author in messages]


def presence_of(session: Session, ticket_id: int, now: datetime | None = None) -> list[Presence]:
    """Who has the ticket open right now, and who is writing a reply."""
    moment = now or datetime.now(timezone.utc)
    rows = session.execute(select(TicketPresence.agent_id, Agent.name, TicketPresence.state)
                           .join(Agent, Agent.id == TicketPresence.agent_id)
                           .where(TicketPresence.ticket_id == ticket_id, TicketPresence.expires_at > moment)
                           .order_by(Agent.name)).all()
    return [Presence(int(r.agent_id), str(r.name), str(r.state)) for r in rows]


def ticket_detail(session: Session, agent: AgentView, ticket_id: int, today: date) -> TicketDetail:
    """The ticket page's content (``NotFound``, ``NotVisible``)."""
    ticket = visible_ticket(session, agent, ticket_id)
    thread = thread_of(session, int(ticket.id))
    assignee = session.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
    merged = session.get(Ticket, ticket.merged_into_id) if ticket.merged_into_id else None
    return TicketDetail(
        ticket=ticket, thread=thread,
        account=account_summary(session, int(ticket.account_id), today) if ticket.account_id else None,
        assignee=str(assignee.name) if assignee is not None else None,
        merged_into=str(merged.reference) if merged is not None else None,
        presence=presence_of(session, int(ticket.id)), audit=trail_of_ticket(session, int(ticket.id)),
        last_message_id=max((item.id for item in thread), default=0),
    )


def latest_customer_text(thread: list[ThreadItem]) -> str:
    """What the customer last wrote (for suggested answers): their latest message, else the subject."""
    for item in reversed(thread):
        if item.direction == "in" and item.text.strip():
            return item.text
    return ""


def latest_tickets(session: Session, limit: int = 20) -> list[dict[str, Any]]:
    """The latest tickets, newest first, as plain rows (``make -s tickets``)."""
    rows = session.execute(select(Ticket).order_by(desc(Ticket.id)).limit(limit)).scalars()
    return [
        {"reference": t.reference, "created": t.created_at.strftime("%Y-%m-%d %H:%M") if t.created_at else "",
         "team": t.team, "queue": t.queue, "priority": t.priority, "language": t.language, "status": t.status,
         "misroute": t.misroute, "customer": t.customer_email, "subject": t.subject}
        for t in rows
    ]


@dataclass(frozen=True)
class OutboxProblem:
    """An outgoing mail of a visible ticket that is not sent: in doubt, failed, suppressed, or long pending."""

    id: int
    state: str
    kind: str
    ticket_id: int | None
    ticket: str | None
    recipient: str
    attempts: int
    last_error: str | None
    created_at: datetime


STUCK_AFTER = timedelta(minutes=15)  # a mail pending longer than this is shown as a problem


def outbox_problems(session: Session, agent: AgentView, limit: int = 200) -> list[OutboxProblem]:
    """The mail of the agent's teams' tickets that needs a look: failed, suppressed, in doubt, or pending for
    longer than ``STUCK_AFTER``."""
    now = datetime.now(timezone.utc)
    rows = session.execute(
        select(OutboxMail, Ticket.reference).join(Ticket, Ticket.id == OutboxMail.ticket_id)
        .where(Ticket.team.in_(agent.visible_teams), OutboxMail.status.in_(PROBLEM_STATUSES),
               or_(OutboxMail.status != "pending", OutboxMail.doubts > 0, OutboxMail.created_at < now - STUCK_AFTER))
        .order_by(desc(OutboxMail.id)).limit(limit)
    ).all()
    return [OutboxProblem(int(row.id), state_of(row, now), str(row.kind), row.ticket_id, reference,
                          str(row.recipient), int(row.attempts), row.last_error, _aware(row.created_at))
            for row, reference in rows]


@dataclass(frozen=True)
class Quarantined:
    """A message the mailroom could not handle, with why; ``reprocess``: a person asked to try it again."""

    id: int
    mailbox: str
    team: str | None
    uid: int
    message_id: str | None
    reason: str | None
    handled_at: datetime
    reprocess: bool


def quarantined(session: Session, agent: AgentView, limit: int = 200) -> list[Quarantined]:
    """Quarantined messages of the agent's teams' inboxes (of unknown inboxes too, for supervisors)."""
    where = InboundMail.team.in_(agent.visible_teams)
    if agent.is_supervisor:
        where = or_(where, InboundMail.team.is_(None))
    rows = session.execute(select(InboundMail).where(and_(where, InboundMail.outcome.in_(("quarantined", "reprocess"))))
                           .order_by(desc(InboundMail.id)).limit(limit)).scalars()
    return [Quarantined(int(r.id), str(r.mailbox), r.team, int(r.uid), r.message_id, r.reason, _aware(r.handled_at),
                        r.outcome == "reprocess") for r in rows]


def agents_for(session: Session, team: str) -> list[Any]:
    """The active agents who may work ``team``'s tickets (supervisors included), by name."""
    rows = session.execute(select(Agent).where(Agent.active.is_(True)).order_by(Agent.name)).scalars()
    return [a for a in rows if a.role == "supervisor" or team in str(a.teams).split(",")]
