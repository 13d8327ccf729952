"""The windowed SQL tracker store, on SQLite and PostgreSQL: it stores every event exactly once and loads a
bounded window that still carries the slots and active loop set before it; a server keeps the trackers it saved,
as the database has them, and gives one back only while no other server has written to its conversation."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import sqlalchemy as sa
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    AllSlotsReset,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot.tracker_store import WindowedSQLTrackerStore, scrub
from core.redaction import redact_card_data

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [greet]
slots:
  language:
    type: categorical
    values: [en, fr]
    influence_conversation: false
    mappings: [{type: custom}]
  contact_email:
    type: text
    influence_conversation: false
    mappings: [{type: custom}]
forms:
  handoff_form:
    required_slots: [contact_email]
responses:
  utter_greet: [{text: hi}]
"""
)
WINDOW = 24


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


@pytest.fixture
def store(database_url: str) -> WindowedSQLTrackerStore:
    return WindowedSQLTrackerStore(domain=DOMAIN, url=database_url, window=WINDOW)


@pytest.fixture
def other_server(database_url: str) -> WindowedSQLTrackerStore:
    """The tracker store of another Rasa server on the same database: it reads conversations from the database."""
    return WindowedSQLTrackerStore(domain=DOMAIN, url=database_url, window=WINDOW)


def turn(tracker: DialogueStateTracker, number: int, extra: list | None = None) -> None:
    """One customer message and one bot answer, as the processor records them."""
    tracker.update(UserUttered(f"message {number}", intent={"name": "greet", "confidence": 1.0}))
    for event in extra or []:
        tracker.update(event)
    tracker.update(ActionExecuted("utter_greet"))
    tracker.update(BotUttered(f"answer {number}"))
    tracker.update(ActionExecuted("action_listen"))


def converse(store: WindowedSQLTrackerStore, sender: str, turns: int, extras: dict[int, list] | None = None) -> int:
    """Play ``turns`` turns, reloading the tracker before each as the Rasa server does; returns events written."""
    tracker = run(store.get_or_create_tracker(sender))
    written = len(tracker.events)
    for number in range(turns):
        tracker = run(store.retrieve(sender))
        before = len(tracker.events)
        turn(tracker, number, (extras or {}).get(number))
        written += len(tracker.events) - before
        run(store.save(tracker))
    return written


def stored_events(store: WindowedSQLTrackerStore, sender: str) -> list[dict]:
    with store.session_scope() as session:
        rows = session.query(store.SQLEvent).filter(store.SQLEvent.sender_id == sender).order_by(store.SQLEvent.id)
        return [json.loads(row.data) for row in rows]


def test_every_event_is_stored_once_and_the_window_is_bounded(
    store: WindowedSQLTrackerStore, other_server: WindowedSQLTrackerStore
) -> None:
    sender = f"s-{uuid.uuid4().hex}"
    written = converse(store, sender, 40)
    events = stored_events(store, sender)
    assert len(events) == written
    assert [e["text"] for e in events if e["event"] == "user"] == [f"message {n}" for n in range(40)]
    window = run(other_server.retrieve(sender))
    assert len(window.events) <= WINDOW
    first = window.events[0]
    assert isinstance(first, ActionExecuted) and first.action_name == "action_listen"
    assert window.latest_message.text == "message 39"
    full = run(store.retrieve_full_tracker(sender))
    assert len(full.events) == written


def test_slots_and_active_loop_set_before_the_window_are_restored(
    store: WindowedSQLTrackerStore, other_server: WindowedSQLTrackerStore
) -> None:
    sender = f"s-{uuid.uuid4().hex}"
    converse(
        store, sender, 30,
        extras={0: [SlotSet("language", "fr"), SlotSet("contact_email", "old@example.ca")],
                1: [SlotSet("contact_email", "new@example.ca"), ActiveLoop("handoff_form")]},
    )
    window = run(other_server.retrieve(sender))
    assert not any(isinstance(e, UserUttered) and e.text in ("message 0", "message 1") for e in window.events)
    assert window.get_slot("language") == "fr"
    assert window.get_slot("contact_email") == "new@example.ca"
    assert window.active_loop_name == "handoff_form"


