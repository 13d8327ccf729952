"""Rasa NLU component that annotates every message with its language guess.

The guess is stored in the parse data under ``language`` (``{"language": "fr", "confidence": 0.98,
"decisive": true}``); ``bot.policies.LanguagePolicy`` combines it with the conversation's language, which only
the tracker knows.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from core.language import LanguageDetector

LANGUAGE_KEY = "language"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class LanguageAnnotator(GraphComponent):
    """Adds ``language`` (a guess and whether it is decisive) to each parsed message."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """``seed`` makes langdetect deterministic."""
        return {"seed": 0}

    def __init__(self, detector: LanguageDetector) -> None:
        self._detector = detector

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LanguageAnnotator:
        """Load the language profiles once per model load."""
        return cls(LanguageDetector(seed=int(config["seed"])))

    def process(self, messages: list[Message]) -> list[Message]:
        """Annotate each message in place."""
        for message in messages:
            text = message.get(TEXT) or ""
            guess = self._detector.detect(text)
            message.set(
                LANGUAGE_KEY,
                {"language": guess.language, "confidence": guess.confidence, "decisive": guess.decisive},
                add_to_output=True,
            )
        return messages
