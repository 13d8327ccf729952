"""The chat hub's API (what the widget calls) and the agents' chat controls, through Flask's test client on a
real store (SQLite and PostgreSQL). No Rasa server runs here: what the bot says is tested end to end in
``tests/e2e``; here, a bot that cannot be reached keeps the customer's message and says so (503)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core import chats
from core.db.engine import unit_of_work
from core.db.models import AuditEvent, ChatMessage, Conversation
from tests.console.conftest import Agent, StaffAccount

HOSTILE = '<img src=x onerror="alert(1)">'


class Customer:
    """A widget: a test client that keeps its conversation key."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.key = ""

    def start(self, language: str = "fr", token: str | None = None) -> dict[str, Any]:
        response = self.client.post("/chat/conversations", json={"language": language, "token": token},
                                    headers={"X-Chat-Key": self.key} if self.key else {})
        assert response.status_code == 200, response.text
        self.key = response.json["key"]
        return dict(response.json)

    def send(self, text: str, client_id: str | None = None) -> Any:
        return self.client.post("/chat/messages", json={"text": text, "client_id": client_id or uuid.uuid4().hex},
                                headers={"X-Chat-Key": self.key})

    def history(self, after: int = 0) -> Any:
        return self.client.get(f"/chat/messages?after={after}", headers={"X-Chat-Key": self.key})


def handed_off(app: Flask, factory: sessionmaker[Session], text: str) -> tuple[Customer, int]:
    customer = Customer(app.test_client())
    customer.start()
    customer.send(text)
    with unit_of_work(factory) as session:
        conversation = chats.by_key(session, customer.key)
        ticket = chats.hand_off(session, conversation, "needs_person")
        return customer, int(ticket.id)


def test_a_conversation_starts_resumes_and_keeps_a_message_the_bot_could_not_answer(app: Flask) -> None:
    customer = Customer(app.test_client())
    first = customer.start("fr")
    assert first["conversation"]["state"] == "bot" and first["messages"] == []
    response = customer.send("je conteste un montant", client_id="one")
    assert response.status_code == 503 and response.json["error"] == "bot_unavailable"  # no Rasa here
    assert [m["text"] for m in response.json["messages"]] == ["je conteste un montant"]
    customer.send("je conteste un montant", client_id="one")  # the same send, retried after a network loss
    again = customer.start("fr")
    assert again["key"] == first["key"] and [m["text"] for m in again["messages"]] == ["je conteste un montant"]
    assert customer.history(again["messages"][0]["id"]).json["messages"] == []


def test_a_key_reaches_its_own_conversation_only(app: Flask) -> None:
    alice, bob = Customer(app.test_client()), Customer(app.test_client())
    alice.start()
    bob.start()
    alice.send("message d'Alice")
    assert bob.history().json["messages"] == []
    stranger = Customer(app.test_client())
    stranger.key = "not-a-key"
    assert stranger.history().status_code == 401 and stranger.send("hi").status_code == 401
    assert stranger.client.get("/chat/events?key=nope").status_code == 401


def test_bad_input_gets_a_clear_error_and_stores_nothing(app: Flask, factory: sessionmaker[Session]) -> None:
    customer = Customer(app.test_client())
    customer.start("en")
    for body in ({"text": ""}, {"text": 5}, {"text": "x" * (chats.MAX_TEXT + 1)}, {"text": "hi", "payload": "nope"},
                 {"text": "hi", "client_id": "x" * 65}):
        response = customer.client.post("/chat/messages", json=body, headers={"X-Chat-Key": customer.key})
        assert response.status_code == 400 and response.json["message"], body
    assert customer.client.post("/chat/messages", data="not json", headers={"X-Chat-Key": customer.key}).status_code == 400
    assert customer.history().json["messages"] == []


def test_an_invalid_token_leaves_the_customer_anonymous(app: Flask) -> None:
    customer = Customer(app.test_client())
    assert customer.start("en", token="forged.token.value")["identified"] is False


def test_the_widget_api_answers_other_sites_pages(app: Flask) -> None:
    client = app.test_client()
    preflight = client.options("/chat/messages", headers={"Origin": "https://www.net2phone.ca",
                                                         "Access-Control-Request-Method": "POST"})
    assert preflight.status_code in (200, 204)
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://www.net2phone.ca"
    assert "X-Chat-Key" in preflight.headers["Access-Control-Allow-Headers"]
    script = client.get("/widget/widget.js")
    assert script.status_code == 200 and script.headers["Access-Control-Allow-Origin"] == "*"
    script.close()
    assert client.get("/widget/other.js").status_code == 404


def test_the_agent_claims_writes_and_hands_back(app: Flask, factory: sessionmaker[Session],
                                               make_agent: Callable[..., StaffAccount],
                                               signed_in: Callable[[StaffAccount], Agent]) -> None:
    customer, ticket_id = handed_off(app, factory, f"je conteste un montant {HOSTILE}")
    sophie = signed_in(make_agent("CA", name="Sophie Lavoie"))
    page = sophie.get(f"/tickets/{ticket_id}")
    assert page.status_code == 200 and "Take this chat" in page.text
    assert HOSTILE not in page.text and "&lt;img src=x" in page.text
    assert "anonymous (no valid Billing Portal token)" in page.text
    assert sophie.post(f"/tickets/{ticket_id}/chat/claim").status_code == 302
    reply = sophie.post(f"/tickets/{ticket_id}/chat/say", {"text": "Bonjour, je regarde votre facture."},
                        headers={"X-Requested-With": "fetch"})
    assert reply.status_code == 200 and reply.json["ok"]
    response = customer.send("Merci!")
    assert response.status_code == 200, "while an agent owns the chat, the bot is not asked"
    texts = [(m["from"], m["agent"], m["text"]) for m in customer.history().json["messages"]]
    assert texts[-3:] == [("system", "Sophie Lavoie", "Sophie Lavoie (agent de facturation) s'est joint à la conversation."),
                          ("agent", "Sophie Lavoie", "Bonjour, je regarde votre facture."),
                          ("customer", None, "Merci!")]
    assert customer.history().json["conversation"]["agent"] == "Sophie Lavoie"
    lines = sophie.get(f"/tickets/{ticket_id}/chat/lines?after=0")
    assert "Merci!" in lines.text and HOSTILE not in lines.text
    assert sophie.post(f"/tickets/{ticket_id}/chat/hand-back").status_code == 302
    assert customer.history().json["conversation"]["state"] == "bot"


