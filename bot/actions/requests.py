"""Requests an agent carries out: adding, removing or changing a portal user, and French at account or user level.

A gate action checks who asks before a form collects what is missing: anonymous customers get the FAQ answer and
how to log in, users whose role may not ask are told who can. Each accepted request is stored with a reference
number that the customer is given.
"""

from __future__ import annotations

import logging
from datetime import date
from collections.abc import Callable
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.actions.conversation import language_of
from bot.actions.identity import AccountAction, verified_identity
from bot.actions.services import Services, get_services
from core.entities import find_email, find_language_level, find_role, find_user_change
from core.db.models import AccountRequest
from core.identity import Identity
from core.requests import (
    ROLES,
    LanguageLevel,
    NotAllowed,
    RequestRefused,
    UserChange,
    check_french_request,
    check_user_change,
    request_french,
    request_user_change,
)
from core.wording import join_words, word

logger = logging.getLogger(__name__)
REQUEST_SLOTS = ("user_change", "user_email", "user_role", "french_level", "french_user_email", "request_allowed")
CHANGE_RESPONSES = {
    UserChange.ADD: "utter_user_add_recorded",
    UserChange.REMOVE: "utter_user_remove_recorded",
    UserChange.CHANGE_ROLE: "utter_user_role_recorded",
}


def who_can(refusal: NotAllowed, language: str) -> str:
    """"Marie Tremblay (marie@…) and Tom Wilson (tom@…)" in the customer's language."""
    return join_words([f"{name} ({email})" for name, email in refusal.who_can], language)


def reset_request_slots() -> list[dict[str, Any]]:
    """Forget a finished or abandoned request, so that the next one starts clean."""
    return [SlotSet(slot, None) for slot in REQUEST_SLOTS]


def explain_refusal(dispatcher: CollectingDispatcher, refusal: RequestRefused, email: str | None, language: str,
                    not_allowed_response: str, account_name: str) -> None:
    """Say why a request cannot be accepted as asked."""
    if isinstance(refusal, NotAllowed):
        dispatcher.utter_message(response=not_allowed_response, account_name=account_name, who_can=who_can(refusal, language))
    elif refusal.code == "unknown_target":
        dispatcher.utter_message(response="utter_user_not_found", email=email or "")
    elif refusal.code == "already_a_user":
        dispatcher.utter_message(response="utter_user_already_exists", email=email or "")


class ActionCheckUserRequest(AccountAction):
    """Gate of a user change: may this customer ask? Prefill what the message already says."""

    faq_response = "utter_faq_add_portal_user"

    def name(self) -> str:
        return "action_check_user_request"

    def anonymous_events(self) -> list[dict[str, Any]]:
        return [SlotSet("request_allowed", False)]

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, session: Session, identity: Identity,
        language: str, today: date,
    ) -> list[dict[str, Any]]:
        asked = find_user_change(tracker.latest_message.get("text") or "")
        change = UserChange(asked.change) if asked.change else None
        events: list[dict[str, Any]] = reset_request_slots()
        try:
            check_user_change(session, identity, None, None)
        except NotAllowed as refusal:
            explain_refusal(dispatcher, refusal, None, language, "utter_request_not_allowed", identity.account_name)
            return events + [SlotSet("request_allowed", False)]
        if change is not None:
            events.append(SlotSet("user_change", change.value))
        if asked.email:
            try:
                check_user_change(session, identity, change, asked.email)
                events.append(SlotSet("user_email", asked.email))
            except RequestRefused as refusal:
                explain_refusal(dispatcher, refusal, asked.email, language, "utter_request_not_allowed",
                                identity.account_name)
        if asked.role:
            events.append(SlotSet("user_role", asked.role))
        return events + [SlotSet("request_allowed", True)]