def test_a_slot_changed_inside_the_window_keeps_its_latest_value(
    store: WindowedSQLTrackerStore, other_server: WindowedSQLTrackerStore
) -> None:
    sender = f"s-{uuid.uuid4().hex}"
    converse(store, sender, 30, extras={0: [SlotSet("language", "fr")], 28: [SlotSet("language", "en")]})
    assert run(other_server.retrieve(sender)).get_slot("language") == "en"


def test_slots_reset_before_the_window_stay_reset(
    store: WindowedSQLTrackerStore, other_server: WindowedSQLTrackerStore
) -> None:
    sender = f"s-{uuid.uuid4().hex}"
    converse(store, sender, 30, extras={0: [SlotSet("language", "fr")], 2: [AllSlotsReset()]})
    assert run(other_server.retrieve(sender)).get_slot("language") is None


def test_only_the_latest_session_is_loaded(
    store: WindowedSQLTrackerStore, other_server: WindowedSQLTrackerStore
) -> None:
    sender = f"s-{uuid.uuid4().hex}"
    converse(store, sender, 3, extras={0: [SlotSet("language", "fr")]})
    tracker = run(store.retrieve(sender))
    tracker.update(ActionExecuted("action_session_start"))
    tracker.update(SessionStarted())
    tracker.update(ActionExecuted("action_listen"))
    run(store.save(tracker))
    converse(store, sender, 2)
    latest = run(other_server.retrieve(sender))
    assert [e.text for e in latest.events if isinstance(e, UserUttered)] == ["message 0", "message 1"]
    assert latest.get_slot("language") is None
    assert len(run(store.retrieve_full_tracker(sender)).events) == len(stored_events(store, sender))


def test_a_tracker_not_loaded_by_the_store_is_saved_whole(store: WindowedSQLTrackerStore) -> None:
    sender = f"s-{uuid.uuid4().hex}"
    tracker = DialogueStateTracker(sender, DOMAIN.slots)
    turn(tracker, 0)
    run(store.save(tracker))
    assert len(stored_events(store, sender)) == len(tracker.events)


def test_conversations_live_in_the_configured_database(store: WindowedSQLTrackerStore, database_url: str) -> None:
    sender = f"s-{uuid.uuid4().hex}"
    converse(store, sender, 2)
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        count = connection.execute(
            sa.text("SELECT count(*) FROM events WHERE sender_id = :sender"), {"sender": sender}
        ).scalar_one()
    engine.dispose()
    assert count == len(stored_events(store, sender)) > 0


def test_card_numbers_and_identity_tokens_never_reach_the_database(store: WindowedSQLTrackerStore) -> None:
    sender = f"s-{uuid.uuid4().hex}"
    tracker = run(store.get_or_create_tracker(sender))
    text = "pay with 4111 1111 1111 1111 exp 12/27 cvv 123"
    tracker.update(UserUttered(text, intent={"name": "share_card_number", "confidence": 1.0},
                               parse_data={"text": text}, metadata={"auth_token": "eyJ.secret.token"}))
    tracker.update(SlotSet("contact_email", text))
    tracker.update(ActionExecuted("utter_card_number_refused"))
    run(store.save(tracker))
    # Searched without the events' timestamps: a float such as 1796608095.6741111 holds "4111" by chance.
    stored = json.dumps([{k: v for k, v in event.items() if k != "timestamp"} for event in stored_events(store, sender)],
                        ensure_ascii=False)
    assert "4111" not in stored.replace("••••1111", "") and "12/27" not in stored and "cvv 123" not in stored
    assert "eyJ.secret.token" not in stored
    reloaded = run(store.retrieve(sender))
    assert reloaded.latest_message.text == "pay with [card ••••1111] exp ••/•• cvv •••"


def texts(tracker: DialogueStateTracker) -> list[str]:
    return [event.text for event in tracker.events if isinstance(event, UserUttered)]


def test_a_saved_tracker_is_kept_for_the_conversations_next_message(
    store: WindowedSQLTrackerStore, other_server: WindowedSQLTrackerStore
) -> None:
    sender = f"s-{uuid.uuid4().hex}"
    converse(store, sender, 2, extras={0: [SlotSet("language", "fr")]})
    tracker = run(store.retrieve(sender))
    turn(tracker, 2)
    run(store.save(tracker))
    kept = run(store.retrieve(sender))
    assert kept is tracker  # not read and replayed again
    read = run(other_server.retrieve(sender))
    assert [event.as_dict() for event in kept.events] == [event.as_dict() for event in read.events]
    assert kept.current_slot_values() == read.current_slot_values() and kept.get_slot("language") == "fr"


