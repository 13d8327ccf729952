"""The custom actions against a real migrated database (SQLite and PostgreSQL), in both languages: returned
events, the messages sent (by response key, so the domain's language variation applies) and the rows stored."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import sessionmaker

from bot.actions.clarify import ActionClarify
from bot.actions.feedback import ActionRecordFeedback
from bot.actions.handoff import ActionRequestHuman, ValidateHandoffForm
from bot.actions.services import Services
from core.db.engine import make_engine, make_session_factory
from core.db.models import Feedback, HandoffRequest
from core.knowledge import Article
from core.settings import Settings

LANGUAGES = ["en", "fr"]


@pytest.fixture
def services(sessions: sessionmaker, articles: dict[str, Article]) -> Services:
    return Services(Settings.from_env({}), sessions, articles)


def user(text: str, intent: str, ranking: list[tuple[str, float]] | None = None) -> dict[str, Any]:
    parse = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": []}
    if ranking is not None:
        parse["intent_ranking"] = [{"name": n, "confidence": c} for n, c in ranking]
    return {"event": "user", "text": text, "parse_data": parse}


def bot_action(name: str) -> dict[str, Any]:
    return {"event": "action", "name": name}


def make_tracker(events: list[dict[str, Any]], language: str, **slots: Any) -> Tracker:
    latest = next(e["parse_data"] for e in reversed(events) if e["event"] == "user")
    return Tracker(
        sender_id=f"conv-{uuid.uuid4().hex}", slots={"language": language, **slots}, latest_message=latest,
        events=events, paused=False, followup_action=None, active_loop={}, latest_action_name="action_listen",
    )


def run(action: Any, tracker: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {}))
    return events, dispatcher.messages


@pytest.mark.parametrize("language", LANGUAGES)
def test_clarify_offers_the_two_most_likely_topics_in_the_conversation_language(
    services: Services, language: str
) -> None:
    ranking = [("nlu_fallback", 0.4), ("faq_cdr_export", 0.35), ("greet", 0.2), ("faq_document_retention", 0.3)]
    tracker = make_tracker([user("cdr thing", "nlu_fallback", ranking)], language)
    events, [message] = run(ActionClarify(services), tracker)
    assert events == []
    assert message["response"] == "utter_clarify"
    assert message["buttons"] == [
        {"title": services.articles["cdr_export"].title[language], "payload": "/faq_cdr_export"},
        {"title": services.articles["document_retention"].title[language], "payload": "/faq_document_retention"},
    ]


def test_clarify_without_any_faq_candidate_asks_to_rephrase(services: Services) -> None:
    tracker = make_tracker([user("hmm", "nlu_fallback", [("nlu_fallback", 0.4), ("greet", 0.3)])], "fr")
    assert run(ActionClarify(services), tracker)[1][0]["response"] == "utter_default"


@pytest.mark.parametrize(("language", "answer", "helpful"), [("en", "affirm", True), ("fr", "deny", False)])
def test_feedback_is_recorded_against_the_article_just_answered(
    services: Services, sessions: sessionmaker, language: str, answer: str, helpful: bool
) -> None:
    events = [
        user("what cards", "faq_payment_methods"),
        bot_action("utter_faq_payment_methods"),
        bot_action("utter_ask_helpful"),
        bot_action("action_listen"),
        user("yes" if helpful else "non", answer),
    ]
    tracker = make_tracker(events, language)
    assert run(ActionRecordFeedback(services), tracker) == ([], [])
    with sessions() as session:
        [row] = session.execute(sa.select(Feedback).where(Feedback.conversation_id == tracker.sender_id)).scalars()
    assert (row.article_id, row.language, row.helpful) == ("payment_methods", language, helpful)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("marie.tremblay@bureau.qc.ca", "marie.tremblay@bureau.qc.ca"), ("c'est Jean@Exemple.CA", "jean@exemple.ca")],
)
def test_the_handoff_form_accepts_an_email(text: str, expected: str) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker([user(text, "nlu_fallback")], "fr")
    assert ValidateHandoffForm().validate_contact_email(text, dispatcher, tracker, {}) == {"contact_email": expected}
    assert dispatcher.messages == []


@pytest.mark.parametrize("text", ["je sais pas", "jean at exemple"])
def test_the_handoff_form_rejects_what_is_not_an_email(text: str) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker([user(text, "nlu_fallback")], "fr")
    assert ValidateHandoffForm().validate_contact_email(text, dispatcher, tracker, {}) == {"contact_email": None}
    assert [m["response"] for m in dispatcher.messages] == ["utter_invalid_email"]


@pytest.mark.parametrize(
    ("history", "reason", "problem"),
    [
        ([user("ma facture", "nlu_fallback"), user("je veux un agent", "human_handoff")], "customer_request", "ma facture"),
        (
            [user("gloubi", "nlu_fallback"), bot_action("action_clarify"), user("boulga", "nlu_fallback"),
             bot_action("utter_offer_human"), user("oui", "affirm")],
            "repeated_misunderstanding",
            "boulga",
        ),
        (
            [user("what cards", "faq_payment_methods"), bot_action("utter_faq_payment_methods"),
             bot_action("utter_ask_helpful"), user("no", "deny"), bot_action("action_record_feedback"),
             bot_action("utter_feedback_sorry"), bot_action("utter_offer_human"), user("yes", "affirm")],
            "unhelpful_answer",
            "what cards",
        ),
    ],
)
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_handoff_request_is_recorded_with_its_reason_and_reference(
    services: Services, sessions: sessionmaker, history: list[dict[str, Any]], reason: str, problem: str, language: str
) -> None:
    events = history + [bot_action("handoff_form"), user("client@exemple.ca", "nlu_fallback")]
    tracker = make_tracker(events, language, contact_email="client@exemple.ca")
    returned, [message] = run(ActionRequestHuman(services), tracker)
    assert returned == []
    with sessions() as session:
        [row] = session.execute(
            sa.select(HandoffRequest).where(HandoffRequest.conversation_id == tracker.sender_id)
        ).scalars()
    assert (row.reason, row.language, row.contact_email, row.status) == (reason, language, "client@exemple.ca", "open")
    assert row.last_message == problem
    assert (message["response"], message["reference"], message["contact_email"]) == (
        "utter_handoff_recorded", row.reference, "client@exemple.ca"
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_handoff_that_cannot_be_stored_says_so_instead_of_promising_an_agent(
    tmp_path: Path, articles: dict[str, Article], language: str
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'not-migrated.db'}")  # no tables: every insert fails
    broken = Services(Settings.from_env({}), make_session_factory(engine), articles)
    tracker = make_tracker([user("je veux un agent", "human_handoff")], language, contact_email="a@exemple.ca")
    events, messages = run(ActionRequestHuman(broken), tracker)
    assert events == [] and [m["response"] for m in messages] == ["utter_technical_problem"]
    engine.dispose()
