"""Verified customers over the REST channel, with tokens minted as the portal mints them, in both languages."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.accounts import balance_of
from core.db.models import Account, AccountRequest
from core.formatting import format_money
from core.identity import mint_token
from runner.harness import Stack
from tests.conftest import TEST_SECRET
from tests.e2e.conftest import Chat

pytestmark = pytest.mark.e2e
HOUR = timedelta(hours=1)
MARIE = ("marie.tremblay@boulangerietremblay.ca", "CA-100231")  # fr, Office Manager
PRIYA = ("priya.shah@mapleleafdental.ca", "CA-100487")  # en, Office Manager
JENNY = ("jenny.park@mapleleafdental.ca", "CA-100487")  # regular user
JEAN = ("jean.gagnon@entreprisesgagnon.qc.ca", "CA-100902")  # past due with Auto Pay
CARD = "4111 1111 1111 1111"


def auth(who: tuple[str, str], ttl: timedelta = HOUR) -> dict[str, str]:
    return {"auth_token": mint_token(TEST_SECRET, who[0], who[1], ttl)}


def texts(replies: list[dict]) -> str:  # type: ignore[type-arg]
    return "\n".join(reply.get("text", "") for reply in replies)


@pytest.mark.parametrize(
    ("who", "language", "question"),
    [(PRIYA, "en", "show me my last invoice"), (MARIE, "fr", "montre-moi ma dernière facture")],
)
def test_a_verified_customer_sees_their_latest_invoices(
    chat: Chat, who: tuple[str, str], language: str, question: str
) -> None:
    names = chat.names(question, language, metadata=auth(who))
    assert names[0] == "utter_invoices_intro" and names[-1] == "utter_invoice_pdf"
    reply = texts(chat.say(question, metadata=auth(who)))
    number = f"INV-{date.today():%Y%m}-{who[1][-4:]}"
    assert number in reply and f"/documents/invoices/{number}.pdf" in reply


@pytest.mark.parametrize(("who", "language", "question"), [(JEAN, "fr", "c'est combien que je dois?"), (PRIYA, "en", "what's my balance")])
def test_the_balance_is_the_accounts_own(
    chat: Chat, database: sa.engine.Engine, who: tuple[str, str], language: str, question: str
) -> None:
    with sa.orm.Session(database) as session:
        account = session.execute(sa.select(Account).where(Account.number == who[1])).scalar_one()
        expected = format_money(balance_of(session, account.id, date.today()).current, language)
    replies = chat.say(question, metadata=auth(who))
    assert chat.responses.name_of(replies[0]["text"], language) == "utter_balance"
    assert expected in replies[0]["text"]


@pytest.mark.parametrize(
    ("language", "question", "faq"),
    [("en", "show me my last invoice", "utter_faq_document_retention"), ("fr", "mes crédits svp", "utter_faq_credit_not_in_history")],
)
@pytest.mark.parametrize("proof", ["none", "tampered", "expired", "unknown"])
def test_no_valid_token_no_account_data(chat: Chat, language: str, question: str, faq: str, proof: str) -> None:
    metadata = {
        "none": None,
        "tampered": {"auth_token": auth(MARIE)["auth_token"][:-4] + "AAAA"},
        "expired": auth(MARIE, ttl=-HOUR),
        "unknown": {"auth_token": mint_token(TEST_SECRET, "ghost@boulangerietremblay.ca", MARIE[1], HOUR)},
    }[proof]
    assert chat.names(question, language, metadata=metadata) == [faq, "utter_login_required"]


@pytest.mark.parametrize(("language", "question"), [("en", "show me invoice {number}"), ("fr", "montre-moi la facture {number}")])
def test_another_accounts_invoice_is_never_shown(chat: Chat, database: sa.engine.Engine, language: str, question: str) -> None:
    theirs = f"INV-{date.today():%Y%m}-0487"  # Maple Leaf Dental's latest invoice
    replies = chat.say(question.format(number=theirs), metadata=auth(MARIE))
    assert [chat.responses.name_of(r["text"], language) for r in replies] == ["utter_invoice_not_found"]
    assert "mapleleafdental" not in texts(replies) and "/documents/" not in texts(replies)


def test_a_manager_asks_to_add_a_user_and_gets_a_reference(chat: Chat, database: sa.engine.Engine) -> None:
    assert chat.names("please add kim.nguyen@mapleleafdental.ca as a user", "en", metadata=auth(PRIYA)) == [
        "utter_ask_user_role"
    ]
    [done] = chat.say("admin", metadata=auth(PRIYA))
    assert chat.responses.name_of(done["text"], "en") == "utter_user_add_recorded"
    with database.connect() as connection:
        row = connection.execute(
            sa.select(AccountRequest.reference, AccountRequest.kind, AccountRequest.details)
            .where(AccountRequest.conversation_id == chat.sender)
        ).one()
    assert row.reference in done["text"]
    assert row.kind == "add_user" and row.details["email"] == "kim.nguyen@mapleleafdental.ca"
    assert row.details["role"] == "admin"


def test_a_regular_user_is_told_who_can_change_users(chat: Chat) -> None:
    [reply] = chat.say("please remove tom.wilson@mapleleafdental.ca from our portal", metadata=auth(JENNY))
    assert chat.responses.name_of(reply["text"], "en") == "utter_request_not_allowed"
    assert "Priya Shah" in reply["text"]


def test_french_for_ones_own_portal(chat: Chat, database: sa.engine.Engine) -> None:
    names = chat.names("je voudrais mon portail en français, juste pour moi", "fr", metadata=auth(JENNY))
    assert names == ["utter_french_user_recorded"]
    with database.connect() as connection:
        kind = connection.execute(
            sa.select(AccountRequest.kind).where(AccountRequest.conversation_id == chat.sender)
        ).scalar_one()
    assert kind == "french_user"


@pytest.mark.parametrize(("language", "message"), [("en", f"my card is {CARD} exp 12/27 cvv 123, pay my bill"), ("fr", f"ma carte c'est {CARD}, exp 12/27")])
def test_a_card_number_is_refused_and_never_stored_or_logged(
    chat: Chat, database: sa.engine.Engine, stack: Stack, language: str, message: str
) -> None:
    # (then, over the REST channel where no agent can join, an email ticket is offered)
    assert chat.names(message, language, metadata=auth(PRIYA)) == \
        ["utter_card_number_refused", "utter_no_live_chat", "utter_offer_email_ticket"]
    with database.connect() as connection:
        stored = connection.execute(sa.text("SELECT data FROM events WHERE sender_id = :s"), {"s": chat.sender}).scalars().all()
    assert stored and not any(CARD.replace(" ", "") in row.replace(" ", "") for row in stored)
    assert any("••••1111" in row or "\\u2022\\u2022\\u2022\\u20221111" in row for row in stored)
    assert not any("12/27" in row for row in stored)
    for log in Path(stack.settings.var_dir / "log").glob("*.log"):
        assert CARD.replace(" ", "") not in log.read_text(errors="replace").replace(" ", "")


def test_the_identity_token_is_not_stored(chat: Chat, database: sa.engine.Engine) -> None:
    token = auth(PRIYA)
    chat.say("what's my balance", metadata=token)
    with database.connect() as connection:
        stored = connection.execute(sa.text("SELECT data FROM events WHERE sender_id = :s"), {"s": chat.sender}).scalars().all()
    assert stored and not any(token["auth_token"] in row for row in stored)
