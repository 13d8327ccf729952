"""What agents do to tickets: claim, assign, reply, note, change queue, priority or status, merge, settle a
misroute, retry mail, have a quarantined message read again, say they are looking or writing.

Each action runs in the caller's transaction (one per request) and, in that same transaction, writes its entry
in the audit trail (who, what, before, after) and its live event (``core.activity``): the change, its record and
its notification commit together or not at all. Each checks first that the agent may see the ticket
(``NotVisible`` otherwise) and that the action makes sense (``TicketError`` with the reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import audit
from core.activity import publish
from core.agents import AgentView, split_list
from core.db.models import (
    PRIORITIES,
    TEAMS,
    TICKET_STATUSES,
    Agent,
    InboundMail,
    OutboxMail,
    TicketMessage,
    TicketPresence,
    priority_rank,
    utcnow,
)
from core.knowledge import QUEUES
from core.outbox import queue_mail, retry_now
from core.redaction import redact_card_data
from core.replies import Thread, agent_reply, misroute_forward, misroute_notice
from core.settings import Settings
from core.tickets import NotFound, NotVisible, TicketError, visible_ticket

MAX_TEXT = 20_000
PRESENCE_LEASE = timedelta(seconds=45)  # a page renews it every 15 s while it stays open
OTHER_TEAM = {"CA": "US", "US": "CA"}
MISROUTE_TO = {"US": "to_us", "CA": "to_ca"}


@dataclass(frozen=True)
class Mailer:
    """What sending mail needs: the settings (team addresses) and the key of the loop marker."""

    settings: Settings
    secret: str


def _changed(session: Session, agent: AgentView, ticket: Any, action: str, field: str, value: Any,
             detail: str | None = None) -> None:
    """Set one field of a ticket, with its audit entry and live event (nothing if it holds the value already)."""
    before = getattr(ticket, field)
    if before == value:
        return
    setattr(ticket, field, value)
    ticket.updated_at = utcnow()
    audit.record(session, action, agent_id=agent.id, team=ticket.team, ticket_id=ticket.id,
                 before={field: before}, after={field: value}, detail=detail)
    publish(session, "ticket.changed", str(ticket.team), int(ticket.id), agent.id, field=field,
            reference=str(ticket.reference))


def claim(session: Session, agent: AgentView, ticket_id: int) -> Any:
    """The agent takes the ticket: assigned to them, and open if it was new."""
    ticket = visible_ticket(session, agent, ticket_id)
    _changed(session, agent, ticket, "claim", "assignee_id", agent.id)
    if ticket.status == "new":
        _changed(session, agent, ticket, "status", "status", "open")
    return ticket


def assign(session: Session, agent: AgentView, ticket_id: int, assignee_id: int | None) -> Any:
    """Give the ticket to an agent who may work its team's tickets (None: to nobody)."""
    ticket = visible_ticket(session, agent, ticket_id)
    if assignee_id is not None:
        target = session.get(Agent, assignee_id)
        if target is None or not target.active or (target.role != "supervisor"
                                                   and ticket.team not in split_list(target.teams)):
            raise TicketError(f"agent {assignee_id} does not work the {ticket.team} team's tickets")
    _changed(session, agent, ticket, "assign" if assignee_id else "unassign", "assignee_id", assignee_id)
    return ticket


def set_status(session: Session, agent: AgentView, ticket_id: int, status: str) -> Any:
    ticket = visible_ticket(session, agent, ticket_id)
    if status not in TICKET_STATUSES:
        raise TicketError(f"{status!r} is not a status ({', '.join(TICKET_STATUSES)})")
    _changed(session, agent, ticket, "status", "status", status)
    return ticket


def set_queue(session: Session, agent: AgentView, ticket_id: int, queue: str) -> Any:
    ticket = visible_ticket(session, agent, ticket_id)
    if queue not in QUEUES:
        raise TicketError(f"{queue!r} is not a queue ({', '.join(QUEUES)})")
    _changed(session, agent, ticket, "queue", "queue", queue)
    return ticket


