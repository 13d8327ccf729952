"""One ticket: its whole thread, the account beside it, suggested answers, and what agents do to it.

Every action is a POST with the session's CSRF token, answered by a redirect back to the ticket with a message
(post/redirect/get). Another team's ticket is refused (403) and the attempt logged. Before a reply goes out, the
server checks that nobody wrote to the customer or took the ticket since the page was loaded; if someone did, the
agent is shown who and asked again, their draft kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.exceptions import HTTPException

from console.i18n import language
from console.state import db, state
from core import chats, ticket_actions
from core.db.models import PRIORITIES, TICKET_STATUSES, PortalUser
from core.knowledge import QUEUES
from core.language import SUPPORTED_LANGUAGES
from core.tickets import (
    NotFound,
    NotVisible,
    TicketError,
    agents_for,
    latest_customer_text,
    presence_of,
    ticket_detail,
    visible_ticket,
)

logger = logging.getLogger(__name__)
blueprint = Blueprint("tickets", __name__, url_prefix="/tickets")


def refuse(error: TicketError, ticket_id: int | None = None) -> HTTPException:
    """The HTTP refusal of a ticket error (and a log line for another team's ticket)."""
    if isinstance(error, NotVisible):
        logger.warning("agent %s (%s) refused: %s (ticket id %s)", current_user.id,
                       ",".join(current_user.visible_teams), error, ticket_id)
        return _abort(403, _("This ticket belongs to another team."))
    if isinstance(error, NotFound):
        return _abort(404, _("There is no such ticket."))
    return _abort(400, str(error))


def _abort(status: int, message: str) -> HTTPException:
    try:
        abort(Response(render_template("error.html", status=status, message=message), status=status))
    except HTTPException as error:
        return error
    raise AssertionError("abort() always raises")


def _detail(ticket_id: int) -> Any:
    try:
        return ticket_detail(db(), current_user, ticket_id, datetime.now(timezone.utc).date())
    except TicketError as error:
        raise refuse(error, ticket_id) from None


def _page(ticket_id: int, status: int = 200, **extra: Any) -> tuple[str, int]:
    detail = _detail(ticket_id)
    ticket = detail.ticket
    chat = chats.of_ticket(db(), ticket_id) if ticket.channel == "chat" else None
    chat_lines = chats.lines(db(), int(chat.id)) if chat is not None else []
    customer_text = (chats.problem_text(db(), int(chat.id)) if chat is not None
                     else latest_customer_text(detail.thread)) or str(ticket.subject)
    suggestions = state().suggester.suggest(customer_text, str(ticket.language))
    article = state().articles.get(str(ticket.topic or ""))
    return render_template(
        "ticket.html", detail=detail, ticket=ticket, suggestions=suggestions,
        topic=article.title[language()] if article is not None else None,
        agents=agents_for(db(), str(ticket.team)), queues=QUEUES, priorities=PRIORITIES, statuses=TICKET_STATUSES,
        languages=SUPPORTED_LANGUAGES, chat=chat, chat_lines=chat_lines,
        chat_user=db().get(PortalUser, chat.portal_user_id) if chat is not None and chat.portal_user_id else None,
        **extra,
    ), status


@blueprint.get("/<int:ticket_id>")
@login_required
def show(ticket_id: int) -> tuple[str, int]:
    return _page(ticket_id)


@blueprint.get("/<int:ticket_id>/live")
@login_required
def live_parts(ticket_id: int) -> str:
    """The thread, the ticket's properties and who is there: what the page swaps in when something changed."""
    detail = _detail(ticket_id)
    return render_template("_ticket_live.html", detail=detail, ticket=detail.ticket)


def _act(ticket_id: int, action: Callable[[], Any], done: str) -> Any:
    try:
        action()
    except TicketError as error:
        raise refuse(error, ticket_id) from None
    flash(done, "info")
    return redirect(url_for("tickets.show", ticket_id=ticket_id))


@blueprint.post("/<int:ticket_id>/claim")
@login_required
def claim(ticket_id: int) -> Any:
    return _act(ticket_id, lambda: ticket_actions.claim(db(), current_user, ticket_id), _("The ticket is yours."))


@blueprint.post("/<int:ticket_id>/assign")
@login_required
def assign(ticket_id: int) -> Any:
    raw = request.form.get("assignee", "")
    assignee = int(raw) if raw.isdigit() else None
    return _act(ticket_id, lambda: ticket_actions.assign(db(), current_user, ticket_id, assignee),
                _("Assigned.") if assignee else _("Unassigned."))


@blueprint.post("/<int:ticket_id>/set")
@login_required
def set_field(ticket_id: int) -> Any:
    """Status, queue or priority (one form each)."""
    field, value = request.form.get("field", ""), request.form.get("value", "")
    setters = {"status": ticket_actions.set_status, "queue": ticket_actions.set_queue,
               "priority": ticket_actions.set_priority}
    if field not in setters:
        abort(400)
    return _act(ticket_id, lambda: setters[field](db(), current_user, ticket_id, value), _("Saved."))


@blueprint.post("/<int:ticket_id>/note")
@login_required
def note(ticket_id: int) -> Any:
    if not request.form.get("text", "").strip():
        flash(_("Write the note first."), "error")
        return redirect(url_for("tickets.show", ticket_id=ticket_id))
    return _act(ticket_id, lambda: ticket_actions.add_note(db(), current_user, ticket_id, request.form.get("text", "")),
                _("Note added."))


@blueprint.post("/<int:ticket_id>/reply")
@login_required
def reply(ticket_id: int) -> Any:
    text = request.form.get("text", "")
    language = request.form.get("language", "")
    status_after = request.form.get("status_after", "waiting")
    if language not in SUPPORTED_LANGUAGES or status_after not in TICKET_STATUSES:
        abort(400)
    if not text.strip():
        flash(_("Write the reply first."), "error")
        return redirect(url_for("tickets.show", ticket_id=ticket_id))
    try:
        ticket = visible_ticket(db(), current_user, ticket_id)
    except TicketError as error:
        raise refuse(error, ticket_id) from None
    if request.form.get("confirm") != "1":
        collision = _collision(ticket, request.form.get("seen_message", ""), request.form.get("seen_assignee", ""))
        if collision:
            return _page(ticket_id, 409, draft=text, draft_language=language, collision=collision)
    return _act(ticket_id, lambda: ticket_actions.reply(db(), current_user, ticket_id, text, language,
                                                       state().mailer, status_after),
                _("Your reply is on its way to the customer."))


def _collision(ticket: Any, seen_message: str, seen_assignee: str) -> str | None:
    """What happened since the agent loaded the page that they should know before sending (None: nothing)."""
    detail = _detail(int(ticket.id))
    newer = [item for item in detail.thread if seen_message.isdigit() and item.id > int(seen_message)
             and item.direction in ("in", "out")]
    if any(item.direction == "out" for item in newer):
        author = next((item.author for item in newer if item.direction == "out" and item.author), None)
        return str(_("%(name)s wrote to the customer since you opened this ticket.", name=author or _("Someone")))
    if any(item.direction == "in" for item in newer):
        return str(_("The customer wrote again since you opened this ticket."))
    if ticket.assignee_id and ticket.assignee_id != current_user.id and str(ticket.assignee_id) != seen_assignee:
        return str(_("%(name)s took this ticket since you opened it.", name=detail.assignee or _("Someone")))
    replying = [p.name for p in presence_of(db(), int(ticket.id)) if p.state == "replying" and p.agent_id != current_user.id]
    if replying:
        return str(_("%(name)s is writing a reply to this ticket right now.", name=", ".join(replying)))
    return None


@blueprint.post("/<int:ticket_id>/merge")
@login_required
def merge(ticket_id: int) -> Any:
    into = request.form.get("into", "")
    try:
        target = ticket_actions.merge(db(), current_user, ticket_id, into)
    except NotFound:
        flash(_("There is no ticket %(reference)s.", reference=into[:20]), "error")
        return redirect(url_for("tickets.show", ticket_id=ticket_id))
    except TicketError as error:
        raise refuse(error, ticket_id) from None
    flash(_("Merged into %(reference)s.", reference=target.reference), "info")
    return redirect(url_for("tickets.show", ticket_id=int(target.id)))


@blueprint.post("/<int:ticket_id>/misroute")
@login_required
def misroute(ticket_id: int) -> Any:
    if request.form.get("decision") == "confirm":
        try:
            ticket_actions.confirm_misroute(db(), current_user, ticket_id, state().mailer)
        except TicketError as error:
            raise refuse(error, ticket_id) from None
        flash(_("Forwarded to the other team; the customer is told where to write."), "info")
        return redirect(url_for("queues.worklist"))  # the ticket is the other team's now
    if request.form.get("decision") == "reject":
        return _act(ticket_id, lambda: ticket_actions.reject_misroute(db(), current_user, ticket_id),
                    _("The ticket stays with this team."))
    abort(400)


@blueprint.post("/<int:ticket_id>/presence")
@login_required
def presence(ticket_id: int) -> Any:
    """The page says the agent is here (viewing), writing (replying) or gone; others are told live."""
    try:
        ticket_actions.touch_presence(db(), current_user, ticket_id, request.form.get("state", "viewing"))
    except TicketError as error:
        raise refuse(error, ticket_id) from None
    return jsonify({"ok": True})
