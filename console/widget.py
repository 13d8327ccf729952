"""The chat hub: the support site's widget talks to this, never to Rasa directly.

The hub owns each conversation (``core.chats``): while the bot owns it, the customer's message is stored, then
passed to Rasa's REST channel (any of several Rasa servers: the conversation's state is in the tracker store) and
the replies stored; while the team's queue or an agent owns it, the message is only stored, for the agent. The
browser proves a conversation is its own with the key it got when the conversation began (``X-Chat-Key``; the
event stream takes it as ``key`` since EventSource cannot send headers), so a conversation's messages reach only
its browser. The identity token of the Billing Portal is verified when the page sends it; the console shows
account data only for a conversation with a valid one.

Routes: ``/widget/widget.js`` and ``widget.css`` (the one ``<script>`` tag a page embeds), ``/support`` (the demo
support page), and the JSON API under ``/chat`` (see ``docs/chat.md``). The calls to Rasa, and the watch that
gives back to the bot the chats nobody claimed within ``BILLING_CHAT_CLAIM_SECONDS``, are ``console.bot_client``'s.
"""

from __future__ import annotations

import json
import logging
import queue
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, render_template, request, send_from_directory, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from console.bot_client import ask_bot
from console.extensions import csrf
from console.live import event_stream
from console.state import db, state
from core import chats
from core.activity import Event
from core.db.engine import unit_of_work
from core.db.models import Account, Conversation, PortalUser
from core.errors import PermanentError
from core.identity import Identity, IdentityError, mint_token_for, verify_token

logger = logging.getLogger(__name__)
blueprint = Blueprint("widget", __name__)
WIDGET_DIR = Path(__file__).parent / "static" / "widget"
KEEPALIVE_SECONDS = 15.0
MAX_CLIENT_ID = 64


class BadRequest(PermanentError):
    """Raised for a request the widget should not have sent; answered 400 with the reason."""


class UnknownConversation(PermanentError):
    """Raised when no conversation has the key sent; answered 401 (the widget starts a new one)."""


def _error(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify({"error": code, "message": message}), status


@blueprint.errorhandler(BadRequest)
def _bad_request(error: BadRequest) -> tuple[Response, int]:
    return _error(400, "bad_request", str(error))


@blueprint.errorhandler(UnknownConversation)
def _unknown(error: UnknownConversation) -> tuple[Response, int]:
    return _error(401, "unknown_conversation", "no conversation has this key: start a new one")


@blueprint.errorhandler(chats.ChatError)
def _chat_error(error: chats.ChatError) -> tuple[Response, int]:
    return _error(409, "not_now", str(error))


@blueprint.after_request
def _cors(response: Response) -> Response:
    """The widget is embedded by other sites' pages: they may call the API (with the key, never cookies)."""
    origin = request.headers.get("Origin")
    allowed = [o.strip() for o in state().settings.widget_origins.split(",") if o.strip()]
    if origin and ("*" in allowed or origin in allowed):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, X-Chat-Key"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Max-Age"] = "600"
        response.headers["Vary"] = "Origin"
    return response


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _key() -> str | None:
    return request.headers.get("X-Chat-Key") or request.args.get("key")


def _conversation(session: Session, *, locked: bool = False) -> Any:
    conversation = chats.by_key(session, _key(), locked=locked)
    if conversation is None:
        raise UnknownConversation(_key() or "")
    return conversation


def _identity(session: Session, token: object) -> Identity | None:
    if not token:
        return None
    try:
        return verify_token(token, state().settings.signing_secret(), session)
    except IdentityError as error:
        logger.info("chat: identity token refused (%s); the customer stays anonymous", error.reason)
        return None


# The widget's assets and the demo page --------------------------------------------------------------------------

@blueprint.get("/widget/<any('widget.js', 'widget.css'):name>")
def asset(name: str) -> Response:
    response = send_from_directory(WIDGET_DIR, name, max_age=300)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


PAGE_TEXT = {
    "en": {"title": "Billing support", "intro": "Questions about your bill, payments, credits or call records? "
           "Our virtual assistant answers right away, and a billing agent takes over when you need a person.",
           "portal_user_label": "Chat as a Billing Portal user (demo)", "anonymous": "Not signed in (anonymous)",
           "switch_button": "Switch", "other_language": "Français", "faq_heading": "Frequent questions",
           "signed_in_as": "Signed in to the Billing Portal as"},
    "fr": {"title": "Soutien à la facturation", "intro": "Des questions sur votre facture, vos paiements, vos crédits "
           "ou vos relevés d'appels? Notre assistant virtuel répond tout de suite, et un agent de facturation prend le "
           "relais quand il vous faut une personne.",
           "portal_user_label": "Clavarder comme utilisateur du portail de facturation (démo)",
           "anonymous": "Non connecté (anonyme)", "switch_button": "Changer", "other_language": "English",
           "faq_heading": "Questions fréquentes", "signed_in_as": "Connecté au portail de facturation en tant que"},
}


