"""Live updates: what a colleague does reaches an agent's open page as a server-sent event, only for the teams
they see, and a page that lost its connection gets what it missed when it comes back."""

from __future__ import annotations

import json
import re
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from tests.console.conftest import Agent, StaffAccount


def frames(response: Any) -> Iterator[dict[str, Any]]:
    """The events of a streamed response, as they come (keep-alives skipped). The stream is read in a thread of
    its own, as a server would serve it: its request context must not be the one of the test's next requests."""
    received: queue.Queue[dict[str, Any]] = queue.Queue()

    def read() -> None:
        buffer = ""
        for chunk in response.response:
            buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
            while "\n\n" in buffer:
                frame, buffer = buffer.split("\n\n", 1)
                fields = dict(line.split(": ", 1) for line in frame.splitlines()
                              if ": " in line and not line.startswith(":"))
                if "data" in fields:
                    received.put({"id": int(fields["id"]), "event": fields["event"], **json.loads(fields["data"])})

    threading.Thread(target=read, daemon=True).start()
    while True:
        yield received.get(timeout=30)


def test_a_colleagues_claim_reaches_an_open_page_and_another_teams_news_does_not(
    make_agent: Callable[..., StaffAccount], signed_in: Callable[[StaffAccount], Agent],
    make_ticket: Callable[..., int],
) -> None:
    watcher, colleague, american = (signed_in(make_agent("CA")), signed_in(make_agent("CA", name="Claire Colleague")),
                                    signed_in(make_agent("US")))
    ours, theirs = make_ticket(team="CA"), make_ticket(team="US", language="en")
    stream = watcher.client.get("/events", buffered=False)
    assert stream.status_code == 200 and stream.mimetype == "text/event-stream"
    events = frames(stream)
    american.post(f"/tickets/{theirs}/claim")  # not for a Canadian agent's eyes
    colleague.post(f"/tickets/{ours}/claim")
    event = next(events)
    assert (event["event"], event["ticket"], event["agent"]) == ("ticket.changed", ours, colleague.agent.id)
    assert event["field"] == "assignee_id"


def test_a_page_that_comes_back_gets_what_it_missed_then_the_live_ones(
    make_agent: Callable[..., StaffAccount], signed_in: Callable[[StaffAccount], Agent],
    make_ticket: Callable[..., int],
) -> None:
    watcher, colleague = signed_in(make_agent("CA")), signed_in(make_agent("CA"))
    ticket = make_ticket()
    first = watcher.client.get("/events", buffered=False)
    events = frames(first)
    colleague.post(f"/tickets/{ticket}/note", {"text": "première note"})
    seen = next(events)  # ...and then the page loses its connection (this stream is never read again)
    colleague.post(f"/tickets/{ticket}/note", {"text": "deuxième note"})
    colleague.post(f"/tickets/{ticket}/set", {"field": "priority", "value": "high"})
    again = watcher.client.get("/events", headers={"Last-Event-ID": str(seen["id"])}, buffered=False)
    events = frames(again)
    missed = [next(events), next(events)]
    assert [e["event"] for e in missed] == ["ticket.message", "ticket.changed"]
    assert all(e["id"] > seen["id"] for e in missed) and missed[0]["id"] < missed[1]["id"]
    colleague.post(f"/tickets/{ticket}/claim")
    live = next(events)
    assert live["event"] == "ticket.changed" and live["id"] > missed[1]["id"]


def test_a_page_streams_from_where_the_feed_stood_when_it_was_read(
    make_agent: Callable[..., StaffAccount], signed_in: Callable[[StaffAccount], Agent],
    make_ticket: Callable[..., int],
) -> None:
    watcher, colleague = signed_in(make_agent("CA")), signed_in(make_agent("CA"))
    ticket = make_ticket()
    page = watcher.client.get("/")
    since = re.search(r'data-events-since="(\d+)"', page.get_data(as_text=True))
    assert since is not None, "a page says where the feed stood when it was read"
    # A colleague acts after the page was read and before its script opened the stream: the page would miss it.
    colleague.post(f"/tickets/{ticket}/claim")
    events = frames(watcher.client.get(f"/events?since={since.group(1)}", buffered=False))
    event = next(events)
    assert (event["event"], event["ticket"], event["agent"]) == ("ticket.changed", ticket, colleague.agent.id)
