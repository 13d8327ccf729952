"""Handing chats to people on the running stack (real Rasa, action server, console and chat hub), in both
languages: billing requests outside the FAQ are routed to people over Rasa's REST channel (email, since no agent
can join there) and in the support site's chat (live); an agent claims, answers and hands back, and while they
own the chat the bot says nothing whatever the customer types; outside business hours an email ticket is made
with the conversation; a card number brings an agent after the reminder."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from core.db.models import Conversation, Ticket, TicketMessage
from core.identity import mint_token_for
from core.db.engine import make_session_factory
from runner.harness import Stack
from tests.conftest import TEST_SECRET
from tests.e2e.conftest import ALWAYS_OPEN, CLOSED, Chat, Responses

pytestmark = pytest.mark.e2e
CARD = "4111 1111 1111 1111"
MARIE = "marie.tremblay@boulangerietremblay.ca"

# Written for this test (not the training data, not the held-out set of bench/nlu_eval.py).
OUTSIDE_THE_FAQ = {
    "en": ["I need to dispute a charge on my last invoice", "you billed us twice for march, I want the money back",
           "can you waive the late fee on our account", "I'd like a payment plan for the overdue balance",
           "please cancel our service at the end of the month", "we're tax exempt, take the taxes off our bill",
           "there are charges on this bill nobody here authorized", "I want my invoices mailed on paper"],
    "fr": ["je conteste un montant sur ma facture", "vous nous avez facturé deux fois en mars, remboursez-nous",
           "pouvez-vous annuler les frais de retard sur notre compte", "j'aimerais une entente de paiement pour le solde en retard",
           "je veux résilier notre service à la fin du mois", "nous sommes exemptés de taxes, enlevez les taxes de la facture",
           "il y a des frais que personne ici n'a autorisés", "je veux recevoir mes factures papier par la poste"],
}


class HubChat:
    """A customer in the support site's chat: the widget's calls to the chat hub."""

    def __init__(self, stack: Stack, responses: Responses, language: str, token: str | None = None) -> None:
        self.stack, self.responses, self.language = stack, responses, language
        started = requests.post(f"{stack.console_url}/chat/conversations", json={"language": language, "token": token},
                                timeout=30)
        assert started.status_code == 200, started.text
        self.key = started.json()["key"]
        self.sender = started.json()["conversation"]["id"]

    def say(self, text: str) -> list[dict[str, Any]]:
        """Send ``text``; the messages that came back after it (the bot's replies, if the bot owns the chat)."""
        sent = requests.post(f"{self.stack.console_url}/chat/messages", headers={"X-Chat-Key": self.key},
                             json={"text": text, "client_id": uuid.uuid4().hex}, timeout=60)
        assert sent.status_code == 200, sent.text
        messages = sent.json()["messages"]
        assert messages[0]["from"] == "customer"
        return list(messages[1:])

    def names(self, text: str) -> list[str | None]:
        return [self.responses.name_of(m["text"], self.language) for m in self.say(text) if m["from"] == "bot"]

    def history(self) -> dict[str, Any]:
        answer = requests.get(f"{self.stack.console_url}/chat/messages", headers={"X-Chat-Key": self.key}, timeout=30)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


class ConsoleAgent:
    """An agent signed in to the console over HTTP (a session cookie and its CSRF token)."""

    def __init__(self, stack: Stack, agent: dict[str, str]) -> None:
        self.url = stack.console_url
        self.http = requests.Session()
        page = self.http.get(f"{self.url}/login", timeout=30).text
        token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page)
        assert token, "no CSRF token on the sign-in page"
        signed = self.http.post(f"{self.url}/login", timeout=30, allow_redirects=False, data={
            "email": agent["email"], "password": agent["password"], "csrf_token": token.group(1)})
        assert signed.status_code == 302, signed.text
        meta = re.search(r'name="csrf-token" content="([^"]+)"', self.http.get(self.url, timeout=30).text)
        assert meta
        self.csrf = meta.group(1)

    def page(self, ticket_id: int) -> str:
        answer = self.http.get(f"{self.url}/tickets/{ticket_id}", timeout=30)
        assert answer.status_code == 200
        return answer.text

    def act(self, ticket_id: int, action: str, **fields: str) -> None:
        answer = self.http.post(f"{self.url}/tickets/{ticket_id}/chat/{action}", timeout=60,
                                data={**fields, "csrf_token": self.csrf}, headers={"X-Requested-With": "fetch"})
        assert answer.status_code == 200 and answer.json()["ok"], answer.text


