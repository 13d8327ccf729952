"""One ``LiveHub`` per console process: it follows the activity feed (``core.activity``) in a thread of its own
and hands each new event to the event streams open in that process (``console.live``).

Every console replica follows the same feed, so an agent on one replica sees what a colleague did on another. On
PostgreSQL the hub sleeps on LISTEN and wakes at each commit's NOTIFY; on SQLite it wakes at each commit of its own
process (``ring``) and looks every ``POLL_SECONDS`` for the other processes' commits.
"""

from __future__ import annotations

import logging
import queue
import select
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.activity import CHANNEL, Event, Follower

logger = logging.getLogger(__name__)
POLL_SECONDS = 0.2


class LiveHub:
    """Follows the activity feed and fans each event out to this process's open streams."""

    def __init__(self, factory: sessionmaker[Session], dialect: str) -> None:
        self._factory = factory
        self._dialect = dialect
        self._lock = threading.Lock()
        # Each stream's queue, and which events it wants (None: all): a widget's stream wants its conversation's
        # only, so that an event wakes the one thread it concerns, not every open stream of the process.
        self._subscribers: dict[queue.SimpleQueue[Event], Callable[[Event], bool] | None] = {}
        self._thread: threading.Thread | None = None
        self._follower = Follower(0)
        self._stop = threading.Event()
        self._bell = threading.Event()

    def ring(self) -> None:
        """Something was committed in this process: look now (SQLite has no NOTIFY)."""
        self._bell.set()

    def subscribe(self, wants: Callable[[Event], bool] | None = None) -> queue.SimpleQueue[Event]:
        """A new stream's queue (of the events ``wants``, or all); the hub starts following the feed with the first
        one."""
        events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        with self._lock:
            self._subscribers[events] = wants
            if self._thread is None or not self._thread.is_alive():
                with self._factory() as session:
                    self._follower = Follower.from_now(session)
                self._thread = threading.Thread(target=self._follow, name="live-hub", daemon=True)
                self._thread.start()
        return events

    def stop(self) -> None:
        """Stop following the feed (the open streams receive nothing more)."""
        self._stop.set()
        self._bell.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def unsubscribe(self, events: queue.SimpleQueue[Event]) -> None:
        with self._lock:
            self._subscribers.pop(events, None)

    @property
    def position(self) -> int:
        """The highest id handed out (a late commit below it may still come)."""
        return self._follower.last_id

    def _follow(self) -> None:
        checkout = self._listen() if self._dialect == "postgresql" else None
        listener = checkout.dbapi_connection if checkout is not None else None
        try:
            while not self._stop.is_set():
                try:
                    self._deliver()
                except Exception:  # the store went away for a moment: logged, and the hub goes on
                    logger.exception("live updates: reading the activity feed failed; trying again")
                    self._stop.wait(1.0)
                if listener is not None:
                    try:
                        ready, _, _ = select.select([listener], [], [], 2.0)
                        if ready:
                            listener.poll()
                            listener.notifies.clear()
                    except Exception:
                        logger.exception("live updates: LISTEN failed; looking every %.1f s instead", POLL_SECONDS)
                        listener = None
                else:
                    self._bell.wait(POLL_SECONDS)  # (commits of other processes are seen at the next look)
                    self._bell.clear()
        finally:
            if checkout is not None:
                checkout.invalidate()  # (a LISTENing connection is not given back to the pool)

    def _listen(self) -> Any:
        """A connection of the pool, kept checked out for good (the returned object holds it: were it dropped,
        the pool would hand the connection to others, who would swallow the notifications), listening on the
        feed's channel; None if it cannot be had."""
        try:
            engine = self._factory.kw["bind"]
            checkout = engine.raw_connection()
            raw = checkout.dbapi_connection
            raw.set_isolation_level(0)  # autocommit: LISTEN takes effect at once
            raw.cursor().execute(f"LISTEN {CHANNEL}")
            return checkout
        except Exception:
            logger.exception("live updates: cannot LISTEN; looking every %.1f s instead", POLL_SECONDS)
            return None

    def _deliver(self) -> None:
        with self._factory() as session:
            events = self._follower.read(session)
        if not events:
            return
        with self._lock:
            subscribers = list(self._subscribers.items())
        for subscriber, wants in subscribers:
            for event in events:
                if wants is None or wants(event):
                    subscriber.put(event)
