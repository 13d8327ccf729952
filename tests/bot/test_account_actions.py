"""Account actions against the demo store (SQLite and PostgreSQL), with real tokens, in both languages: what a
verified customer is shown, what an anonymous one is told, and that no one sees another account's data."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import sessionmaker

from bot.actions.balance import ActionShowBalance
from bot.actions.cdrs import ActionShowCdrExport
from bot.actions.credits import ActionShowCredits
from bot.actions.invoices import ActionShowInvoices
from bot.actions.payments import ActionShowPaymentStatus
from bot.actions.requests import ActionCheckFrenchRequest, ActionCheckUserRequest, ActionSubmitUserRequest
from bot.actions.services import Services
from bot.entities import rasa_entities
from core.identity import mint_token
from core.knowledge import Article
from core.settings import Settings
from tests.conftest import DEMO_TODAY, TEST_SECRET

MARIE = ("marie.tremblay@boulangerietremblay.ca", "CA-100231")
PRIYA = ("priya.shah@mapleleafdental.ca", "CA-100487")
JENNY = ("jenny.park@mapleleafdental.ca", "CA-100487")
JEAN = ("jean.gagnon@entreprisesgagnon.qc.ca", "CA-100902")
DANIEL = ("daniel.chen@pacificcoastlogistics.com", "CA-101356")


@pytest.fixture
def services(demo_sessions: sessionmaker, articles: dict[str, Article]) -> Services:
    return Services(Settings.from_env({"BILLING_AUTH_SECRET": TEST_SECRET}), demo_sessions, articles)


def token(who: tuple[str, str], ttl: timedelta = timedelta(hours=1)) -> str:
    return mint_token(TEST_SECRET, who[0], who[1], ttl)


def tracker(text: str, language: str, auth: str | None, **slots: Any) -> Tracker:
    metadata = {"auth_token": auth} if auth is not None else {}
    # The entities as the NLU pipeline's extractor (bot.nlu.entities) puts them in the parse data.
    latest = {"text": text, "intent": {"name": "x", "confidence": 1.0}, "entities": rasa_entities(text, language),
              "metadata": metadata}
    return Tracker(
        sender_id=f"conv-{uuid.uuid4().hex}", slots={"language": language, **slots}, latest_message=latest,
        events=[{"event": "user", "text": text, "parse_data": latest}], paused=False, followup_action=None,
        active_loop={}, latest_action_name="action_listen",
    )


def run(action: Any, tracked: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracked, {}))
    return events, dispatcher.messages


def responses(messages: list[dict[str, Any]]) -> list[str]:
    return [m["response"] for m in messages]


@pytest.mark.parametrize(
    ("action", "faq"),
    [
        (ActionShowInvoices, ["utter_faq_document_retention"]),
        (ActionShowBalance, []),
        (ActionShowCredits, ["utter_faq_credit_not_in_history"]),
        (ActionShowCdrExport, ["utter_faq_cdr_export"]),
        (ActionShowPaymentStatus, ["utter_faq_payment_pending"]),
    ],
)
@pytest.mark.parametrize("auth", [None, "garbage", "TAMPERED", "EXPIRED", "UNKNOWN"])
def test_without_a_valid_token_only_the_faq_and_how_to_log_in(
    services: Services, action: Any, faq: list[str], auth: str | None
) -> None:
    proofs = {
        "TAMPERED": token(MARIE)[:-4] + "AAAA",
        "EXPIRED": token(MARIE, ttl=timedelta(seconds=-60)),
        "UNKNOWN": mint_token(TEST_SECRET, "ghost@boulangerietremblay.ca", "CA-100231", timedelta(hours=1)),
    }
    events, messages = run(action(services, today=lambda: DEMO_TODAY), tracker("my invoices", "en", proofs.get(auth, auth)))
    assert responses(messages) == [*faq, "utter_login_required"]
    assert all(set(m) <= {"response", "text", "buttons", "elements", "custom", "template", "image", "attachment"}
               for m in messages)


@pytest.mark.parametrize(("language", "total"), [("en", "$227.38"), ("fr", "227,38\u00a0$")])
def test_latest_invoices_with_the_pdf_link(services: Services, language: str, total: str) -> None:
    _, messages = run(ActionShowInvoices(services, today=lambda: DEMO_TODAY), tracker("last invoice", language, token(MARIE)))
    assert responses(messages) == ["utter_invoices_intro"] + ["utter_invoice_line"] * 3 + ["utter_invoice_pdf"]
    first = messages[1]
    assert (first["invoice_number"], first["total"]) == ("INV-202611-0231", total)
    assert first["status"] == {"en": "paid", "fr": "payée"}[language]
    assert messages[-1]["pdf_url"] == "https://billing.net2phone.ca/documents/invoices/INV-202611-0231.pdf"


@pytest.mark.parametrize(
    ("text", "language", "number", "pdf"),
    [
        ("my March invoice", "en", "INV-202603-0231", "utter_invoice_pdf"),
        ("ma facture de juillet 2024", "fr", "INV-202407-0231", "utter_invoice_pdf_expired"),
        ("la facture du mois passé", "fr", "INV-202610-0231", "utter_invoice_pdf"),
    ],
)
def test_an_invoice_named_by_month(services: Services, text: str, language: str, number: str, pdf: str) -> None:
    _, messages = run(ActionShowInvoices(services, today=lambda: DEMO_TODAY), tracker(text, language, token(MARIE)))
    assert responses(messages) == ["utter_invoice_detail", pdf]
    assert messages[0]["invoice_number"] == number


@pytest.mark.parametrize("action", [ActionShowInvoices, ActionShowCdrExport])
def test_another_accounts_invoice_number_is_not_found(services: Services, action: Any) -> None:
    _, messages = run(action(services, today=lambda: DEMO_TODAY), tracker("INV-202611-0487 please", "en", token(MARIE)))
    assert responses(messages) == ["utter_invoice_not_found"]
    assert "382" not in str(messages)  # Maple Leaf's total never appears


def test_balance_of_a_past_due_account_with_a_declined_auto_pay(services: Services) -> None:
    _, messages = run(ActionShowBalance(services, today=lambda: DEMO_TODAY), tracker("combien je dois", "fr", token(JEAN)))
    assert responses(messages) == ["utter_balance", "utter_balance_past_due", "utter_balance_autopay_declined"]
    assert messages[0]["balance"] == "229,43\u00a0$"
    assert messages[1]["oldest_due"] == "21 octobre 2026"
    assert messages[2]["reason"] == "la carte est expirée"


def test_balance_with_a_credit_not_yet_invoiced(services: Services) -> None:
    _, messages = run(ActionShowBalance(services, today=lambda: DEMO_TODAY), tracker("my balance", "en", token(MARIE)))
    assert responses(messages) == ["utter_balance_credit", "utter_balance_uninvoiced_credit"]
    assert (messages[0]["amount"], messages[1]["next_invoice"]) == ("$25.00", "December 1, 2026")


def test_credits_say_which_invoice_shows_them(services: Services) -> None:
    _, messages = run(ActionShowCredits(services, today=lambda: DEMO_TODAY), tracker("mes crédits", "fr", token(MARIE)))
    assert responses(messages) == ["utter_credits_intro", "utter_credit_line_pending", "utter_credit_line_invoiced"]
    assert messages[1]["next_invoice"] == "1er décembre 2026"
    assert messages[2]["invoice_number"] == "INV-202607-0231"


@pytest.mark.parametrize(
    ("text", "response"),
    [
        ("CDR export of my last invoice", "utter_cdr_link"),
        ("CDRs of my March invoice", "utter_cdr_expired"),
        ("CDRs for my May 2025 invoice", "utter_cdr_before_july_2025"),
    ],
)
def test_cdr_exports_follow_the_faq(services: Services, text: str, response: str) -> None:
    _, messages = run(ActionShowCdrExport(services, today=lambda: DEMO_TODAY), tracker(text, "en", token(PRIYA)))
    assert responses(messages) == [response]
    if response == "utter_cdr_link":
        assert messages[0]["link"].endswith("/documents/cdr/INV-202611-0487.csv")


@pytest.mark.parametrize(
    ("who", "response"),
    [(PRIYA, "utter_payment_accepted"), (JEAN, "utter_payment_declined"), (DANIEL, "utter_payment_pending")],
)
def test_payment_status(services: Services, who: tuple[str, str], response: str) -> None:
    _, messages = run(ActionShowPaymentStatus(services, today=lambda: DEMO_TODAY), tracker("did my payment go through", "en", token(who)))
    assert responses(messages) == [response]


def slot_values(events: list[dict[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for event in events:
        if event.get("event") == "slot":
            values[event["name"]] = event["value"]
    return values


def test_a_regular_user_is_told_who_may_ask(services: Services) -> None:
    events, messages = run(ActionCheckUserRequest(services), tracker("add bob@x.ca as a user", "en", token(JENNY)))
    assert responses(messages) == ["utter_request_not_allowed"]
    assert "Priya Shah (priya.shah@mapleleafdental.ca)" in messages[0]["who_can"]
    assert slot_values(events)["request_allowed"] is False


def test_a_manager_request_is_prefilled_then_stored_with_a_reference(services: Services) -> None:
    events, messages = run(
        ActionCheckUserRequest(services), tracker("ajoute kim@mapleleafdental.ca comme administrateur", "fr", token(PRIYA))
    )
    assert messages == []
    slots = slot_values(events)
    assert (slots["request_allowed"], slots["user_change"], slots["user_email"], slots["user_role"]) == (
        True, "add_user", "kim@mapleleafdental.ca", "admin"
    )
    filled = {k: slots[k] for k in ("user_change", "user_email", "user_role")}
    events, messages = run(ActionSubmitUserRequest(services), tracker("admin", "fr", token(PRIYA), **filled))
    assert responses(messages) == ["utter_user_add_recorded"]
    assert messages[0]["reference"].startswith("RQ-") and messages[0]["role"] == "administrateur"
    assert all(value is None for value in slot_values(events).values())


def test_french_for_the_whole_account_is_refused_to_a_regular_user(services: Services) -> None:
    events, messages = run(ActionCheckFrenchRequest(services), tracker("switch our account to French", "en", token(JENNY)))
    assert responses(messages) == ["utter_language_not_allowed"]
    assert slot_values(events)["request_allowed"] is False
    events, messages = run(ActionCheckFrenchRequest(services), tracker("I want my own portal in French", "en", token(JENNY)))
    assert messages == [] and slot_values(events)["french_level"] == "user"
