"""A message the conversation already holds is found with the bot's answer to it, and only that answer."""

from __future__ import annotations

from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.answer_once import earlier_answer


def conversation() -> DialogueStateTracker:
    return DialogueStateTracker.from_events("answer-once", [
        ActionExecuted("action_listen"),
        UserUttered("bonjour", {"name": "greet"}, message_id="m1"),
        ActionExecuted("utter_greet"), BotUttered("Bonjour !"), ActionExecuted("action_listen"),
        UserUttered("quelles cartes acceptez-vous", {"name": "payment_methods"}, message_id="m2"),
        SlotSet("language", "fr"),
        ActionExecuted("utter_payment_methods"),
        BotUttered("Visa, Mastercard…", {"buttons": [{"title": "Oui", "payload": "/affirm"}]}),
        ActionExecuted("utter_anything_else"), BotUttered("Autre chose ?"),
        ActionExecuted("action_listen"),
        UserUttered("thanks", {"name": "thank"}, message_id="m3"),
        ActionExecuted("action_listen"),
    ])


def test_a_message_held_comes_with_its_answers_up_to_the_next_message() -> None:
    tracker = conversation()
    answer = earlier_answer(tracker, "m2")
    assert [event.text for event in answer] == ["Visa, Mastercard…", "Autre chose ?"]
    assert answer[0].message()["buttons"] == [{"title": "Oui", "payload": "/affirm"}]
    assert [event.text for event in earlier_answer(tracker, "m1")] == ["Bonjour !"]


def test_a_message_held_without_an_answer_yet_has_an_empty_one() -> None:
    assert earlier_answer(conversation(), "m3") == []


def test_a_message_not_held_or_without_an_id_has_none() -> None:
    tracker = conversation()
    assert earlier_answer(tracker, "m4") is None
    assert earlier_answer(tracker, None) is None
    assert earlier_answer(tracker, "") is None
