"""Worklists: the tickets of the agent's teams by status, queue, language, priority, channel, assignee and misroute
flag, with counts, priority then age, a page at a time, and search by reference, sender, subject or account.

The page follows the live feed: when a ticket of the agent's teams changes, its script fetches the list again
(``/rows``, the same filters) and swaps it in, without reloading the page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, render_template, request
from flask_login import current_user, login_required

from console.state import db, state
from core.db.models import PRIORITIES, TEAMS
from core.knowledge import QUEUES
from core.language import SUPPORTED_LANGUAGES
from core.tickets import STATUS_CHOICES, TicketFilter, worklist as load_worklist

blueprint = Blueprint("queues", __name__)
CHANNELS = ("email", "chat")


def _choice(name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name, "")
    return value if value in allowed else None


def filter_from_request() -> TicketFilter:
    """The worklist asked for; unknown values are ignored rather than trusted."""
    assignee = request.args.get("assignee", "")
    return TicketFilter(
        status=_choice("status", STATUS_CHOICES) or "active",
        team=_choice("team", TEAMS),
        queue=_choice("queue", QUEUES),
        language=_choice("language", SUPPORTED_LANGUAGES),
        priority=_choice("priority", PRIORITIES),
        channel=_choice("channel", CHANNELS),
        assignee=assignee if assignee in ("me", "none") or assignee.isdigit() else None,
        misroute=request.args.get("misroute") == "1",
        search=request.args.get("q", "")[:200],
    )


def _page() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 100_000 else 1


def _link(choice: TicketFilter, **changes: Any) -> str:
    """The worklist URL of ``choice`` with ``changes`` (None removes a filter)."""
    values = {"status": choice.status, "team": choice.team, "queue": choice.queue, "language": choice.language,
              "priority": choice.priority, "channel": choice.channel, "assignee": choice.assignee,
              "misroute": "1" if choice.misroute else None, "q": choice.search or None}
    values.update(changes)
    query = urlencode({k: v for k, v in values.items() if v not in (None, "")})
    return f"?{query}" if query else "?"


def _context() -> dict[str, Any]:
    choice = filter_from_request()
    work = load_worklist(db(), current_user, choice, _page(), team_counts_of=state().counts)
    return {"choice": choice, "work": work, "link": lambda **changes: _link(choice, **changes),
            "queues": QUEUES, "priorities": PRIORITIES, "statuses": STATUS_CHOICES, "channels": CHANNELS,
            "teams": current_user.visible_teams}


@blueprint.get("/")
@login_required
def worklist() -> str:
    return render_template("queues.html", **_context())


@blueprint.get("/rows")
@login_required
def rows() -> str:
    """The list and its counts alone, for the page's live refresh."""
    return render_template("_worklist.html", **_context())
