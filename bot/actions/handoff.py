"""Handing a conversation to a person: live in the support site's chat when an agent can come, otherwise an
email ticket with the conversation, with the customer's consent.

``action_start_handoff`` runs when the customer asks for a person, after two misunderstandings in a row, for a
billing request only a person can settle (``needs_agent``) and after a card number typed in the chat. A
conversation of the chat hub (the support site's widget, ``core.chats``) goes to its team's queue when agents chat
now (business hours, at least one of the team signed in): the bot says an agent is coming and roughly when, and
the hub stops passing the customer's messages to Rasa until an agent hands the chat back. A conversation that
reached Rasa by its own channels (REST, socket.io) cannot be joined by an agent: the customer is offered an email
ticket, as they are outside business hours or when nobody is signed in (slot ``agent_coming`` false; the rules
then offer the ticket and ``handoff_form`` asks for an address unless the customer's verified one is known).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.dates import format_datetime
from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

from bot.actions.conversation import bot_actions_newest_first, language_of
from bot.actions.identity import verified_identity
from bot.actions.services import Services, get_services
from core import chats
from core.db.engine import unit_of_work
from core.entities import find_email
from core.hours import BusinessHours, load_business_hours

logger = logging.getLogger(__name__)

# Messages that steer the handoff itself, not the customer's problem: left out of the request's context.
STEERING_INTENTS = frozenset({"affirm", "deny", "human_handoff", "thank", "greet", "goodbye"})
MISUNDERSTOOD = frozenset({"nlu_fallback", "out_of_scope"})


def business_hours(path: Path) -> BusinessHours:
    """The business hours file, read again when it changed."""
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = 0
    return _business_hours(path, stamp)


@lru_cache(maxsize=8)
def _business_hours(path: Path, stamp: int) -> BusinessHours:
    return load_business_hours(path)


def handoff_reason(tracker: Tracker) -> str:
    """Why the handoff starts (``core.chats.REASONS``)."""
    latest = (tracker.latest_message.get("intent") or {}).get("name")
    if latest == "needs_agent":
        return "needs_person"
    if latest == "share_card_number":
        return "card_number"
    if latest in MISUNDERSTOOD:
        return "repeated_misunderstanding"
    if latest == "affirm":
        actions = bot_actions_newest_first(tracker.events)
        if "utter_offer_human" in actions:
            offered = actions.index("utter_offer_human")
            if actions[offered + 1 : offered + 2] == ["utter_feedback_sorry"]:
                return "unhelpful_answer"
    return "customer_request"


def tracker_transcript(tracker: Tracker, language: str) -> str:
    """The conversation as text, from the tracker (a conversation the chat hub does not hold)."""
    names = chats.SPEAKERS
    lines = []
    for event in tracker.events:
        text = event.get("text")
        if event.get("event") == "user" and text and not str(text).startswith("/"):
            lines.append(f"{names['customer'][language]}: {text}")
        elif event.get("event") == "bot" and text:
            lines.append(f"{names['bot'][language]}: {text}")
    return "\n".join(lines[-60:])


class ActionStartHandoff(Action):
    """Bring in an agent now when one can come, else say why not (the rules then offer an email ticket)."""

    def __init__(self, services: Services | None = None, now: Any = None) -> None:
        self._services = services
        self._now = now

    def name(self) -> str:
        return "action_start_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        services = self._services or get_services()
        reason, language = handoff_reason(tracker), language_of(tracker)
        now = self._now() if self._now else datetime.now(timezone.utc)
        identity = verified_identity(tracker, services)
        events: list[dict[str, Any]] = [SlotSet("handoff_reason", reason)]
        if identity is not None and not tracker.get_slot("contact_email"):
            events.append(SlotSet("contact_email", identity.email))
        if reason == "needs_person":
            dispatcher.utter_message(response="utter_needs_person")
        try:
            with unit_of_work(services.sessions) as session:
                conversation = chats.by_sender(session, tracker.sender_id)
                if conversation is None:
                    dispatcher.utter_message(response="utter_no_live_chat")
                    return [*events, SlotSet("agent_coming", False)]
                hours = business_hours(services.settings.business_hours_file)
                if not hours.is_open(now):
                    opening = hours.next_opening(now)
                    dispatcher.utter_message(response="utter_agents_closed", opening=format_datetime(
                        opening, "EEEE d MMMM, H 'h' mm" if language == "fr" else "EEEE, MMMM d, h:mm a",
                        locale=language) if opening else "?")
                    return [*events, SlotSet("agent_coming", False)]
                team = str(conversation.team)
                agents = chats.agents_signed_in(session, team, now)
                if agents == 0:
                    dispatcher.utter_message(response="utter_agents_busy")
                    return [*events, SlotSet("agent_coming", False)]
                wait = chats.expected_wait_minutes(session, team, agents)
                chats.hand_off(session, conversation, reason, now)
        except SQLAlchemyError:
            logger.exception("Could not hand conversation %s to an agent", tracker.sender_id)
            dispatcher.utter_message(response="utter_technical_problem")
            return [*events, SlotSet("agent_coming", False)]
        dispatcher.utter_message(response="utter_agent_coming", wait=wait)
        return [*events, SlotSet("agent_coming", True)]


class ValidateHandoffForm(FormValidationAction):
    """Accept a syntactically valid email address; otherwise say so and ask again."""

    def name(self) -> str:
        return "validate_handoff_form"

    def validate_contact_email(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        email = find_email(str(slot_value) if slot_value is not None else None)
        if email is None:
            dispatcher.utter_message(response="utter_invalid_email")
        return {"contact_email": email}


class ActionRequestHuman(Action):
    """Create the email ticket (the conversation as its first message) and tell the customer its reference and
    where the agent will write."""

    def __init__(self, services: Services | None = None) -> None:
        self._services = services

    def name(self) -> str:
        return "action_request_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        services = self._services or get_services()
        contact_email = tracker.get_slot("contact_email")
        language = language_of(tracker)
        identity = verified_identity(tracker, services)
        try:
            with unit_of_work(services.sessions) as session:
                conversation = chats.by_sender(session, tracker.sender_id)
                text = chats.transcript(session, conversation) if conversation is not None else \
                    tracker_transcript(tracker, language)
                team = str(conversation.team) if conversation is not None else \
                    chats.team_of_account(identity.account_number if identity else None)
                ticket = chats.email_ticket(
                    session, email=str(contact_email), language=language, team=team, text=text,
                    reason=str(tracker.get_slot("handoff_reason") or (conversation.reason if conversation is not None else "")),
                    name=identity.name if identity else None, account_id=identity.account_id if identity else None)
                reference = str(ticket.reference)
        except SQLAlchemyError:
            # The customer must not believe an agent will write when nothing was recorded.
            logger.exception("Could not create the email ticket of conversation %s", tracker.sender_id)
            dispatcher.utter_message(response="utter_technical_problem")
            return []
        dispatcher.utter_message(response="utter_handoff_recorded", reference=reference, contact_email=contact_email)
        return []
