"""Records the customer's answer to "Was this helpful?" against the FAQ article just answered."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError

from bot.actions.conversation import language_of, last_action_with_prefix, latest_intent
from bot.actions.services import Services, get_services
from core.feedback import record_feedback

FAQ_RESPONSE_PREFIX = "utter_faq_"
logger = logging.getLogger(__name__)


class ActionRecordFeedback(Action):
    """Store helpful (affirm) or not helpful (deny) for the latest FAQ answer; the rules send the reply."""

    def __init__(self, services: Services | None = None) -> None:
        self._services = services

    def name(self) -> str:
        return "action_record_feedback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        answered = last_action_with_prefix(tracker, FAQ_RESPONSE_PREFIX)
        if answered is None:
            return []
        try:
            record_feedback(
                (self._services or get_services()).sessions,
                conversation_id=tracker.sender_id,
                article_id=answered[len(FAQ_RESPONSE_PREFIX):],
                language=language_of(tracker),
                helpful=latest_intent(tracker) == "affirm",
            )
        except SQLAlchemyError:
            # Losing one rating is better than leaving the customer without a reply: logged, not shown.
            logger.exception("Could not record feedback of conversation %s", tracker.sender_id)
        return []