@pytest.fixture
def agent_of(stack: Stack, demo_agents_of: Callable[[Stack], list[dict[str, str]]]) -> Callable[[str], ConsoleAgent]:
    def sign_in(language: str) -> ConsoleAgent:
        [agent] = [a for a in demo_agents_of(stack) if a["team"] == "CA" and a["role"] == "agent"
                   and a["language"] == language][:1]
        return ConsoleAgent(stack, agent)
    return sign_in


@pytest.fixture
def closed_hours(stack: Stack) -> Iterator[None]:
    hours = stack.settings.business_hours_file
    hours.write_text(CLOSED, encoding="utf-8")
    yield
    hours.write_text(ALWAYS_OPEN, encoding="utf-8")


def conversation_of(database: sa.engine.Engine, sender: str) -> Any:
    with make_session_factory(database)() as session:
        conversation = session.execute(sa.select(Conversation).where(Conversation.sender_id == sender)).scalar_one()
        ticket = session.get(Ticket, conversation.ticket_id) if conversation.ticket_id else None
        session.expunge_all()
        return conversation, ticket


def token_for(database: sa.engine.Engine, email: str) -> str:
    with make_session_factory(database)() as session:
        return mint_token_for(session, TEST_SECRET, email, timedelta(minutes=30))


@pytest.mark.parametrize("language", ["en", "fr"])
def test_billing_requests_outside_the_faq_are_routed_to_people_over_rest(
    stack: Stack, responses: Responses, language: str
) -> None:
    for text in OUTSIDE_THE_FAQ[language]:
        names = Chat(stack, responses).names(text, language)
        assert None not in names, f"{text!r}: a reply not in {language}: {names}"
        assert names[-2:] == ["utter_no_live_chat", "utter_offer_email_ticket"], f"{text!r}: {names}"
        assert not any(str(name).startswith("utter_faq_") for name in names), f"{text!r}: {names}"


def test_a_french_chat_goes_to_an_agent_who_answers_then_hands_back(
    stack: Stack, responses: Responses, database: sa.engine.Engine, agent_of: Callable[[str], ConsoleAgent]
) -> None:
    agent = agent_of("fr")
    customer = HubChat(stack, responses, "fr")
    assert customer.names("je conteste un montant sur ma facture") == ["utter_needs_person", "utter_agent_coming"]
    conversation, ticket = conversation_of(database, customer.sender)
    assert (conversation.owner, conversation.reason, ticket.channel, ticket.team, ticket.language) == \
        ("queue", "needs_person", "chat", "CA", "fr")
    for text in ("allo?", "/restart", "/session_start", "bonjour", "quels modes de paiement acceptez-vous?"):
        assert customer.say(text) == [], f"the bot answered {text!r} while the chat waits for an agent"
    assert "je conteste un montant sur ma facture" in agent.page(ticket.id)
    agent.act(ticket.id, "claim")
    agent.act(ticket.id, "say", text="Bonjour, je regarde votre facture de novembre.")
    assert customer.say("merci!") == []
    seen = customer.history()
    assert seen["conversation"]["state"] == "agent" and seen["conversation"]["agent"]
    agent_lines = [m for m in seen["messages"] if m["from"] == "agent"]
    assert [m["text"] for m in agent_lines] == ["Bonjour, je regarde votre facture de novembre."]
    assert agent_lines[0]["agent"] == seen["conversation"]["agent"]
    agent.act(ticket.id, "hand-back")
    back = customer.history()
    assert back["conversation"]["state"] == "bot"
    assert responses.name_of(back["messages"][-1]["text"], "fr") == "utter_bot_back"
    assert customer.names("quels modes de paiement acceptez-vous?")[0] == "utter_faq_payment_methods"


