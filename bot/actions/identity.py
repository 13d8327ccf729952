"""Who is asking: the verified identity of the latest message, and the base of every account action.

The Billing Portal sends a signed token with each message (metadata ``auth_token``). Without a valid one the
customer is anonymous: an account action then answers with the general FAQ and how to log in, never with account
data. Refusals are logged with their reason and the conversation id, never with the token.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable
from datetime import date
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from bot.actions.conversation import language_of
from bot.actions.services import Services, get_services
from core.identity import TOKEN_METADATA_KEY, Identity, IdentityError, MissingToken, verify_token

logger = logging.getLogger(__name__)


def verified_identity(tracker: Tracker, services: Services) -> Identity | None:
    """The identity proven by the latest message's token, or None (anonymous)."""
    metadata = tracker.latest_message.get("metadata") or {}
    token = metadata.get(TOKEN_METADATA_KEY) if isinstance(metadata, dict) else None
    try:
        with services.sessions() as session:
            return verify_token(token, services.settings.signing_secret(), session)
    except MissingToken:
        return None
    except IdentityError as refusal:
        logger.warning("identity refused (%s) in conversation %s", refusal.reason, tracker.sender_id)
        return None


class AccountAction(Action, abc.ABC):
    """An action on the customer's own account: verified customers get ``answer``; anonymous ones the FAQ answer
    of the topic (``faq_response``, when it has one), then how to log in."""

    faq_response: str | None = None

    def __init__(self, services: Services | None = None, today: Callable[[], date] = date.today) -> None:
        self._services = services
        self._today = today

    @property
    def services(self) -> Services:
        return self._services or get_services()

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        identity = verified_identity(tracker, self.services)
        if identity is None:
            # The general answer first (the question may have been a general one), then how to get one's own.
            if self.faq_response:
                dispatcher.utter_message(response=self.faq_response)
            dispatcher.utter_message(response="utter_login_required")
            return self.anonymous_events()
        with self.services.sessions() as session:
            return self.answer(dispatcher, tracker, session, identity, language_of(tracker), self._today())

    def anonymous_events(self) -> list[dict[str, Any]]:
        """Events to return for an anonymous customer."""
        return []

    @abc.abstractmethod
    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, session: Session, identity: Identity,
        language: str, today: date,
    ) -> list[dict[str, Any]]:
        """Reply to a verified customer; return the events to apply."""
