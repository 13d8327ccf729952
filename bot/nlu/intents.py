"""Rasa NLU intent classifier backed by ``core.topics.TopicModel``.

It replaces DIET for intents: a linear model over word and character n-grams trains in seconds, answers in about
2 ms, copes with typos and missing accents, and its out-of-scope class (trained on real queries of other
domains) keeps weather questions from getting a billing answer.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from core.topics import TopicModel, TopicModelConfig

logger = logging.getLogger(__name__)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class TopicIntentClassifier(GraphComponent, IntentClassifier):
    """Predicts the intent of each message and a ranking of the most likely ones."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """See ``core.topics.TopicModelConfig`` for the model's parameters."""
        defaults = TopicModelConfig()
        return {
            "regularization": defaults.regularization,
            "negative_weight": defaults.negative_weight,
            "negative_label": defaults.negative_label,
            "ranking_length": 30,
        }

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: TopicModel | None = None,
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._model = model

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> TopicIntentClassifier:
        """An untrained classifier (training builds the model)."""
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Fit the model on every intent example and persist it in the model archive."""
        examples = [m for m in training_data.intent_examples if m.get(TEXT) and m.get(INTENT)]
        config = TopicModelConfig(
            regularization=float(self._config["regularization"]),
            negative_weight=float(self._config["negative_weight"]),
            negative_label=str(self._config["negative_label"]),
        )
        self._model = TopicModel.train([m.get(TEXT) for m in examples], [m.get(INTENT) for m in examples], config)
        with self._model_storage.write_to(self._resource) as directory:
            self._model.save(directory)
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> TopicIntentClassifier:
        """Load the trained model from the archive (an untrained one if training produced none)."""
        try:
            with model_storage.read_from(resource) as directory:
                model = TopicModel.load(directory)
        except (ValueError, FileNotFoundError):
            logger.warning("No trained topic model in this Rasa model: every message will have no intent.")
            model = None
        return cls(config, model_storage, resource, model)

    def process(self, messages: list[Message]) -> list[Message]:
        """Set ``intent`` and ``intent_ranking`` on each message."""
        if self._model is None:
            return messages
        texts = [message.get(TEXT) or "" for message in messages]
        for message, ranking in zip(messages, self._model.rank_many(texts)):
            top = ranking[: int(self._config["ranking_length"])]
            name, confidence = top[0]
            message.set(INTENT, {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: confidence}, add_to_output=True)
            message.set(
                INTENT_RANKING_KEY,
                [{INTENT_NAME_KEY: n, PREDICTED_CONFIDENCE_KEY: c} for n, c in top],
                add_to_output=True,
            )
        return messages