class ValidateUserRequestForm(FormValidationAction):
    """Collect the kind of change, the user's email and (to add or change a role) the role."""

    def __init__(self, services: Services | None = None) -> None:
        self._services = services

    def name(self) -> str:
        return "validate_user_request_form"

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[str]:
        needed = ["user_change", "user_email"]
        if tracker.get_slot("user_change") in (UserChange.ADD.value, UserChange.CHANGE_ROLE.value):
            needed.append("user_role")
        return needed

    def validate_user_change(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(slot_value or "")
        change = text if text in {c.value for c in UserChange} else find_user_change(text).change
        if change is None:
            dispatcher.utter_message(response="utter_invalid_user_change")
        return {"user_change": change}

    def validate_user_email(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        email = find_email(str(slot_value or ""))
        if email is None:
            dispatcher.utter_message(response="utter_invalid_email")
            return {"user_email": None}
        services = self._services or get_services()
        identity = verified_identity(tracker, services)
        if identity is None:
            dispatcher.utter_message(response="utter_login_required")
            return {"user_email": None}
        change = tracker.get_slot("user_change")
        try:
            with services.sessions() as session:
                check_user_change(session, identity, UserChange(change) if change else None, email)
        except RequestRefused as refusal:
            explain_refusal(dispatcher, refusal, email, language_of(tracker), "utter_request_not_allowed",
                            identity.account_name)
            return {"user_email": None}
        return {"user_email": email}

    def validate_user_role(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(slot_value or "")
        role = text if text in ROLES else find_role(text)
        if role is None:
            dispatcher.utter_message(response="utter_invalid_role")
        return {"user_role": role}


def store_request(
    dispatcher: CollectingDispatcher, tracker: Tracker, identity: Identity, email: str | None, language: str,
    refused_response: str, what: str, store: Callable[[], AccountRequest],
) -> AccountRequest | None:
    """Store a request; when the role may not ask it, or the store fails, tell the customer and return None."""
    try:
        return store()
    except RequestRefused as refusal:
        explain_refusal(dispatcher, refusal, email, language, refused_response, identity.account_name)
    except SQLAlchemyError:
        logger.exception("Could not store the %s request of conversation %s", what, tracker.sender_id)
        dispatcher.utter_message(response="utter_technical_problem")
    return None


class ActionSubmitUserRequest(AccountAction):
    """Store the user change with a reference and tell the customer."""

    def name(self) -> str:
        return "action_submit_user_request"

    def anonymous_events(self) -> list[dict[str, Any]]:
        return reset_request_slots()

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, session: Session, identity: Identity,
        language: str, today: date,
    ) -> list[dict[str, Any]]:
        change = UserChange(tracker.get_slot("user_change"))
        email, role = tracker.get_slot("user_email"), tracker.get_slot("user_role")
        request = store_request(
            dispatcher, tracker, identity, email, language, "utter_request_not_allowed", "user",
            lambda: request_user_change(self.services.sessions, identity, change, email, role, tracker.sender_id),
        )
        if request is not None:
            dispatcher.utter_message(
                response=CHANGE_RESPONSES[change], reference=request.reference, email=email,
                role=word(role, language) if role else "", requester=identity.email,
            )
        return reset_request_slots()


class ActionCheckFrenchRequest(AccountAction):
    """Gate of a request for French: prefill the level (and the user) the message names, refuse what the
    customer's role may not ask."""

    faq_response = "utter_faq_french_language"

    def name(self) -> str:
        return "action_check_french_request"

    def anonymous_events(self) -> list[dict[str, Any]]:
        return [SlotSet("request_allowed", False)]

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, session: Session, identity: Identity,
        language: str, today: date,
    ) -> list[dict[str, Any]]:
        text = tracker.latest_message.get("text") or ""
        email = find_email(text)
        level = find_language_level(text) or ("user" if email else None)
        events: list[dict[str, Any]] = reset_request_slots()
        try:
            check_french_request(session, identity, LanguageLevel(level) if level else None, email)
        except RequestRefused as refusal:
            explain_refusal(dispatcher, refusal, email, language, "utter_language_not_allowed", identity.account_name)
            return events + [SlotSet("request_allowed", False)]
        if level:
            events.append(SlotSet("french_level", level))
        if email:
            events.append(SlotSet("french_user_email", email))
        return events + [SlotSet("request_allowed", True)]


class ValidateLanguageRequestForm(FormValidationAction):
    """Collect the level (whole account, or one user's portal interface), refusing what the role may not ask."""

    def __init__(self, services: Services | None = None) -> None:
        self._services = services

    def name(self) -> str:
        return "validate_language_request_form"

    def validate_french_level(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(slot_value or "")
        level = text if text in {lv.value for lv in LanguageLevel} else find_language_level(text)
        if level is None:
            dispatcher.utter_message(response="utter_invalid_french_level")
            return {"french_level": None}
        services = self._services or get_services()
        identity = verified_identity(tracker, services)
        if identity is None:
            dispatcher.utter_message(response="utter_login_required")
            return {"french_level": None}
        try:
            with services.sessions() as session:
                check_french_request(session, identity, LanguageLevel(level), tracker.get_slot("french_user_email"))
        except RequestRefused as refusal:
            explain_refusal(dispatcher, refusal, None, language_of(tracker), "utter_language_not_allowed",
                            identity.account_name)
            return {"french_level": None}
        return {"french_level": level}


class ActionSubmitFrenchRequest(AccountAction):
    """Store the request for French with a reference and tell the customer what it will change."""

    def name(self) -> str:
        return "action_submit_french_request"

    def anonymous_events(self) -> list[dict[str, Any]]:
        return reset_request_slots()

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, session: Session, identity: Identity,
        language: str, today: date,
    ) -> list[dict[str, Any]]:
        level = LanguageLevel(tracker.get_slot("french_level"))
        email = tracker.get_slot("french_user_email")
        request = store_request(
            dispatcher, tracker, identity, email, language, "utter_language_not_allowed", "French",
            lambda: request_french(self.services.sessions, identity, level, email, tracker.sender_id),
        )
        if request is not None:
            recorded = "utter_french_account_recorded" if level is LanguageLevel.ACCOUNT else "utter_french_user_recorded"
            dispatcher.utter_message(
                response=recorded, reference=request.reference, account_name=identity.account_name,
                email=(email or identity.email),
            )
        return reset_request_slots()


class ActionCancelRequest(Action):
    """The customer gave up a request: forget it and say so."""

    def name(self) -> str:
        return "action_cancel_request"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        dispatcher.utter_message(response="utter_request_cancelled")
        return reset_request_slots()
