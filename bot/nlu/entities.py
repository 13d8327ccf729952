"""Rasa NLU component that adds the understanding layer's entities (``core.nlp``) to every message.

It runs after ``bot.nlu.language`` (the message's language picks the spaCy pipeline) and puts each entity in the
parse data as Rasa does (``entity``, ``value``, ``start``, ``end``), so they reach the tracker and the actions
read them from ``latest_message``: ``invoice_number`` ("INV-202603-1042"), ``month`` ("2025-03", or "--03"
without a year: the action resolves it against its own date), ``relative_month`` ("-1": last month),
``previous_invoice``, ``money``, ``email``, ``phone``, ``postal_code``, ``zip_code``, ``place`` (its value the
country and province or state, "CA:QC"). A message holding a card number is read with the number masked: no
entity ever carries one. The French model's statistical components are not run here: ``bench/entity_eval.py``
finds the same entities without them, at a tenth of the cost (docs/understanding.md).
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.entities import rasa_entities
from bot.nlu.language import LANGUAGE_KEY
from core.nlp import analyse

@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class BillingEntityExtractor(GraphComponent):
    """Adds the understanding layer's entities to each parsed message."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> BillingEntityExtractor:
        analyse("", "fr"), analyse("", "en")  # load both pipelines with the model, not on the first message
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        """Add the entities of each message, in its detected language."""
        for message in messages:
            text = message.get(TEXT) or ""
            if not text or text.startswith("/"):  # empty, or an intent given by a button's payload
                continue
            language = (message.get(LANGUAGE_KEY) or {}).get("language", "en")
            found = rasa_entities(text, language)
            message.set(ENTITIES, (message.get(ENTITIES) or []) + found, add_to_output=True)
        return messages