def set_priority(session: Session, agent: AgentView, ticket_id: int, priority: str) -> Any:
    ticket = visible_ticket(session, agent, ticket_id)
    if priority not in PRIORITIES:
        raise TicketError(f"{priority!r} is not a priority ({', '.join(PRIORITIES)})")
    ticket.priority_rank = priority_rank(priority)
    _changed(session, agent, ticket, "priority", "priority", priority)
    return ticket


def _clean(text: str) -> str:
    text = (text or "").replace("\r\n", "\n").strip()
    if not text:
        raise TicketError("the message is empty")
    if len(text) > MAX_TEXT:
        raise TicketError(f"the message is longer than {MAX_TEXT} characters")
    return redact_card_data(text).text  # card numbers are never stored, whoever types them


def add_note(session: Session, agent: AgentView, ticket_id: int, text: str) -> Any:
    """An internal note: for agents, never sent to the customer."""
    ticket = visible_ticket(session, agent, ticket_id)
    note = TicketMessage(ticket_id=ticket.id, direction="internal", kind="note", author_id=agent.id,
                         from_address=agent.email, text=_clean(text), language=None)
    session.add(note)
    session.flush()
    ticket.updated_at = utcnow()
    audit.record(session, "note", agent_id=agent.id, team=ticket.team, ticket_id=ticket.id, after={"message": note.id})
    publish(session, "ticket.message", str(ticket.team), int(ticket.id), agent.id, reference=str(ticket.reference))
    return note


def thread_anchor(session: Session, ticket_id: int) -> Thread:
    """The customer's last message of a ticket (where a reply goes in their thread)."""
    row = session.execute(select(TicketMessage.message_id, TicketMessage.in_reply_to)
                          .where(TicketMessage.ticket_id == ticket_id, TicketMessage.direction == "in",
                                 TicketMessage.message_id.is_not(None))
                          .order_by(TicketMessage.created_at.desc(), TicketMessage.id.desc()).limit(1)).first()
    return Thread(row.message_id, row.in_reply_to) if row is not None else Thread(None, None)


def reply(session: Session, agent: AgentView, ticket_id: int, text: str, language: str, mailer: Mailer,
          status_after: str = "waiting") -> Any:
    """Reply to the customer by email: the message in the thread, the mail in the outbox (sent by the mailroom),
    the ticket assigned to the agent if nobody had it, then ``status_after`` (waiting on the customer)."""
    ticket = visible_ticket(session, agent, ticket_id)
    if ticket.channel != "email":
        raise TicketError("this ticket is a chat: answer in the chat")
    if status_after not in TICKET_STATUSES:
        raise TicketError(f"{status_after!r} is not a status")
    body = _clean(text)
    outgoing = agent_reply(ticket, thread_anchor(session, int(ticket.id)), agent.name, body, language, mailer.settings,
                           mailer.secret)
    queue_mail(session, "reply", int(ticket.id), outgoing.message_id, outgoing.sender, outgoing.recipient, outgoing.raw)
    message = TicketMessage(ticket_id=ticket.id, direction="out", kind="reply", author_id=agent.id,
                            message_id=outgoing.message_id, from_address=mailer.settings.team_address(str(ticket.team)),
                            to_addresses=outgoing.recipient, subject="", text=outgoing.text, language=language)
    session.add(message)
    session.flush()
    audit.record(session, "reply", agent_id=agent.id, team=ticket.team, ticket_id=ticket.id,
                 after={"message": message.id, "language": language, "to": outgoing.recipient})
    publish(session, "ticket.message", str(ticket.team), int(ticket.id), agent.id, reference=str(ticket.reference))
    if ticket.assignee_id is None:
        _changed(session, agent, ticket, "claim", "assignee_id", agent.id)
    _changed(session, agent, ticket, "status", "status", status_after)
    touch_presence(session, agent, int(ticket.id), "viewing")
    return message


