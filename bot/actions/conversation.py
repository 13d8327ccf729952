"""Pure helpers that read a rasa-sdk tracker (no I/O): language, latest intent, what was said before."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rasa_sdk import Tracker

from bot.slots import LANGUAGE_SLOT
from core.language import DEFAULT_LANGUAGE, SUPPORTED_LANGUAGES



def language_of(tracker: Tracker) -> str:
    """The conversation's language ("en" or "fr")."""
    language = tracker.get_slot(LANGUAGE_SLOT)
    return language if language in SUPPORTED_LANGUAGES else DEFAULT_LANGUAGE


def latest_intent(tracker: Tracker) -> str | None:
    """The intent of the customer's latest message."""
    intent = tracker.latest_message.get("intent") or {}
    name = intent.get("name")
    return str(name) if name else None


def bot_actions_newest_first(events: Iterable[dict[str, Any]]) -> list[str]:
    """Names of the actions the bot ran, most recent first (``action_listen`` left out)."""
    names = [e.get("name") for e in events if e.get("event") == "action" and e.get("name") != "action_listen"]
    return [str(name) for name in reversed(names) if name]


def last_action_with_prefix(tracker: Tracker, prefix: str) -> str | None:
    """The most recent bot action whose name starts with ``prefix``."""
    return next((name for name in bot_actions_newest_first(tracker.events) if name.startswith(prefix)), None)


def user_messages_newest_first(tracker: Tracker) -> list[tuple[str, str | None]]:
    """(text, intent) of the customer's messages, most recent first."""
    messages = []
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            messages.append((str(event.get("text") or ""), intent))
    return messages
