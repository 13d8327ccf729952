"""The activity feed on a real store: a reader never misses an event whose transaction took a lower id but
committed after a higher one (PostgreSQL hands ids out before commit), gives up on ids that never come, and
pruning keeps the newest event."""

from __future__ import annotations

import select
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.orm import Session, sessionmaker

from core.activity import CHANNEL, GAP_SECONDS, Follower, latest_id, prune, publish
from core.db.models import ActivityEvent


# PostgreSQL only: SQLite serialises writers, so its ids are committed in order (its gap case is tested below).
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_event_committed_after_a_higher_id_is_still_read(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        follower = Follower(latest_id(session))
    slow, fast = sessions(), sessions()
    publish(slow, "ticket.created", "CA", None, None, n="slow")
    slow.flush()  # the slow transaction holds the lower id, uncommitted
    publish(fast, "ticket.created", "CA", None, None, n="fast")
    fast.commit()
    with sessions() as session:
        assert [event.data["n"] for event in follower.read(session)] == ["fast"]
    slow.commit()
    with sessions() as session:
        assert [event.data["n"] for event in follower.read(session)] == ["slow"]
        assert follower.read(session) == [] and not follower.gaps
    slow.close()
    fast.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_follower_started_now_awaits_the_lower_ids_not_yet_committed(sessions: sessionmaker[Session]) -> None:
    slow, fast = sessions(), sessions()
    publish(slow, "ticket.created", "CA", None, None, n="slow")
    slow.flush()
    publish(fast, "ticket.created", "CA", None, None, n="fast")
    fast.commit()
    with sessions() as session:
        follower = Follower.from_now(session)  # (a console's hub starting while "slow" is still open)
        assert follower.read(session) == []
    slow.commit()
    with sessions() as session:
        assert [event.data["n"] for event in follower.read(session)] == ["slow"]
    slow.close()
    fast.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_listener_is_told_when_events_are_committed_not_before(sessions: sessionmaker[Session]) -> None:
    listening = sessions.kw["bind"].raw_connection()
    try:
        listening.set_isolation_level(0)  # (autocommit: LISTEN takes effect at once)
        listening.cursor().execute(f"LISTEN {CHANNEL}")
        writer = sessions()
        publish(writer, "ticket.created", "CA", None, None)
        writer.flush()
        listening.poll()
        assert listening.notifies == []  # (uncommitted: nobody may read it yet)
        writer.commit()
        writer.close()
        deadline = time.monotonic() + 10
        while not listening.notifies and time.monotonic() < deadline:
            select.select([listening.connection], [], [], 1.0)
            listening.poll()
        assert [note.channel for note in listening.notifies] == [CHANNEL]
    finally:
        listening.close()


# SQLite only: explicit ids would leave the shared PostgreSQL store's sequence behind (its case is tested above).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_gap_is_watched_then_given_up(sessions: sessionmaker[Session]) -> None:
    now = [1000.0]
    with sessions() as session:
        start = latest_id(session)
        follower = Follower(start, clock=lambda: now[0])
        session.add(ActivityEvent(id=start + 3, kind="ticket.created", team="CA", data={}))
        session.commit()
        assert [event.id for event in follower.read(session)] == [start + 3]
        assert follower.gaps == {start + 1, start + 2}
        session.add(ActivityEvent(id=start + 2, kind="ticket.created", team="CA", data={}))
        session.commit()
        assert [event.id for event in follower.read(session)] == [start + 2]
        assert follower.gaps == {start + 1}
        now[0] += GAP_SECONDS + 1  # its transaction rolled back: the id never comes
        assert follower.read(session) == [] and not follower.gaps


def test_pruning_keeps_the_newest_event(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        publish(session, "ticket.created", "CA")
        publish(session, "ticket.created", "US")
        session.commit()
        newest = latest_id(session)
        assert prune(session, now=datetime.now(timezone.utc) + timedelta(days=30)) >= 1
        session.commit()
        assert latest_id(session) == newest
