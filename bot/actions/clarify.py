"""Clarifying fallback: when the assistant is unsure, offer the two most likely FAQ topics as buttons."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.conversation import language_of
from bot.actions.services import Services, get_services
from core.knowledge import intent_to_article_id

TOPICS_OFFERED = 2


class ActionClarify(Action):
    """Ask "Did you mean one of these?" with the two most likely topics as buttons (in the customer's language)."""

    def __init__(self, services: Services | None = None) -> None:
        self._services = services

    def name(self) -> str:
        return "action_clarify"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        articles = (self._services or get_services()).articles
        language = language_of(tracker)
        buttons = []
        for ranked in tracker.latest_message.get("intent_ranking") or []:
            article = articles.get(intent_to_article_id(ranked.get("name")) or "")
            if article is not None:
                buttons.append({"title": article.title[language], "payload": f"/{article.intent}"})
            if len(buttons) == TOPICS_OFFERED:
                break
        if buttons:
            dispatcher.utter_message(response="utter_clarify", buttons=buttons)
        else:
            dispatcher.utter_message(response="utter_default")
        return []