def test_the_agent_closes_and_the_customer_rates(app: Flask, factory: sessionmaker[Session],
                                                 make_agent: Callable[..., StaffAccount],
                                                 signed_in: Callable[[StaffAccount], Agent]) -> None:
    customer, ticket_id = handed_off(app, factory, "annulez mon service")
    agent = signed_in(make_agent("CA"))
    assert customer.client.post("/chat/rating", json={"stars": 5}, headers={"X-Chat-Key": customer.key}).status_code == 409
    assert agent.post(f"/tickets/{ticket_id}/chat/close").status_code == 302
    assert customer.history().json["conversation"]["state"] == "closed"
    assert customer.send("allo?").status_code == 409
    for bad in ({"stars": "5"}, {"stars": 9}, {"stars": True}):
        assert customer.client.post("/chat/rating", json=bad, headers={"X-Chat-Key": customer.key}).status_code in (400, 409)
    assert customer.client.post("/chat/rating", json={"stars": 5, "comment": "parfait"},
                                headers={"X-Chat-Key": customer.key}).json["ok"]
    with factory() as session:
        conversation = session.execute(select(Conversation).where(Conversation.ticket_id == ticket_id)).scalar_one()
        assert (conversation.rating, conversation.rating_comment) == (5, "parfait")
        actions = set(session.execute(select(AuditEvent.action).where(AuditEvent.ticket_id == ticket_id)).scalars())
    assert {"chat_handoff", "chat_close", "chat_rating"} <= actions
    fresh = customer.client.post("/chat/conversations", json={"language": "fr", "new": True},
                                 headers={"X-Chat-Key": customer.key}).json
    assert fresh["key"] != customer.key and fresh["messages"] == []


def test_another_teams_agent_sees_nothing_of_the_chat(app: Flask, factory: sessionmaker[Session],
                                                     make_agent: Callable[..., StaffAccount],
                                                     signed_in: Callable[[StaffAccount], Agent]) -> None:
    customer, ticket_id = handed_off(app, factory, "je conteste un montant")
    us_agent = signed_in(make_agent("US"))
    assert us_agent.get(f"/tickets/{ticket_id}").status_code == 403
    assert us_agent.get(f"/tickets/{ticket_id}/chat/lines").status_code == 403
    for action in ("claim", "say", "hand-back", "close"):
        assert us_agent.post(f"/tickets/{ticket_id}/chat/{action}", {"text": "hi"}).status_code == 403
    with factory() as session:
        conversation = chats.by_key(session, customer.key)
        senders = session.execute(select(ChatMessage.sender).where(ChatMessage.conversation_id == conversation.id)).scalars()
        assert list(senders) == ["customer"] and conversation.owner == "queue"


def test_the_support_page_chats_as_a_demo_user(app: Flask, factory: sessionmaker[Session]) -> None:
    client = app.test_client()
    english = client.get("/support")
    assert english.status_code == 200 and 'lang="en"' in english.text and "/widget/widget.js" in english.text
    assert "data-token" not in english.text
    french = client.get("/support?lang=fr&user=marie.tremblay%40boulangerietremblay.ca")
    assert 'lang="fr"' in french.text and "data-token=" in french.text and "Marie Tremblay" in french.text
    assert "data-token" not in client.get("/support?user=nobody%40example.com").text


def test_an_agent_signed_in_counts_for_the_handoff(app: Flask, factory: sessionmaker[Session],
                                                   make_agent: Callable[..., StaffAccount],
                                                   signed_in: Callable[[StaffAccount], Agent]) -> None:
    with factory() as session:
        before = chats.agents_signed_in(session, "CA")
    agent = signed_in(make_agent("CA"))
    with factory() as session:
        assert chats.agents_signed_in(session, "CA") == before + 1
    agent.post("/logout")
    with factory() as session:
        assert chats.agents_signed_in(session, "CA") == before


def test_a_chat_nobody_claims_in_time_goes_back_to_the_bot(app: Flask, factory: sessionmaker[Session]) -> None:
    customer, ticket_id = handed_off(app, factory, "je veux un remboursement")
    with unit_of_work(factory) as session:
        conversation = chats.by_key(session, customer.key)
        waited = app.extensions["billing"].settings.chat_claim_seconds + 1
        conversation.handed_off_at = datetime.now(timezone.utc) - timedelta(seconds=waited)
    assert app.extensions["billing"].claim_watch.sweep() >= 1
    seen = customer.history().json
    assert seen["conversation"]["state"] == "bot"
    assert seen["messages"][-1]["text"] == "Aucun agent n'a pu prendre la conversation à temps."
