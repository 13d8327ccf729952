"""Rasa NLU component that annotates every message with its language guess.

The guess is stored in the parse data under ``language`` (``{"language": "fr", "confidence": 0.98,
"decisive": true}``); ``bot.policies.LanguagePolicy`` combines it with the conversation's language, which only
the tracker knows. Training learns per-word evidence (``core.language.Lexicon``) from the training examples
whose language is known: every block of the NLU data carries ``metadata: {language: en|fr}`` (the generated FAQ
data and the hand-written files alike), and the lexicon is stored in the model archive.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import METADATA, METADATA_EXAMPLE, METADATA_INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from core.language import SUPPORTED_LANGUAGES, LanguageDetector, Lexicon

LANGUAGE_KEY = "language"
LEXICON_FILE = "language_lexicon.json"
logger = logging.getLogger(__name__)


def example_language(message: Message) -> str | None:
    """The language a training example is labelled with (example-level, else block-level metadata)."""
    metadata = message.get(METADATA) or {}
    for level in (METADATA_EXAMPLE, METADATA_INTENT):
        language = (metadata.get(level) or {}).get(LANGUAGE_KEY)
        if language in SUPPORTED_LANGUAGES:
            return str(language)
    return None


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=True)
class LanguageAnnotator(GraphComponent):
    """Adds ``language`` (a guess and whether it is decisive) to each parsed message."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """``seed`` makes langdetect deterministic."""
        return {"seed": 0}

    def __init__(
        self, config: dict[str, Any], model_storage: ModelStorage, resource: Resource, lexicon: Lexicon
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._detector = LanguageDetector(seed=int(config["seed"]), lexicon=lexicon)

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LanguageAnnotator:
        """An annotator without learnt vocabulary (training adds it)."""
        return cls(config, model_storage, resource, Lexicon())

    def train(self, training_data: TrainingData) -> Resource:
        """Learn the lexicon from the language-labelled examples and store it in the model archive."""
        labelled = [
            (message.get(TEXT), language)
            for message in training_data.training_examples
            if message.get(TEXT) and (language := example_language(message)) is not None
        ]
        lexicon = Lexicon.learn(labelled)
        logger.info("Learnt %d language cue words from %d labelled examples.", len(lexicon.weights), len(labelled))
        with self._model_storage.write_to(self._resource) as directory:
            (directory / LEXICON_FILE).write_text(json.dumps(lexicon.as_dict(), sort_keys=True), encoding="utf-8")
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> LanguageAnnotator:
        """Load the learnt lexicon (an empty one if the model has none)."""
        try:
            with model_storage.read_from(resource) as directory:
                weights = json.loads((directory / LEXICON_FILE).read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError):
            logger.warning("No language lexicon in this Rasa model: detection uses langdetect and cue words only.")
            weights = {}
        return cls(config, model_storage, resource, Lexicon({str(k): float(v) for k, v in weights.items()}))

    def process(self, messages: list[Message]) -> list[Message]:
        """Annotate each message in place."""
        for message in messages:
            guess = self._detector.detect(message.get(TEXT) or "")
            message.set(
                LANGUAGE_KEY,
                {"language": guess.language, "confidence": guess.confidence, "decisive": guess.decisive},
                add_to_output=True,
            )
        return messages