@blueprint.get("/support")
def support() -> str:
    """The demo support page: the widget embedded as any site would, and a switch to chat as a demo user."""
    lang = chats.supported_language(request.args.get("lang"))
    session = db()
    users = [{"email": str(user.email), "name": str(user.name), "account": str(number)}
             for user, number in session.execute(
                 select(PortalUser, Account.number).join(Account, Account.id == PortalUser.account_id)
                 .where(PortalUser.active.is_(True)).order_by(Account.number, PortalUser.id))]
    current = request.args.get("user") or None
    token, name = None, None
    if current and any(u["email"] == current for u in users):
        token = mint_token_for(session, state().settings.signing_secret(), current,
                               timedelta(minutes=state().settings.token_ttl_minutes))
        name = next(u["name"] for u in users if u["email"] == current)
    else:
        current = None
    other: dict[str, Any] = {"lang": "en" if lang == "fr" else "fr", **({"user": current} if current else {})}
    return render_template("support.html", lang=lang, users=users, current=current, name=name, token=token,
                           widget_url=url_for("widget.asset", name="widget.js"),
                           other_lang_url=url_for("widget.support", **other), t=PAGE_TEXT[lang])


# The API --------------------------------------------------------------------------------------------------------

@blueprint.post("/chat/conversations")
def start() -> Response:
    """Resume the conversation of the key sent (token and language brought up to date), or begin a new one."""
    body = _body()
    session = db()
    identity = _identity(session, body.get("token"))
    token = body.get("token") if identity is not None else None
    conversation = chats.by_key(session, _key())
    key = _key()
    if conversation is None or (conversation.owner == "closed" and body.get("new")):
        language = chats.supported_language(body.get("language"))
        conversation, key = chats.open_conversation(session, language, identity, token)
    else:
        conversation = chats.lock(session, conversation)
        if body.get("token") is not None or identity is None:
            chats.identify(conversation, identity, token)
        if body.get("language") in ("en", "fr") and conversation.owner == "bot":
            conversation.language = body["language"]
    return jsonify({"key": key, "conversation": chats.describe(session, conversation),
                    "identified": identity is not None,
                    "messages": [line.as_json() for line in chats.lines(session, int(conversation.id))]})


@blueprint.get("/chat/messages")
def history() -> Response:
    session = db()
    conversation = _conversation(session)
    after = request.args.get("after", "0")
    return jsonify({"conversation": chats.describe(session, conversation),
                    "messages": [line.as_json() for line in chats.lines(
                        session, int(conversation.id), int(after) if after.isdigit() else 0)]})


@blueprint.post("/chat/messages")
def send() -> tuple[Response, int] | Response:
    """Store the customer's message; while the bot owns the conversation, pass it to Rasa and store the replies.
    One transaction stores it (and answers, when a person or nobody owns the conversation); the call to Rasa runs
    with no connection held. A send repeated with ``"resend": true`` after a ``bot_busy`` answer passes the stored
    message to Rasa again, if nothing has answered it since."""
    factory = state().factory
    with unit_of_work(factory) as session:
        conversation = _conversation(session, locked=True)  # (an unknown key is told so first)
        body = _body()
        text, payload, client_id = _message_fields(body)
        if conversation.owner == "closed":
            raise chats.ChatError("this conversation has ended: start a new one")
        message, new = chats.add_message_once(session, conversation, "customer", text, client_id=client_id)
        first_id, owner, conversation_id = int(message.id), str(conversation.owner), int(conversation.id)
        language = str(conversation.language)
        unanswered = body.get("resend") is True and not chats.lines(session, conversation_id, first_id, limit=1)
        if owner != "bot" or not (new or unanswered):
            return jsonify(_answer(session, conversation, first_id))
    reply = ask_bot(factory, state().settings, conversation_id, payload or text)
    with factory() as session:
        answer = _answer(session, session.get(Conversation, conversation_id), first_id)
    if reply:
        return jsonify(answer)
    if reply.retry_after is not None:
        answer.update(error="bot_busy", retry_after=reply.retry_after, message=BOT_BUSY.get(language, BOT_BUSY["en"]))
        response = jsonify(answer)
        response.headers["Retry-After"] = str(reply.retry_after)
        return response, 503
    answer.update(error="bot_unavailable", message=BOT_UNAVAILABLE.get(language, BOT_UNAVAILABLE["en"]))
    return jsonify(answer), 503


