"""The channels themselves: malformed REST requests get a clear 400; a message sent twice (the same id) is handled
once and answered the same both times; the socket.io channel (for the web widget) converses in both languages and
passes message metadata."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
import socketio
import sqlalchemy as sa

from core.db.engine import make_engine
from core.knowledge import load_articles
from core.settings import PROJECT_ROOT
from runner.harness import Stack
from tests.conftest import run_alone
from tests.e2e.conftest import Responses

pytestmark = pytest.mark.e2e




def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"not json", "parsing body as json"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"sender": "a"}', '"message" is required'),
        (b'{"sender": "a", "message": "   "}', '"message" is required'),
        (b'{"message": "hello"}', '"sender" is required'),
        (b'{"sender": "a", "message": "hi", "metadata": "fr"}', '"metadata", when given, must be a JSON object'),
        (b'{"sender": "a", "message": "hi", "message_id": 7}', '"message_id", when given, must be a non-empty string'),
    ],
)
def test_a_malformed_rest_request_gets_a_400_naming_the_problem(stack: Stack, body: bytes, complaint: str) -> None:
    status, answer = post(stack.rest_url, body)
    assert status == 400
    assert answer["error"] == "bad_request" and complaint in answer["message"]


def stored_messages(stack: Stack, sender: str) -> list[tuple[str, str]]:
    """The customer's messages of the conversation as stored, with their ids, in order."""
    engine = make_engine(stack.settings.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT data FROM events WHERE sender_id = :sender AND type_name = 'user' "
                                              "ORDER BY id"), {"sender": sender}).scalars().all()
    finally:
        engine.dispose()
    return [(json.loads(row)["text"], json.loads(row)["message_id"]) for row in rows]


@pytest.mark.parametrize(("language", "question"),
                         [("en", "which cards can I pay with?"), ("fr", "quelles cartes acceptez-vous")])
def test_a_message_sent_again_with_its_id_is_answered_again_not_handled_twice(
    stack: Stack, language: str, question: str
) -> None:
    sender = f"once-{language}-{uuid.uuid4().hex[:8]}"

    def send(message_id: str) -> list[dict[str, Any]]:
        status, answer = post(stack.rest_url, json.dumps(
            {"sender": sender, "message": question, "message_id": message_id}).encode())
        assert status == 200
        return answer

    first = send("m-1")
    article = next(a for a in load_articles(PROJECT_ROOT / "knowledge") if a.id == "payment_methods")
    assert first[0]["text"] == article.answer[language]
    assert send("m-1") == first  # the same answer, buttons included
    assert stored_messages(stack, sender) == [(question, "m-1")]
    # The same words with another id are another message: asked again, answered again.
    assert send("m-2")[0]["text"] == article.answer[language]
    assert stored_messages(stack, sender) == [(question, "m-1"), (question, "m-2")]


def test_the_load_balancers_request_id_is_the_message_id_when_the_client_gives_none(stack: Stack) -> None:
    # HAProxy sends a request whose server died to another with the same X-Request-Id (runner/cluster.py).
    sender = f"once-header-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"sender": sender, "message": "bonjour, comment payer ma facture?"}).encode()
    answers = [post(stack.rest_url, body, {"X-Request-Id": "7F000001:C3A2_0001"}) for _ in range(2)]
    assert answers[0][0] == 200 and answers[0][1] and answers[1] == answers[0]
    assert stored_messages(stack, sender) == [("bonjour, comment payer ma facture?", "7F000001:C3A2_0001")]
    post(stack.rest_url, body)  # no id at all: Rasa gives the message a new one
    assert len(stored_messages(stack, sender)) == 2


async def socketio_exchange(
    stack: Stack, session: str, message: str, metadata: dict[str, Any], replies: int
) -> list[dict[str, Any]]:
    client = socketio.AsyncClient()
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    confirmed: asyncio.Queue[str] = asyncio.Queue()
    client.on("bot_uttered", received.put)
    client.on("session_confirm", confirmed.put)
    await client.connect(
        f"http://{stack.settings.rasa_host}:{stack.settings.rasa_port}", socketio_path="/socket.io",
        transports=["websocket"],
    )
    try:
        await client.emit("session_request", {"session_id": session})
        assert await asyncio.wait_for(confirmed.get(), 30) == session
        await client.emit("user_uttered", {"message": message, "session_id": session, "metadata": metadata})
        return [await asyncio.wait_for(received.get(), 30) for _ in range(replies)]
    finally:
        await client.disconnect()


@pytest.mark.parametrize(
    ("language", "message"), [("en", "which cards can I pay with?"), ("fr", "quelles cartes acceptez-vous")]
)
def test_the_socketio_channel_answers_in_the_customer_language(stack: Stack, language: str, message: str) -> None:
    answer, question = run_alone(socketio_exchange(stack, f"sio-{language}", message, {}, replies=2))
    article = next(a for a in load_articles(PROJECT_ROOT / "knowledge") if a.id == "payment_methods")
    assert answer["text"] == article.answer[language]
    assert [q["title"] for q in question["quick_replies"]] == (["Yes", "No"] if language == "en" else ["Oui", "Non"])


@pytest.mark.parametrize("hint", ["en", "fr"])
def test_socketio_metadata_carries_the_portal_language_hint(stack: Stack, responses: Responses, hint: str) -> None:
    first = run_alone(socketio_exchange(stack, f"sio-hint-{hint}", "Visa?", {"language": hint}, replies=1))[0]
    assert responses.name_of(first["text"], hint) is not None
