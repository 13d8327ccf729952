"""What agents do in a chat handed to their team: claim it, write to the customer, hand it back to the bot, close
it; and the new lines of its log, which the ticket page fetches when the live stream says one arrived.

A chat is a ticket of channel ``chat`` (it shows in the same worklists as mail); the ticket page shows its log
and these controls. Actions are POSTs with the session's CSRF token; from the page's script they answer JSON,
from a plain form a redirect back to the ticket. Handing back commits first, then asks the bot to say it is back
(``console.bot_client.bot_resumes``), so the bot speaks only once the agent has let go.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from console.state import db, state
from console.tickets import refuse
from console.bot_client import bot_resumes
from core import chats
from core.db.models import Conversation
from core.tickets import TicketError, visible_ticket

blueprint = Blueprint("chat", __name__, url_prefix="/tickets/<int:ticket_id>/chat")


def _fetch() -> bool:
    return request.headers.get("X-Requested-With") == "fetch"


def _act(ticket_id: int, action: Callable[[Any], Any], done: str, shown: Callable[[], dict[str, Any]] | None = None
         ) -> Any:
    """Run ``action(session)`` and commit (before the answer and before any call to the bot); the page's script
    gets ``shown()`` too in the answer."""
    session = db()  # (the request's session: the agent was read with it, one connection serves both)
    try:
        action(session)
        session.commit()
    except TicketError as error:
        session.rollback()
        if _fetch():
            return jsonify({"error": str(error)}), 409
        raise refuse(error, ticket_id) from None
    if _fetch():
        return jsonify({"ok": True, "message": done, **(shown() if shown else {})})
    flash(done, "info")
    return redirect(url_for("tickets.show", ticket_id=ticket_id))


@blueprint.post("/claim")
@login_required
def claim(ticket_id: int) -> Any:
    return _act(ticket_id, lambda session: chats.claim(session, current_user, ticket_id),
                _("You have the chat: the customer sees that you joined."))


@blueprint.post("/say")
@login_required
def say(ticket_id: int) -> Any:
    """The agent's message. The page's script gets the chat's lines after ``after`` (the last it shows) up to this
    one in the answer, and fetches none for it: the conversation's lock orders its messages, so none that came
    before is left out."""
    text, after = request.form.get("text", ""), request.form.get("after", "")
    sent: list[Any] = []

    def act(session: Any) -> None:
        message = chats.say(session, current_user, ticket_id, text)
        conversation = session.get(Conversation, message.conversation_id)  # (locked by ``say``: no query)
        since = int(after) if after.isdigit() else int(message.id) - 1
        sent[:] = [conversation, chats.lines(session, int(conversation.id), since, upto=int(message.id))]

    def shown() -> dict[str, Any]:
        return {"lines": render_template("_chat_lines.html", conversation=sent[0], lines=sent[1])}

    return _act(ticket_id, act, _("Sent."), shown)


@blueprint.post("/hand-back")
@login_required
def hand_back(ticket_id: int) -> Any:
    conversation_id: list[int] = []

    def act(session: Any) -> None:
        conversation_id.append(int(chats.hand_back(session, current_user, ticket_id).id))

    answer = _act(ticket_id, act, _("The virtual assistant has the conversation again."))
    if conversation_id:
        bot_resumes(state().factory, state().settings, conversation_id[0])
    return answer


@blueprint.post("/close")
@login_required
def close(ticket_id: int) -> Any:
    return _act(ticket_id, lambda session: chats.close(session, current_user, ticket_id),
                _("The chat has ended; the customer may rate it."))


def _chat(ticket_id: int) -> Any:
    """The conversation of a ticket the agent may see (None: the ticket is no chat); refused otherwise."""
    try:
        visible_ticket(db(), current_user, ticket_id)
    except TicketError as error:
        raise refuse(error, ticket_id) from None
    return chats.of_ticket(db(), ticket_id)


@blueprint.post("/typing")
@login_required
def typing(ticket_id: int) -> Any:
    session = db()
    conversation = _chat(ticket_id)
    if conversation is not None and conversation.owner == "agent" and conversation.agent_id == current_user.id:
        chats.typing(session, conversation, "agent", request.form.get("typing") == "1", current_user)
    return jsonify({"ok": True})


@blueprint.get("/lines")
@login_required
def lines(ticket_id: int) -> str:
    """The chat's lines after ``after`` (an HTML fragment), and its state, for the live page."""
    session = db()
    conversation = _chat(ticket_id)
    after = request.args.get("after", "0")
    found = chats.lines(session, int(conversation.id), int(after) if after.isdigit() else 0) if conversation else []
    return render_template("_chat_lines.html", lines=found, conversation=conversation)
