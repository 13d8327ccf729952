"""Handing a conversation to a person: collect a contact email, record the request, give its reference."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

from bot.actions.conversation import bot_actions_newest_first, language_of, user_messages_newest_first
from bot.actions.services import Services, get_services
from core.entities import find_email
from core.handoff import HandoffReason, record_handoff_request

logger = logging.getLogger(__name__)

# Messages that steer the handoff itself, not the customer's problem: left out of the request's context.
STEERING_INTENTS = frozenset({"affirm", "deny", "human_handoff", "thank", "greet", "goodbye"})


def handoff_reason(tracker: Tracker) -> HandoffReason:
    """Why the handoff started: the customer asked, or the assistant offered after failing to help."""
    for text, intent in user_messages_newest_first(tracker):
        if intent == "human_handoff":
            return HandoffReason.CUSTOMER_REQUEST
        if intent == "affirm":
            break
    actions = bot_actions_newest_first(tracker.events)
    if "utter_offer_human" in actions:
        offered = actions.index("utter_offer_human")
        if actions[offered + 1 : offered + 2] == ["utter_feedback_sorry"]:
            return HandoffReason.UNHELPFUL_ANSWER
        return HandoffReason.REPEATED_MISUNDERSTANDING
    return HandoffReason.CUSTOMER_REQUEST


def problem_statement(tracker: Tracker, contact_email: str | None) -> str | None:
    """The customer's latest message about their problem (not "yes", not the email address)."""
    for text, intent in user_messages_newest_first(tracker):
        if intent in STEERING_INTENTS or text.startswith("/"):
            continue
        if contact_email and find_email(text) == contact_email:
            continue
        return text
    return None


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
    """Record the request for an agent and tell the customer its reference and where the agent will write."""

    def __init__(self, services: Services | None = None) -> None:
        self._services = services

    def name(self) -> str:
        return "action_request_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        contact_email = tracker.get_slot("contact_email")
        try:
            request = record_handoff_request(
                (self._services or get_services()).sessions,
                conversation_id=tracker.sender_id,
                language=language_of(tracker),
                reason=handoff_reason(tracker),
                contact_email=contact_email,
                last_message=problem_statement(tracker, contact_email),
            )
        except SQLAlchemyError:
            # The customer must not believe an agent will write when nothing was recorded.
            logger.exception("Could not record the handoff request of conversation %s", tracker.sender_id)
            dispatcher.utter_message(response="utter_technical_problem")
            return []
        dispatcher.utter_message(
            response="utter_handoff_recorded", reference=request.reference, contact_email=contact_email
        )
        return []
