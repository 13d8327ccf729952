"""Live updates: server-sent events from the activity feed (``core.activity``, followed by ``console.hub``) to
the pages open right now.

A stream passes on what its agent may see (their teams' events; a presence or claim says who, never what a
customer wrote). A browser that lost its connection comes back with the id of the last event it saw
(``Last-Event-ID``) and gets what it missed, from the feed, before the live ones. A page opens its stream from
where the feed stood before the page read what it shows (``since``, noted by ``note_position``): a ticket created
between the page's reading and its stream's opening is not missed.
"""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator

from flask import Blueprint, Response, g, request
from flask_login import current_user, login_required

from console.state import db, state
from core.activity import Event, events_after, latest_id

blueprint = Blueprint("live", __name__)
KEEPALIVE_SECONDS = 15.0
REPLAY_LIMIT = 500


@blueprint.before_app_request
def note_position() -> None:
    """Before a page reads what it shows, note the feed's position (``g.events_since``) for its stream."""
    if request.method == "GET" and request.endpoint not in (None, "static", "live.events") \
            and not request.headers.get("X-Requested-With"):
        g.events_since = latest_id(db())


def _visible(event: Event, teams: tuple[str, ...], supervisor: bool) -> bool:
    return event.team in teams or (event.team is None and supervisor)


def _frame(event: Event) -> str:
    data = {"kind": event.kind, "ticket": event.ticket_id, "agent": event.agent_id, **event.data}
    return f"id: {event.id}\nevent: {event.kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@blueprint.get("/events")
@login_required
def events() -> Response:
    """The event stream of the signed-in agent (``text/event-stream``)."""
    hub, factory = state().hub, state().factory  # the stream below runs outside the request's context
    teams, supervisor = current_user.visible_teams, current_user.is_supervisor
    since = request.headers.get("Last-Event-ID") or request.args.get("since") or ""
    subscription = hub.subscribe()

    def stream() -> Iterator[str]:
        try:
            yield "retry: 2000\n\n"
            last, replayed = hub.position, set[int]()
            if since.isdigit() and int(since) < last:
                with factory() as session:  # what the browser missed while it was away
                    for event in events_after(session, int(since), REPLAY_LIMIT):
                        if event.id <= last and _visible(event, teams, supervisor):
                            replayed.add(event.id)
                            yield _frame(event)
            while True:
                try:
                    event = subscription.get(timeout=KEEPALIVE_SECONDS)
                except queue.Empty:
                    yield ": keep-alive\n\n"
                    continue
                # (the hub hands out late commits below ``last`` too: only what was replayed is skipped)
                if event.id not in replayed and _visible(event, teams, supervisor):
                    yield _frame(event)
        finally:
            hub.unsubscribe(subscription)

    return event_stream(stream())


def event_stream(frames: Iterator[str]) -> Response:
    """A response that sends ``frames`` as they come (never cached, never buffered by a proxy)."""
    response = Response(frames, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"
    return response
