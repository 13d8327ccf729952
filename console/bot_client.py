"""The chat hub's side of Rasa: a customer's message passed to Rasa's REST channel as the conversation's customer,
the bot's replies stored; the bot told that an agent handed a chat back; and the watch that gives back to the bot
the chats nobody claimed in time (``ClaimWatch``, one per console process)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import requests
from sqlalchemy.orm import Session, sessionmaker

from core import chats
from core.db.engine import unit_of_work
from core.db.models import Conversation
from core.identity import TOKEN_METADATA_KEY
from core.settings import Settings

logger = logging.getLogger(__name__)
RASA_TIMEOUT_SECONDS = 30.0
SWEEP_SECONDS = 5.0
BUSY_RETRY_SECONDS = 2  # when a busy Rasa did not say how long to wait
# What the hub sends Rasa to make the bot speak without the customer: back from an agent, or no agent came.
HANDED_BACK = "/agent_handed_back"
UNCLAIMED = "/agent_unavailable"


@dataclass(frozen=True)
class BotReply:
    """How a message passed to Rasa went: answered (the replies stored), or not, and then whether Rasa (or the
    load balancer in front of it) said it was busy and when to try again."""

    answered: bool
    retry_after: int | None = None  # seconds: Rasa was busy and never took the message (HTTP 503)

    def __bool__(self) -> bool:
        return self.answered


def _retry_after(response: requests.Response) -> int:
    """The seconds of a 503's ``Retry-After`` (a number of seconds; anything else: ``BUSY_RETRY_SECONDS``)."""
    value = response.headers.get("Retry-After", "")
    return min(int(value), 60) if value.isdigit() and int(value) > 0 else BUSY_RETRY_SECONDS


def ask_bot(factory: sessionmaker[Session], settings: Settings, conversation_id: int, text: str) -> BotReply:
    """Pass one message to Rasa's REST channel as the conversation's customer and store the replies. Not
    answered when Rasa could not be reached or was busy (the customer's message stays stored)."""
    with factory() as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            return BotReply(False)
        sender, language, token = str(conversation.sender_id), str(conversation.language), conversation.identity_token
    metadata: dict[str, Any] = {"language": language, "channel": "widget"}
    if token:
        metadata[TOKEN_METADATA_KEY] = token
    try:
        reply = requests.post(f"{settings.rasa_url}/webhooks/rest/webhook", timeout=RASA_TIMEOUT_SECONDS,
                              json={"sender": sender, "message": text, "metadata": metadata})
        if reply.status_code == 503:  # busy (HAProxy's queue is full): the message never reached a Rasa server
            logger.warning("chat %s: the assistant is busy; the customer is asked to retry", sender)
            return BotReply(False, retry_after=_retry_after(reply))
        reply.raise_for_status()
        answers = reply.json()
    except (requests.RequestException, ValueError) as error:
        logger.error("chat %s: the assistant could not be reached (%s)", sender, type(error).__name__)
        return BotReply(False)
    with unit_of_work(factory) as session:
        conversation = chats.lock(session, session.get(Conversation, conversation_id))
        for answer in answers if isinstance(answers, list) else []:
            buttons = [{"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
                       for b in answer.get("buttons") or [] if isinstance(b, dict)]
            if answer.get("text") or buttons:
                chats.add_message(session, conversation, "bot", str(answer.get("text") or ""), buttons=buttons)
    return BotReply(True)


def bot_resumes(factory: sessionmaker[Session], settings: Settings, conversation_id: int) -> None:
    """After an agent handed the conversation back: the bot says so, in the customer's language."""
    ask_bot(factory, settings, conversation_id, HANDED_BACK)


class ClaimWatch:
    """Gives back to the bot (which offers an email ticket) the chats nobody claimed in time; one per process,
    several processes safely (``core.chats.give_back_unclaimed`` takes the conversation's row lock)."""

    def __init__(self, factory: sessionmaker[Session], settings: Settings) -> None:
        self._factory, self._settings = factory, settings
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="chat-claim-watch", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sweep()
            except Exception:  # the store went away for a moment: logged, and the watch goes on
                logger.exception("chat: looking for unclaimed chats failed; trying again")
            self._stop.wait(SWEEP_SECONDS)

    def sweep(self) -> int:
        """Give back every chat waiting longer than the claim time; returns how many."""
        waited = timedelta(seconds=self._settings.chat_claim_seconds)
        with self._factory() as session:
            waiting = [int(c.id) for c in chats.unclaimed(session, waited)]
        given = 0
        for conversation_id in waiting:
            with unit_of_work(self._factory) as session:
                moved = chats.give_back_unclaimed(session, session.get(Conversation, conversation_id))
            if moved:
                given += 1
                logger.info("chat %s: nobody claimed it in time; the bot offers an email ticket", conversation_id)
                ask_bot(self._factory, self._settings, conversation_id, UNCLAIMED)
        return given