# What a send answered with 503 says, in the conversation's language (the message is kept either way).
BOT_BUSY = {
    "en": "Many customers are writing right now: your message is kept and will be answered in a moment.",
    "fr": "Beaucoup de clients écrivent en ce moment : votre message est gardé et recevra une réponse sous peu.",
}
BOT_UNAVAILABLE = {
    "en": "The assistant cannot answer right now; your message is kept. Please try again in a moment.",
    "fr": "L'assistant ne peut pas répondre pour l'instant; votre message est gardé. Veuillez réessayer sous peu.",
}


def _message_fields(body: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """The text, button payload and client id of a customer's message, checked."""
    text, payload, client_id = body.get("text"), body.get("payload"), body.get("client_id")
    if not isinstance(text, str) or not text.strip():
        raise BadRequest('"text" is required: the customer\'s message')
    if len(text) > chats.MAX_TEXT:
        raise BadRequest(f'"text" is longer than {chats.MAX_TEXT} characters')
    if payload is not None and (not isinstance(payload, str) or not payload.startswith("/") or len(payload) > 500):
        raise BadRequest('"payload", when given, is a button\'s payload ("/intent...")')
    if client_id is not None and (not isinstance(client_id, str) or not 0 < len(client_id) <= MAX_CLIENT_ID):
        raise BadRequest(f'"client_id", when given, is a string of at most {MAX_CLIENT_ID} characters')
    return text.strip(), payload, client_id


def _answer(session: Session, conversation: Any, first_id: int) -> dict[str, Any]:
    """The conversation and its lines from the message ``first_id`` on (the message sent and the replies)."""
    return {"conversation": chats.describe(session, conversation),
            "messages": [line.as_json() for line in chats.lines(session, int(conversation.id), first_id - 1)]}


@blueprint.post("/chat/typing")
def customer_typing() -> Response:
    session = db()
    conversation = _conversation(session)
    chats.typing(session, conversation, "customer", bool(_body().get("typing")))
    return jsonify({"ok": True})


@blueprint.post("/chat/rating")
def rating() -> Response:
    conversation = _conversation(db())
    body = _body()
    stars, comment = body.get("stars"), body.get("comment")
    if not isinstance(stars, int) or isinstance(stars, bool):
        raise BadRequest('"stars" is required: a whole number from 1 to 5')
    if comment is not None and not isinstance(comment, str):
        raise BadRequest('"comment", when given, is text')
    chats.rate(db(), conversation, stars, comment)
    return jsonify({"ok": True})


@blueprint.get("/chat/events")
def events() -> Response:
    """The conversation's live stream: its new messages, the agent typing, its owner changing."""
    session = db()
    conversation = _conversation(session)
    conversation_id = int(conversation.id)
    after = request.args.get("after", "0")
    last = int(after) if after.isdigit() else 0
    hub, factory = state().hub, state().factory
    subscription = hub.subscribe(lambda event: event.data.get("conversation") == conversation_id)
    session.close()

    def news(since: int, changed: bool) -> tuple[list[chats.Line], dict[str, Any] | None]:
        with factory() as reader:
            found = chats.lines(reader, conversation_id, since)
            described = chats.describe(reader, reader.get(Conversation, conversation_id)) if changed else None
        return found, described

    def stream() -> Iterator[str]:
        nonlocal last
        try:
            yield "retry: 2000\n\n"
            state_seen: dict[str, Any] | None = None
            while True:
                try:
                    event: Event | None = subscription.get(timeout=KEEPALIVE_SECONDS)
                except queue.Empty:
                    event = None
                if event is not None and event.kind == "chat.typing":
                    if event.data.get("sender") == "agent":
                        yield _frame("typing", {"from": "agent", "agent": event.data.get("name"),
                                                "typing": bool(event.data.get("typing"))})
                    continue
                # A message (its lines), a change of owner (the state too); or, with nothing for a while, a look at
                # both in case something was missed.
                found, described = news(last, state_seen is None or event is None or event.kind != "chat.message")
                for line in found:
                    last = max(last, line.id)
                    yield _frame("message", line.as_json(), line.id)
                if described is not None and described != state_seen:
                    state_seen = described
                    yield _frame("state", described)
                if event is None:
                    yield ": keep-alive\n\n"
        finally:
            hub.unsubscribe(subscription)

    return event_stream(stream())


def _frame(kind: str, data: dict[str, Any], event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def install(app: Flask) -> None:
    csrf.exempt(blueprint)  # the widget's API authenticates with the conversation key, never with cookies
    app.register_blueprint(blueprint)

    @app.before_request
    def _watch() -> None:
        state().claim_watch.start()

