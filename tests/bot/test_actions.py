"""The custom actions against a real migrated database (SQLite and PostgreSQL), in both languages: returned
events, the messages sent (by response key, so the domain's language variation applies) and the rows stored."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import sessionmaker

from bot.actions.clarify import ActionClarify
from bot.actions.feedback import ActionRecordFeedback
from bot.actions.handoff import ActionRequestHuman, ActionStartHandoff, ValidateHandoffForm
from bot.actions.services import Services
from core import chats
from core.agents import create_agent
from core.db.engine import make_engine, make_session_factory, unit_of_work
from core.db.models import AgentSession, Feedback, Ticket, TicketMessage
from core.knowledge import Article
from core.settings import Settings
from tests.conftest import TEST_SECRET

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
    ("history", "reason"),
    [
        ([user("ma facture", "nlu_fallback"), user("je veux un agent", "human_handoff")], "customer_request"),
        ([user("je conteste un montant", "needs_agent"), bot_action("action_start_handoff")], "needs_person"),
        ([user("gloubi", "nlu_fallback"), bot_action("action_clarify"), user("boulga", "nlu_fallback")],
         "repeated_misunderstanding"),
    ],
)
@pytest.mark.parametrize("language", LANGUAGES)
def test_an_email_ticket_holds_the_conversation_and_its_reference_is_given(
    services: Services, sessions: sessionmaker, history: list[dict[str, Any]], reason: str, language: str
) -> None:
    email = f"client-{uuid.uuid4().hex[:6]}@exemple.ca"
    events = history + [bot_action("utter_offer_email_ticket"), user("oui", "affirm"), bot_action("handoff_form"),
                        user(email, "nlu_fallback")]
    tracker = make_tracker(events, language, contact_email=email, handoff_reason=reason)  # (action_start_handoff's)
    returned, [message] = run(ActionRequestHuman(services), tracker)
    assert returned == []
    with sessions() as session:
        [ticket] = session.execute(sa.select(Ticket).where(Ticket.customer_email == email)).scalars()
        [mail] = session.execute(sa.select(TicketMessage).where(TicketMessage.ticket_id == ticket.id)).scalars()
    assert (ticket.channel, ticket.language, ticket.team, ticket.status) == ("email", language, "CA", "new")
    assert ticket.subject == chats.SUBJECTS[reason][language]
    first = history[0]["text"]
    assert mail.text.splitlines()[0] == f"{chats.SPEAKERS['customer'][language]}: {first}"
    assert (message["response"], message["reference"], message["contact_email"]) == (
        "utter_handoff_recorded", ticket.reference, email
    )


def hours_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"hours-{uuid.uuid4().hex[:6]}.yml"
    path.write_text(text, encoding="utf-8")
    return path


OPEN = "timezone: America/Toronto\nhours: {monday: ['08:00', '20:00'], thursday: ['08:00', '20:00']}\n"
THURSDAY_NOON = datetime(2026, 12, 3, 17, 0, tzinfo=timezone.utc)  # 12:00 in Toronto
THURSDAY_NIGHT = datetime(2026, 12, 4, 3, 0, tzinfo=timezone.utc)  # 22:00 in Toronto


def services_with_hours(sessions: sessionmaker, articles: dict[str, Article], path: Path) -> Services:
    return Services(Settings(business_hours_file=path, auth_secret=TEST_SECRET), sessions, articles)


def widget_tracker(sessions: sessionmaker, events: list[dict[str, Any]], language: str) -> tuple[Tracker, int]:
    """A tracker of a conversation the chat hub holds (the support site's widget)."""
    with unit_of_work(sessions) as session:
        conversation, _ = chats.open_conversation(session, language)
        chats.add_message(session, conversation, "customer", events[-1]["text"])
        sender, conversation_id = str(conversation.sender_id), int(conversation.id)
    tracker = make_tracker(events, language)
    tracker.sender_id = sender
    return tracker, conversation_id


def sign_in_agent(sessions: sessionmaker, team: str) -> None:
    with unit_of_work(sessions) as session:
        agent, _ = create_agent(session, f"a-{uuid.uuid4().hex[:8]}@net2phone.ca", "Agent Test", team,
                                password="correct horse battery staple")
        session.flush()
        session.add(AgentSession(id=uuid.uuid4().hex, agent_id=agent.id,
                                 expires_at=datetime.now(timezone.utc) + timedelta(hours=1)))


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_request_only_a_person_can_settle_goes_to_the_teams_queue(
    tmp_path: Path, sessions: sessionmaker, articles: dict[str, Article], language: str
) -> None:
    sign_in_agent(sessions, "CA")
    services = services_with_hours(sessions, articles, hours_file(tmp_path, OPEN))
    tracker, conversation_id = widget_tracker(sessions, [user("je conteste un montant", "needs_agent")], language)
    events, messages = run(ActionStartHandoff(services, now=lambda: THURSDAY_NOON), tracker)
    assert [m["response"] for m in messages] == ["utter_needs_person", "utter_agent_coming"]
    assert messages[1]["wait"] >= 1
    assert [(e["name"], e["value"]) for e in events] == [("handoff_reason", "needs_person"), ("agent_coming", True)]
    with sessions() as session:
        conversation = session.get(chats.Conversation, conversation_id)
        ticket = session.get(Ticket, conversation.ticket_id)
    assert (conversation.owner, conversation.reason, ticket.channel, ticket.language) ==         ("queue", "needs_person", "chat", language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_outside_business_hours_an_email_ticket_is_offered(
    tmp_path: Path, sessions: sessionmaker, articles: dict[str, Article], language: str
) -> None:
    sign_in_agent(sessions, "CA")
    services = services_with_hours(sessions, articles, hours_file(tmp_path, OPEN))
    tracker, conversation_id = widget_tracker(sessions, [user("je veux parler à un agent", "human_handoff")], language)
    events, messages = run(ActionStartHandoff(services, now=lambda: THURSDAY_NIGHT), tracker)
    assert [m["response"] for m in messages] == ["utter_agents_closed"]
    # Monday 8:00, as each language writes it (Canadian French: "8 h 00").
    assert messages[0]["opening"] == ("lundi 7 décembre, 8 h 00" if language == "fr" else "Monday, December 7, 8:00 AM")
    assert events[-1]["name"] == "agent_coming" and events[-1]["value"] is False
    with sessions() as session:
        assert session.get(chats.Conversation, conversation_id).owner == "bot"


def test_with_nobody_of_the_team_signed_in_an_email_ticket_is_offered(
    tmp_path: Path, sessions: sessionmaker, articles: dict[str, Article]
) -> None:
    with unit_of_work(sessions) as session:
        session.execute(sa.update(AgentSession).values(ended_at=datetime.now(timezone.utc)))
    services = services_with_hours(sessions, articles, hours_file(tmp_path, OPEN))
    tracker, conversation_id = widget_tracker(sessions, [user("I want a refund", "needs_agent")], "en")
    events, messages = run(ActionStartHandoff(services, now=lambda: THURSDAY_NOON), tracker)
    assert [m["response"] for m in messages] == ["utter_needs_person", "utter_agents_busy"]
    assert events[-1]["value"] is False


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_conversation_outside_the_widget_is_offered_an_email_ticket(
    tmp_path: Path, sessions: sessionmaker, articles: dict[str, Article], language: str
) -> None:
    sign_in_agent(sessions, "CA")
    services = services_with_hours(sessions, articles, hours_file(tmp_path, OPEN))
    tracker = make_tracker([user("I was charged twice", "needs_agent")], language)  # a REST conversation
    events, messages = run(ActionStartHandoff(services, now=lambda: THURSDAY_NOON), tracker)
    assert [m["response"] for m in messages] == ["utter_needs_person", "utter_no_live_chat"]
    assert events[-1]["value"] is False


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
