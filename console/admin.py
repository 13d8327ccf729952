"""What needs a person beyond the tickets: outgoing mail that did not go (failed, refused, in doubt, stuck) and
messages the mailroom could not handle (quarantined), each with a way to try again; and the audit trail."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from console.state import db
from console.tickets import refuse
from core import ticket_actions
from core.audit import trail
from core.tickets import TicketError, outbox_problems, quarantined

blueprint = Blueprint("admin", __name__)
PER_PAGE = 100


@blueprint.get("/mail")
@login_required
def mail() -> str:
    return render_template("mail.html", outbox=outbox_problems(db(), current_user),
                           quarantine=quarantined(db(), current_user))


@blueprint.post("/mail/outbox/<int:outbox_id>/retry")
@login_required
def retry(outbox_id: int) -> Any:
    try:
        ticket_actions.retry_mail(db(), current_user, outbox_id)
    except TicketError as error:
        raise refuse(error) from None
    flash(_("The mail will be sent again."), "info")
    return redirect(url_for("admin.mail"))


@blueprint.post("/mail/quarantine/<int:inbound_id>/reprocess")
@login_required
def reprocess(inbound_id: int) -> Any:
    try:
        ticket_actions.reprocess(db(), current_user, inbound_id)
    except TicketError as error:
        raise refuse(error) from None
    flash(_("The mailroom will read this message again."), "info")
    return redirect(url_for("admin.mail"))


@blueprint.get("/audit")
@login_required
def audit() -> str:
    """Every action of the teams supervised, newest first (supervisors only)."""
    if not current_user.is_supervisor:
        abort(403)
    raw = request.args.get("page", "1")
    page = int(raw) if raw.isdigit() and 0 < int(raw) < 10_000 else 1
    entries = trail(db(), current_user.visible_teams, limit=PER_PAGE + 1, offset=(page - 1) * PER_PAGE,
                    action=request.args.get("action") or None)
    return render_template("audit.html", entries=entries[:PER_PAGE], page=page, more=len(entries) > PER_PAGE)