def merge(session: Session, agent: AgentView, ticket_id: int, into_reference: str) -> Any:
    """Merge a duplicate into another ticket of the same team: its messages and mail move there, it is closed and
    points to the other; replies to it join the other from now on."""
    ticket = visible_ticket(session, agent, ticket_id)
    target = session.execute(select(type(ticket)).where(type(ticket).reference == into_reference.strip().upper())
                             ).scalars().first()
    if target is None:
        raise NotFound(f"no ticket {into_reference.strip()}")
    if not agent.sees(target.team):
        raise NotVisible(f"ticket {target.reference} is the {target.team} team's")
    if target.id == ticket.id or target.merged_into_id is not None or ticket.merged_into_id is not None:
        raise TicketError("a ticket merges into another ticket that was not merged itself")
    if target.team != ticket.team:
        raise TicketError("tickets of two teams cannot be merged")
    session.execute(update(TicketMessage).where(TicketMessage.ticket_id == ticket.id).values(ticket_id=target.id)
                    .execution_options(synchronize_session=False))
    session.execute(update(OutboxMail).where(OutboxMail.ticket_id == ticket.id).values(ticket_id=target.id)
                    .execution_options(synchronize_session=False))
    before = {"status": ticket.status, "merged_into": None}
    ticket.merged_into_id, ticket.status, ticket.updated_at = target.id, "closed", utcnow()
    target.updated_at = utcnow()
    if target.status in ("solved", "closed"):
        target.status = "open"
    audit.record(session, "merge", agent_id=agent.id, team=ticket.team, ticket_id=ticket.id, before=before,
                 after={"status": "closed", "merged_into": target.reference})
    audit.record(session, "merged_in", agent_id=agent.id, team=target.team, ticket_id=target.id,
                 after={"merged_from": ticket.reference})
    for changed in (ticket, target):
        publish(session, "ticket.changed", str(changed.team), int(changed.id), agent.id, field="merge",
                reference=str(changed.reference))
    return target


def confirm_misroute(session: Session, agent: AgentView, ticket_id: int, mailer: Mailer) -> Any:
    """A flagged mail is the other team's: forwarded there with the evidence, the customer told where to write,
    and the ticket handed to that team (new in their queue)."""
    ticket = visible_ticket(session, agent, ticket_id)
    if ticket.misroute != "unsure":
        raise TicketError("only a ticket flagged as perhaps the other team's can be confirmed")
    if ticket.channel != "email":
        raise TicketError("only mail is forwarded")
    right = OTHER_TEAM[str(ticket.team)]
    thread = thread_anchor(session, int(ticket.id))
    first = session.execute(select(TicketMessage.text).where(TicketMessage.ticket_id == ticket.id,
                                                             TicketMessage.direction == "in")
                            .order_by(TicketMessage.id).limit(1)).scalar_one_or_none() or ""
    reasons = [*list(ticket.misroute_reasons or []), f"confirmed by {agent.name}"]
    for kind, outgoing in (
        ("forward", misroute_forward(ticket, right, reasons, str(first), agent.name, mailer.settings, mailer.secret)),
        ("notice", misroute_notice(ticket, right, thread, mailer.settings, mailer.secret)),
    ):
        queue_mail(session, kind, int(ticket.id), outgoing.message_id, outgoing.sender, outgoing.recipient,
                   outgoing.raw)
        session.add(TicketMessage(ticket_id=ticket.id, direction="out", kind=kind, author_id=agent.id,
                                  message_id=outgoing.message_id, from_address=outgoing.sender,
                                  to_addresses=outgoing.recipient, text=outgoing.text, language=ticket.language))
    before = {"team": ticket.team, "misroute": ticket.misroute, "status": ticket.status,
              "assignee_id": ticket.assignee_id}
    ticket.team, ticket.misroute, ticket.misroute_reasons = right, MISROUTE_TO[right], reasons
    ticket.status, ticket.assignee_id, ticket.updated_at = "new", None, utcnow()
    audit.record(session, "misroute_confirmed", agent_id=agent.id, team=before["team"], ticket_id=ticket.id,
                 before=before, after={"team": right, "misroute": ticket.misroute, "status": "new"})
    for team in (before["team"], right):
        publish(session, "ticket.changed", str(team), int(ticket.id), agent.id, field="team",
                reference=str(ticket.reference))
    return ticket


