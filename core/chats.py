"""Live chat: who answers a conversation of the support site, its messages, and the handoff to agents.

The chat hub (``console.widget``) owns every conversation of the widget, in this store, not in Rasa: ``owner`` is
the bot (the hub passes the customer's messages to Rasa's REST channel and stores its replies), the team's queue
(handed off, waiting for an agent: the customer's messages are stored for the agent, the bot hears nothing), an
agent, or nobody (closed). Because Rasa never hears a message while a person owns the conversation, no pause
event is needed, and nothing Rasa does (a new session, a ``restart``, a windowed tracker store, several Rasa
servers) can make the bot speak over an agent.

A handoff makes a ticket of channel ``chat`` in the team's queues (the console's worklists show it beside mail);
the ticket page shows the chat. Every step an agent takes is in the audit trail; every change publishes its live
event (``core.activity``) in the same transaction, which the widget's stream and the console follow.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit
from core.activity import publish
from core.agents import AgentView
from core.db.models import (
    Account,
    Agent,
    ChatMessage,
    Conversation,
    PortalUser,
    Ticket,
    TicketMessage,
    priority_rank,
    utcnow,
)
from core.errors import PermanentError
from core.identity import Identity
from core.language import DEFAULT_LANGUAGE, SUPPORTED_LANGUAGES
from core.redaction import redact_card_data
from core.references import TICKET_PREFIX, flush_with_reference
from core.signin import signed_in_agents
from core.tickets import TicketError, visible_ticket

MAX_TEXT = 4000
CHAT_MAILBOX = "chat"  # the tickets' ``mailbox`` for what came through the chat
MINUTES_PER_CHAT = 3  # a rough time an agent needs per waiting chat, for the wait the customer is told
OWNERS = ("bot", "queue", "agent", "closed")
REASONS = ("customer_request", "repeated_misunderstanding", "needs_person", "card_number", "unhelpful_answer")

# What the hub itself says in a conversation (an agent joined, left, closed it), in the conversation's language.
NOTICES = {
    "joined": {"en": "{agent} (billing agent) joined the conversation.",
               "fr": "{agent} (agent de facturation) s'est joint à la conversation."},
    "handed_back": {"en": "{agent} handed the conversation back to the virtual assistant.",
                    "fr": "{agent} a redonné la conversation à l'assistant virtuel."},
    "closed": {"en": "{agent} ended the conversation. Thank you for chatting with us!",
               "fr": "{agent} a mis fin à la conversation. Merci d'avoir clavardé avec nous!"},
    "unclaimed": {"en": "No agent could take the conversation in time.",
                  "fr": "Aucun agent n'a pu prendre la conversation à temps."},
}
# How a transcript names who spoke.
SPEAKERS = {"customer": {"en": "Customer", "fr": "Client"}, "bot": {"en": "Assistant", "fr": "Assistant"},
            "system": {"en": "Notice", "fr": "Avis"}}
SUBJECTS = {
    "customer_request": {"en": "Chat: asked for an agent", "fr": "Clavardage : demande un agent"},
    "repeated_misunderstanding": {"en": "Chat: the assistant did not understand",
                                  "fr": "Clavardage : l'assistant n'a pas compris"},
    "needs_person": {"en": "Chat: a request for the billing team", "fr": "Clavardage : une demande pour la facturation"},
    "card_number": {"en": "Chat: card number typed in the chat", "fr": "Clavardage : numéro de carte dans le clavardage"},
    "unhelpful_answer": {"en": "Chat: the answer did not help", "fr": "Clavardage : la réponse n'a pas aidé"},
}


class ChatError(PermanentError):
    """Raised when a chat cannot do what was asked (the message says why, for the customer or the agent)."""


@dataclass(frozen=True)
class Line:
    """One message as the widget and the console show it."""

    id: int
    sender: str
    text: str
    buttons: list[dict[str, str]]
    agent: str | None
    at: datetime

    @classmethod
    def of(cls, message: Any, agent_name: str | None) -> Line:
        """The line of a stored ``ChatMessage`` (written by the agent named ``agent_name``, if by one)."""
        return cls(int(message.id), str(message.sender), str(message.text), list(message.buttons or []), agent_name,
                   _aware(message.created_at))

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "from": self.sender, "text": self.text, "buttons": self.buttons,
                "agent": self.agent, "at": self.at.isoformat()}


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def supported_language(value: object) -> str:
    """``value`` if it is a language the chat speaks, else the default one."""
    return str(value) if value in SUPPORTED_LANGUAGES else DEFAULT_LANGUAGE


def team_of_account(account_number: str | None) -> str:
    """The team that serves an account ("US-..." accounts: the US team; everyone else: Canada's)."""
    return "US" if (account_number or "").upper().startswith("US-") else "CA"


def open_conversation(session: Session, language: str | None, identity: Identity | None = None,
                      token: str | None = None) -> tuple[Any, str]:
    """A new conversation (flushed) and the key its browser keeps (shown once, stored hashed)."""
    key = secrets.token_urlsafe(32)
    conversation = Conversation(
        sender_id=f"chat-{uuid.uuid4().hex}", key_hash=_hash(key), language=supported_language(language),
        owner="bot",
        team=team_of_account(identity.account_number if identity else None),
    )
    session.add(conversation)
    identify(conversation, identity, token)
    session.flush()
    return conversation, key


def identify(conversation: Any, identity: Identity | None, token: str | None) -> None:
    """Note who the customer proved to be (or that they are anonymous) and the token the bot will verify."""
    conversation.identity_token = token if identity is not None else None
    conversation.portal_user_id = identity.user_id if identity is not None else None
    if identity is not None and conversation.owner == "bot":
        conversation.team = team_of_account(identity.account_number)


def by_key(session: Session, key: str | None, *, locked: bool = False) -> Any:
    """The conversation whose browser holds ``key``, or None; ``locked``: under a row lock, as ``lock`` takes."""
    if not key or len(key) > 200:
        return None
    return session.execute(_conversation_where(Conversation.key_hash == _hash(key), locked)).scalar_one_or_none()


def by_sender(session: Session, sender_id: str) -> Any:
    """The hub's conversation Rasa knows as ``sender_id``, or None (a conversation through Rasa's own channels)."""
    return session.execute(select(Conversation).where(Conversation.sender_id == sender_id)).scalar_one_or_none()


def of_ticket(session: Session, ticket_id: int, *, locked: bool = False) -> Any:
    """The conversation a chat ticket was made from, or None; ``locked``: under a row lock, as ``lock`` takes."""
    return session.execute(_conversation_where(Conversation.ticket_id == ticket_id, locked)).scalar_one_or_none()


def lock(session: Session, conversation: Any) -> Any:
    """The conversation, re-read under a row lock held until the transaction ends (two replicas, an agent and
    the customer, change it one after the other)."""
    return session.execute(_conversation_where(Conversation.id == conversation.id, True)).scalar_one()


def _conversation_where(condition: Any, locked: bool) -> Any:
    """The query of the conversation matching ``condition``; ``locked``: read again under a row lock held until
    the transaction ends (whatever the session held of it before)."""
    query = select(Conversation).where(condition)
    return query.with_for_update().execution_options(populate_existing=True) if locked else query


def _publish(session: Session, conversation: Any, kind: str, agent_id: int | None = None, **data: Any) -> None:
    publish(session, kind, str(conversation.team), conversation.ticket_id, agent_id,
            conversation=int(conversation.id), **data)


def by_client_id(session: Session, conversation: Any, client_id: str) -> Any:
    """The customer message the browser sent with ``client_id``, or None."""
    return session.execute(select(ChatMessage).where(ChatMessage.conversation_id == conversation.id,
                                                     ChatMessage.client_id == client_id)).scalar_one_or_none()


def add_message(session: Session, conversation: Any, sender: str, text: str, *, agent_id: int | None = None,
                buttons: list[dict[str, str]] | None = None, client_id: str | None = None) -> Any:
    """Store a message (a customer's without its card data) and announce it; a customer message whose
    ``client_id`` is stored already is returned as it was (a retried send)."""
    return add_message_once(session, conversation, sender, text, agent_id=agent_id, buttons=buttons,
                            client_id=client_id)[0]


def add_message_once(session: Session, conversation: Any, sender: str, text: str, *, agent_id: int | None = None,
                     buttons: list[dict[str, str]] | None = None, client_id: str | None = None) -> tuple[Any, bool]:
    """``add_message``, and whether the message is new (False: a retried send, stored before)."""
    if client_id is not None and (stored := by_client_id(session, conversation, client_id)) is not None:
        return stored, False
    clean = redact_card_data(text).text if sender == "customer" else text
    message = ChatMessage(conversation_id=conversation.id, sender=sender, agent_id=agent_id, text=clean[:MAX_TEXT],
                          buttons=buttons or [], client_id=client_id)
    if client_id is None:
        session.add(message)
        session.flush()
    else:
        try:
            with session.begin_nested():
                session.add(message)
                session.flush()
        except IntegrityError:  # the same send, retried, won the race
            return by_client_id(session, conversation, str(client_id)), False
    conversation.updated_at = utcnow()
    _publish(session, conversation, "chat.message", agent_id, sender=sender, message=int(message.id))
    return message, True


def lines(session: Session, conversation_id: int, after: int = 0, limit: int = 500, upto: int | None = None
          ) -> list[Line]:
    """The messages of a conversation after the id ``after`` (up to ``upto``), oldest first."""
    query = (select(ChatMessage, Agent.name).outerjoin(Agent, Agent.id == ChatMessage.agent_id)
             .where(ChatMessage.conversation_id == conversation_id, ChatMessage.id > after))
    if upto is not None:
        query = query.where(ChatMessage.id <= upto)
    rows = session.execute(query.order_by(ChatMessage.id).limit(limit)).all()
    return [Line.of(message, name) for message, name in rows]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def describe(session: Session, conversation: Any) -> dict[str, Any]:
    """The conversation as the widget shows it."""
    agent = session.get(Agent, conversation.agent_id) if conversation.agent_id else None
    return {"id": str(conversation.sender_id), "state": str(conversation.owner), "language": str(conversation.language),
            "agent": str(agent.name) if agent is not None and conversation.owner == "agent" else None,
            "rated": conversation.rating is not None}


def agents_signed_in(session: Session, team: str, now: datetime | None = None) -> int:
    """How many active agents of ``team`` have a live console session."""
    return len(signed_in_agents(session, team, now))


def expected_wait_minutes(session: Session, team: str, agents: int) -> int:
    """A rough wait for a chat joining the team's queue now: the chats waiting before it, shared by the agents."""
    waiting = int(session.execute(select(func.count()).select_from(Conversation)
                                  .where(Conversation.owner == "queue", Conversation.team == team)).scalar_one())
    return max(1, math.ceil((waiting + 1) * MINUTES_PER_CHAT / max(1, agents)))


def problem_text(session: Session, conversation_id: int) -> str:
    """What the customer last wrote that says their problem (their latest message that is not a button)."""
    for line in reversed(lines(session, conversation_id)):
        if line.sender == "customer" and not line.text.startswith("/") and len(line.text.split()) >= 2:
            return line.text
    return ""


def hand_off(session: Session, conversation: Any, reason: str, now: datetime | None = None) -> Any:
    """Give the conversation to its team's queue: a chat ticket appears in the console, the bot stops answering.
    Returns the ticket (the same one when the conversation is handed off already)."""
    conversation = lock(session, conversation)
    if conversation.owner in ("queue", "agent") and conversation.ticket_id:
        return session.get(Ticket, conversation.ticket_id)
    if conversation.owner == "closed":
        raise ChatError("the conversation has ended")
    reason = reason if reason in REASONS else "customer_request"
    language = str(conversation.language)
    user = session.get(PortalUser, conversation.portal_user_id) if conversation.portal_user_id else None
    account = session.get(Account, user.account_id) if user is not None else None
    problem = problem_text(session, int(conversation.id))
    subject = SUBJECTS[reason][language] + (f" — {problem[:120]}" if problem else "")
    priority = "high" if reason == "card_number" else "normal"
    ticket = flush_with_reference(session, TICKET_PREFIX, lambda reference: Ticket(
        reference=reference, channel="chat", team=conversation.team, mailbox=CHAT_MAILBOX, queue="general",
        priority=priority, priority_rank=priority_rank(priority), language=language, status="new",
        subject=subject[:500], customer_email=str(user.email) if user is not None else "",
        customer_name=str(user.name) if user is not None else None,
        account_id=int(account.id) if account is not None else None,
    ))
    conversation.owner, conversation.ticket_id, conversation.reason = "queue", int(ticket.id), reason
    conversation.handed_off_at = now or utcnow()
    conversation.agent_id = None
    audit.record(session, "chat_handoff", agent_id=None, team=str(ticket.team), ticket_id=int(ticket.id),
                 after={"owner": "queue", "reason": reason}, detail=str(conversation.sender_id))
    publish(session, "ticket.created", str(ticket.team), int(ticket.id), reference=str(ticket.reference),
            chat=True, reason=reason, language=language)
    _publish(session, conversation, "chat.state", owner="queue")
    return ticket


def _chat_of(session: Session, agent: AgentView, ticket_id: int) -> tuple[Any, Any]:
    """The ticket the agent may see, and its conversation under a row lock."""
    ticket = visible_ticket(session, agent, ticket_id)
    conversation = of_ticket(session, ticket_id, locked=True)
    if conversation is None:
        raise TicketError("this ticket is not a chat")
    return ticket, conversation


def _notice(session: Session, conversation: Any, kind: str, agent: AgentView) -> None:
    text = NOTICES[kind][str(conversation.language)].format(agent=agent.name)
    add_message(session, conversation, "system", text, agent_id=agent.id)


def claim(session: Session, agent: AgentView, ticket_id: int) -> Any:
    """The agent takes the chat (from the queue, or from a colleague): they answer the customer from now on."""
    ticket, conversation = _chat_of(session, agent, ticket_id)
    if conversation.owner == "closed":
        raise TicketError("the chat has ended")
    if conversation.owner == "bot":
        raise TicketError("the chat was handed back to the virtual assistant")
    if conversation.owner == "agent" and conversation.agent_id == agent.id:
        return conversation
    before = {"owner": conversation.owner, "agent_id": conversation.agent_id}
    conversation.owner, conversation.agent_id = "agent", agent.id
    conversation.updated_at = utcnow()
    ticket.assignee_id, ticket.updated_at = agent.id, utcnow()
    if ticket.status == "new":
        ticket.status = "open"
    audit.record(session, "chat_claim", agent_id=agent.id, team=str(ticket.team), ticket_id=int(ticket.id),
                 before=before, after={"owner": "agent", "agent_id": agent.id})
    _notice(session, conversation, "joined", agent)
    publish(session, "ticket.changed", str(ticket.team), int(ticket.id), agent.id, field="assignee_id",
            reference=str(ticket.reference))
    _publish(session, conversation, "chat.state", agent.id, owner="agent")
    return conversation


def say(session: Session, agent: AgentView, ticket_id: int, text: str) -> Any:
    """An agent's message to the customer; writing takes the chat if someone else (or nobody) had it."""
    clean = redact_card_data(text.strip()).text
    if not clean:
        raise TicketError("the message is empty")
    if len(clean) > MAX_TEXT:
        raise TicketError(f"a chat message holds at most {MAX_TEXT} characters")
    conversation = claim(session, agent, ticket_id)
    message = add_message(session, conversation, "agent", clean, agent_id=agent.id)
    audit.record(session, "chat_message", agent_id=agent.id, team=str(conversation.team), ticket_id=ticket_id,
                 detail=f"message {message.id}")
    return message


def hand_back(session: Session, agent: AgentView, ticket_id: int) -> Any:
    """The agent gives the conversation back to the bot (the hub then has the bot say so); the ticket is solved."""
    ticket, conversation = _chat_of(session, agent, ticket_id)
    if conversation.owner not in ("queue", "agent"):
        raise TicketError("only a chat an agent or the queue holds can be handed back")
    before = {"owner": conversation.owner, "agent_id": conversation.agent_id}
    _notice(session, conversation, "handed_back", agent)
    conversation.owner, conversation.agent_id, conversation.updated_at = "bot", None, utcnow()
    _solve(session, agent, ticket, "chat_hand_back", before, {"owner": "bot"})
    _publish(session, conversation, "chat.state", agent.id, owner="bot")
    return conversation


def close(session: Session, agent: AgentView, ticket_id: int) -> Any:
    """The agent ends the conversation: the customer sees it ended and may rate it; the ticket is solved."""
    ticket, conversation = _chat_of(session, agent, ticket_id)
    if conversation.owner == "closed":
        raise TicketError("the chat has ended already")
    before = {"owner": conversation.owner, "agent_id": conversation.agent_id}
    _notice(session, conversation, "closed", agent)
    conversation.owner, conversation.closed_at, conversation.updated_at = "closed", utcnow(), utcnow()
    _solve(session, agent, ticket, "chat_close", before, {"owner": "closed"})
    _publish(session, conversation, "chat.state", agent.id, owner="closed")
    return conversation


def _solve(session: Session, agent: AgentView, ticket: Any, action: str, before: dict[str, Any],
           after: dict[str, Any]) -> None:
    ticket.status, ticket.updated_at = "solved", utcnow()
    if ticket.assignee_id is None:
        ticket.assignee_id = agent.id
    audit.record(session, action, agent_id=agent.id, team=str(ticket.team), ticket_id=int(ticket.id),
                 before=before, after=after)
    publish(session, "ticket.changed", str(ticket.team), int(ticket.id), agent.id, field="status",
            reference=str(ticket.reference))


def typing(session: Session, conversation: Any, who: str, is_typing: bool, agent: AgentView | None = None) -> None:
    """Announce that the customer (or the agent) is typing, or stopped (nothing is stored)."""
    _publish(session, conversation, "chat.typing", agent.id if agent else None, sender=who, typing=bool(is_typing),
             name=agent.name if agent else None)


def rate(session: Session, conversation: Any, stars: int, comment: str | None) -> None:
    """The customer's rating of an ended chat (once; 1 to 5 stars)."""
    conversation = lock(session, conversation)
    if conversation.owner != "closed":
        raise ChatError("a chat can be rated once it has ended")
    if conversation.rating is not None:
        raise ChatError("this chat was rated already")
    if not 1 <= stars <= 5:
        raise ChatError("a rating is 1 to 5 stars")
    conversation.rating, conversation.rating_comment = stars, (redact_card_data(comment).text[:2000] if comment else None)
    audit.record(session, "chat_rating", agent_id=None, team=str(conversation.team), ticket_id=conversation.ticket_id,
                 after={"rating": stars}, detail=str(conversation.sender_id))
    _publish(session, conversation, "chat.state", owner="closed", rating=stars)


def unclaimed(session: Session, waited: timedelta, now: datetime | None = None) -> list[Any]:
    """Conversations waiting in a queue for longer than ``waited``."""
    cutoff = (now or datetime.now(timezone.utc)) - waited
    return list(session.execute(select(Conversation).where(Conversation.owner == "queue",
                                                           Conversation.handed_off_at < cutoff)).scalars())


def give_back_unclaimed(session: Session, conversation: Any) -> bool:
    """A chat nobody claimed goes back to the bot (which offers an email ticket); its chat ticket is closed.
    False if someone claimed it meanwhile."""
    conversation = lock(session, conversation)
    if conversation.owner != "queue":
        return False
    text = NOTICES["unclaimed"][str(conversation.language)]
    add_message(session, conversation, "system", text)
    conversation.owner, conversation.updated_at = "bot", utcnow()
    ticket = session.get(Ticket, conversation.ticket_id) if conversation.ticket_id else None
    if ticket is not None:
        ticket.status, ticket.updated_at = "closed", utcnow()
        audit.record(session, "chat_unclaimed", agent_id=None, team=str(ticket.team), ticket_id=int(ticket.id),
                     before={"owner": "queue"}, after={"owner": "bot"}, detail=str(conversation.sender_id))
        publish(session, "ticket.changed", str(ticket.team), int(ticket.id), field="status",
                reference=str(ticket.reference))
    _publish(session, conversation, "chat.state", owner="bot")
    return True


def transcript(session: Session, conversation: Any) -> str:
    """The conversation as text for a ticket, in its language (card data was never stored)."""
    language = str(conversation.language)
    out = []
    for line in lines(session, int(conversation.id), limit=2000):
        who = line.agent if line.sender == "agent" and line.agent else SPEAKERS.get(line.sender, SPEAKERS["system"])[language]
        out.append(f"{who}: {line.text}")
    return "\n".join(out)


def email_ticket(session: Session, *, email: str, language: str, team: str, text: str, reason: str,
                 name: str | None = None, account_id: int | None = None) -> Any:
    """A ticket an agent answers by email (no agent could chat): the transcript as the customer's message, in
    the customer's language, in the mailroom's store. Returns the ticket (flushed)."""
    language = supported_language(language)
    reason = reason if reason in REASONS else "customer_request"
    subject = SUBJECTS[reason][language]
    clean = redact_card_data(text).text
    ticket = flush_with_reference(session, TICKET_PREFIX, lambda reference: Ticket(
        reference=reference, channel="email", team=team, mailbox=CHAT_MAILBOX, queue="general", priority="normal",
        priority_rank=priority_rank("normal"), language=language, status="new", subject=subject,
        customer_email=email[:320], customer_name=name, account_id=account_id,
    ))
    session.add(TicketMessage(ticket_id=ticket.id, direction="in", kind="mail", from_address=email[:320],
                              subject=subject, text=clean, language=language, size=len(clean.encode())))
    audit.record(session, "chat_email_ticket", agent_id=None, team=team, ticket_id=int(ticket.id),
                 after={"reason": reason, "email": email})
    publish(session, "ticket.created", team, int(ticket.id), reference=str(ticket.reference))
    return ticket