def test_a_verified_customers_account_shows_to_the_agent_an_anonymous_ones_never(
    stack: Stack, responses: Responses, database: sa.engine.Engine, agent_of: Callable[[str], ConsoleAgent]
) -> None:
    agent = agent_of("en")
    verified = HubChat(stack, responses, "en", token=token_for(database, MARIE))
    assert verified.names("you charged us twice this month, I want a refund") == \
        ["utter_needs_person", "utter_agent_coming"]
    _, ticket = conversation_of(database, verified.sender)
    page = agent.page(ticket.id)
    assert "verified: Marie Tremblay" in page and "Boulangerie Tremblay" in page
    anonymous = HubChat(stack, responses, "en", token="not-a-valid-token")
    assert anonymous.names("I want to talk to a person") == ["utter_agent_coming"]
    _, ticket = conversation_of(database, anonymous.sender)
    page = agent.page(ticket.id)
    assert "anonymous (no valid Billing Portal token)" in page and "No billing account is linked" in page


@pytest.mark.usefixtures("closed_hours")
def test_outside_business_hours_an_email_ticket_is_made_with_the_conversation(
    stack: Stack, responses: Responses, database: sa.engine.Engine
) -> None:
    anonymous = HubChat(stack, responses, "fr")
    assert anonymous.names("je veux parler à un agent") == ["utter_agents_closed", "utter_offer_email_ticket"]
    assert anonymous.names("oui") == ["utter_ask_contact_email"]
    address = f"client-{uuid.uuid4().hex[:6]}@exemple.ca"
    [recorded] = anonymous.say(address)
    assert responses.name_of(recorded["text"], "fr") == "utter_handoff_recorded"
    verified = HubChat(stack, responses, "en", token=token_for(database, MARIE))
    assert verified.names("please waive the late fee on our last invoice") == \
        ["utter_needs_person", "utter_agents_closed", "utter_offer_email_ticket"]
    [done] = verified.say("yes please")  # the verified address: nothing to ask
    assert responses.name_of(done["text"], "en") == "utter_handoff_recorded" and MARIE in done["text"]
    with make_session_factory(database)() as session:
        for email, language, said, reply in ((address, "fr", "je veux parler à un agent", recorded),
                                             (MARIE, "en", "please waive the late fee", done)):
            ticket = session.execute(sa.select(Ticket).where(Ticket.customer_email == email)
                                     .order_by(Ticket.id.desc())).scalars().first()
            [message] = session.execute(sa.select(TicketMessage).where(TicketMessage.ticket_id == ticket.id)).scalars()
            assert ticket.reference in reply["text"] and (ticket.channel, ticket.language) == ("email", language)
            assert said in message.text
    assert anonymous.history()["conversation"]["state"] == "bot"


def test_a_card_number_in_the_chat_is_removed_then_an_agent_comes(
    stack: Stack, responses: Responses, database: sa.engine.Engine, agent_of: Callable[[str], ConsoleAgent]
) -> None:
    agent_of("en")
    customer = HubChat(stack, responses, "en")
    assert customer.names(f"just charge {CARD} exp 12/28 for the balance") == \
        ["utter_card_number_refused", "utter_agent_coming"]
    [typed] = [m for m in customer.history()["messages"] if m["from"] == "customer"]
    assert "4111 1111" not in typed["text"] and "12/28" not in typed["text"]
    conversation, ticket = conversation_of(database, customer.sender)
    assert (conversation.reason, ticket.priority) == ("card_number", "high")