def reject_misroute(session: Session, agent: AgentView, ticket_id: int) -> Any:
    """A flagged mail is this team's after all: the flag goes, the evidence stays in the trail."""
    ticket = visible_ticket(session, agent, ticket_id)
    if ticket.misroute != "unsure":
        raise TicketError("only a ticket flagged as perhaps the other team's can be rejected")
    _changed(session, agent, ticket, "misroute_rejected", "misroute", "none",
             detail="; ".join(ticket.misroute_reasons or []))
    return ticket


def touch_presence(session: Session, agent: AgentView, ticket_id: int, state: str,
                   now: datetime | None = None) -> bool:
    """The agent has the ticket open (``viewing``) or is writing to the customer (``replying``), or left it
    (``gone``). Returns True when what others see changed (then a live event tells them)."""
    ticket = visible_ticket(session, agent, ticket_id)
    moment = now or datetime.now(timezone.utc)
    row = session.get(TicketPresence, (ticket.id, agent.id))
    expires = row.expires_at if row is not None else None
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=timezone.utc)
    was = row.state if row is not None and expires is not None and expires > moment else "gone"
    if state == "gone":
        if row is not None:
            session.delete(row)
    elif state in ("viewing", "replying"):
        if row is None:
            session.add(TicketPresence(ticket_id=ticket.id, agent_id=agent.id, state=state,
                                       expires_at=moment + PRESENCE_LEASE))
        else:
            row.state, row.expires_at = state, moment + PRESENCE_LEASE
    else:
        raise TicketError(f"{state!r} is not a presence (viewing, replying, gone)")
    if was != state:
        publish(session, "ticket.presence", str(ticket.team), int(ticket.id), agent.id, state=state,
                name=agent.name, reference=str(ticket.reference))
        return True
    return False


def retry_mail(session: Session, agent: AgentView, outbox_id: int) -> None:
    """Send a failed or suppressed mail again (of a ticket the agent may see)."""
    row = session.get(OutboxMail, outbox_id)
    if row is None or row.ticket_id is None:
        raise NotFound(f"no outgoing mail {outbox_id}")
    ticket = visible_ticket(session, agent, int(row.ticket_id))
    if not retry_now(session, outbox_id):
        raise TicketError("only a failed or suppressed mail can be sent again")
    audit.record(session, "mail_retry", agent_id=agent.id, team=ticket.team, ticket_id=ticket.id,
                 before={"status": row.status}, after={"status": "pending"}, detail=str(row.recipient))


def reprocess(session: Session, agent: AgentView, inbound_id: int) -> None:
    """Ask the mailroom to read a quarantined message again (it clears its record and reads it as new)."""
    row = session.get(InboundMail, inbound_id)
    if row is None or row.outcome != "quarantined":
        raise NotFound(f"no quarantined message {inbound_id}")
    if not (agent.sees(row.team) or (row.team is None and agent.is_supervisor)):
        raise NotVisible(f"message {inbound_id} reached another team's inbox")
    row.outcome = "reprocess"
    audit.record(session, "reprocess", agent_id=agent.id, team=row.team if row.team in TEAMS else None,
                 before={"outcome": "quarantined", "reason": row.reason}, after={"outcome": "reprocess"},
                 detail=f"{row.mailbox} UID {row.uid}")
    publish(session, "mail.reprocess", row.team, None, agent.id)