def test_a_conversation_another_server_answered_in_between_is_read_again(
    store: WindowedSQLTrackerStore, other_server: WindowedSQLTrackerStore
) -> None:
    sender = f"s-{uuid.uuid4().hex}"
    converse(store, sender, 2)
    theirs = run(other_server.retrieve(sender))
    turn(theirs, 2, [SlotSet("language", "en")])
    run(other_server.save(theirs))
    mine = run(store.retrieve(sender))
    assert texts(mine) == ["message 0", "message 1", "message 2"] and mine.get_slot("language") == "en"
    turn(mine, 3)
    run(store.save(mine))
    assert texts(run(other_server.retrieve(sender))) == ["message 0", "message 1", "message 2", "message 3"]


def test_a_tracker_whose_message_was_not_saved_is_read_again(store: WindowedSQLTrackerStore) -> None:
    sender = f"s-{uuid.uuid4().hex}"
    converse(store, sender, 2)
    failed = run(store.retrieve(sender))
    turn(failed, 2, [SlotSet("language", "fr")])  # the server fails before saving: nothing stored
    again = run(store.retrieve(sender))
    assert again is not failed
    assert texts(again) == ["message 0", "message 1"] and again.get_slot("language") is None


def test_a_kept_tracker_holds_its_events_as_stored_without_card_numbers_or_tokens(
    store: WindowedSQLTrackerStore, other_server: WindowedSQLTrackerStore
) -> None:
    sender = f"s-{uuid.uuid4().hex}"
    converse(store, sender, 1)
    tracker = run(store.retrieve(sender))
    text = "ma carte 4111 1111 1111 1111 ne passe pas"
    tracker.update(UserUttered(text, intent={"name": "share_card_number", "confidence": 1.0},
                               parse_data={"text": text}, metadata={"auth_token": "eyJ.secret.token"}))
    tracker.update(ActionExecuted("utter_card_number_refused"))
    run(store.save(tracker))
    kept = run(store.retrieve(sender))
    assert kept is tracker
    assert "4111 1111" not in kept.latest_message.text and "••••1111" in kept.latest_message.text
    assert kept.latest_message.metadata == {"auth_token": "[removed]"}
    read = run(other_server.retrieve(sender))
    assert [event.as_dict() for event in kept.events] == [event.as_dict() for event in read.events]


def test_a_slot_holding_a_card_number_is_never_kept_unredacted(store: WindowedSQLTrackerStore) -> None:
    sender = f"s-{uuid.uuid4().hex}"
    converse(store, sender, 1)
    tracker = run(store.retrieve(sender))
    tracker.update(SlotSet("contact_email", "4111 1111 1111 1111"))
    run(store.save(tracker))
    assert "4111 1111" not in str(run(store.retrieve(sender)).get_slot("contact_email"))


def test_a_kept_tracker_never_grows_past_twice_the_window(store: WindowedSQLTrackerStore) -> None:
    sender = f"s-{uuid.uuid4().hex}"
    converse(store, sender, 1)
    for number in range(1, 30):
        tracker = run(store.retrieve(sender))
        assert len(tracker.events) <= 2 * WINDOW
        turn(tracker, number)
        run(store.save(tracker))
    assert texts(run(store.retrieve(sender)))[-1] == "message 29"


@pytest.mark.parametrize(
    "text",
    [
        "pay with 4111 1111 1111 1111 exp 12/27 cvv 123", "4111-1111-1111-1111", "4111.1111.1111.1111",
        "card:4111111111111111.", "amex 378282246310005 code 1234", "6011 0009 9013 9424 123", "4000056655665556",
        "carte 5555 5555 5555 4444, expire 03/28", "x\n4111111111111111\n", "1234 5678 9012 3456 (not Luhn)",
        "invoice INV-202603-1042 of $1,234.56", "call 1-514-555-0199", "no digits at all", "",
        "41111111111111111111111", "4111 1111 1111 111", "timestamps 1733500000.123456",
    ],
)
def test_scrubbing_redacts_exactly_what_the_redaction_redacts(text: str) -> None:
    assert scrub(text) == redact_card_data(text).text
    assert scrub({"a": [text, {"b": text}]}) == {"a": [redact_card_data(text).text, {"b": redact_card_data(text).text}]}
