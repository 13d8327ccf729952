"""Rasa policy that keeps the ``language`` slot right for the conversation.

The NLU guess of one message (``bot.nlu.language``) is combined with the conversation's current language
(``core.language.choose_language``): a decisive message switches it, a short or ambiguous one keeps it. The
policy never chooses an action (all its probabilities are zero); its ``SlotSet`` is applied before the next
action runs, whichever policy wins, so every response of the turn is rendered in the right language.
"""

from __future__ import annotations

from typing import Any

from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker

from bot.nlu.language import LANGUAGE_KEY
from bot.slots import LANGUAGE_SLOT
from core.language import SUPPORTED_LANGUAGES, LanguageGuess, choose_language

# Message metadata key a channel may set to the customer's known language (the portal's interface language).
LANGUAGE_HINT_KEY = "language"


def conversation_language_after(tracker: DialogueStateTracker) -> str | None:
    """The language the conversation should be in after its latest user message, or None if unknown."""
    latest = tracker.latest_message
    raw = (latest.parse_data or {}).get(LANGUAGE_KEY) if latest else None
    if not isinstance(raw, dict) or raw.get("language") not in SUPPORTED_LANGUAGES:
        return None
    guess = LanguageGuess(str(raw["language"]), float(raw.get("confidence", 0.5)), bool(raw.get("decisive")))
    metadata = latest.metadata if latest is not None and isinstance(latest.metadata, dict) else {}
    hint = metadata.get(LANGUAGE_HINT_KEY)
    return choose_language(guess, tracker.get_slot(LANGUAGE_SLOT), hint if isinstance(hint, str) else None)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT], is_trainable=True)
class LanguagePolicy(Policy):
    """Sets the ``language`` slot after each user message; predicts no action."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """The lowest priority: the policy never wins an action anyway."""
        return {"priority": 1}

    def train(self, training_trackers: list[TrackerWithCachedStates], domain: Domain, **kwargs: Any) -> Resource:
        """Nothing to learn."""
        return self._resource

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        """Zero for every action, plus a ``SlotSet`` when the user's message changes the language."""
        events = []
        # Only right after the user spoke: later in the turn an action may have set the language on purpose.
        if tracker.latest_action_name == ACTION_LISTEN_NAME:
            language = conversation_language_after(tracker)
            if language is not None and language != tracker.get_slot(LANGUAGE_SLOT):
                events.append(SlotSet(LANGUAGE_SLOT, language))
        return self._prediction(self._default_predictions(domain), events=events)
