"""Rasa NLU component that recognises a card number in a message, whatever else it says.

A customer who types a card number must be told, every time, that payments are made in the Billing Portal: the
intent becomes ``share_card_number`` with full confidence, the rest of the ranking kept. The number itself is
removed from everything stored (``bot.tracker_store``) and logged (``core.redaction.install_log_redaction``).
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from core.redaction import contains_card_number

CARD_INTENT = "share_card_number"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class CardNumberDetector(GraphComponent):
    """Overrides the intent with ``share_card_number`` when the text holds a Luhn-valid card number."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> CardNumberDetector:
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        """Set the card intent on messages that hold a card number."""
        for message in messages:
            if not contains_card_number(message.get(TEXT) or ""):
                continue
            top = {INTENT_NAME_KEY: CARD_INTENT, PREDICTED_CONFIDENCE_KEY: 1.0}
            ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != CARD_INTENT]
            message.set(INTENT, top, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [top] + ranking, add_to_output=True)
        return messages
