"""Rasa's SQL tracker store on the project's one database URL, loading a bounded window of each conversation.

Stock ``SQLTrackerStore`` reloads and replays every event of a conversation session on every message, and the
policies then featurise all of it, so replies slow down as a conversation grows (to about 130 ms by turn 200 on
a 2-core machine). Only the last few turns decide what the assistant does next, so this store loads the most
recent ``tracker_window`` events, starting at a turn boundary, preceded by the slot values and active loop in
force at that point (read from the events table, not replayed). Every event is still stored, and
``retrieve_full_tracker`` still returns whole conversations (for transcripts and the agent console).

Each server also keeps the trackers it saved last (``KEPT_TRACKERS``), as the database has them. The next message
of such a conversation is handled with the tracker kept, without reading its window and replaying it, when the
conversation's latest stored event is still the one this server stored (one indexed query): another server that
answered a message in between, or anything else written, and the window is read again. HAProxy sends each
conversation to the same server (runner/cluster.py), so most messages find theirs. A tracker is taken out while
a message is handled with it and kept again only once saved: one whose message failed is read again. A tracker
grown past twice the window is not kept, so the next message reads the window.
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActiveLoop,
    AllSlotsReset,
    BotUttered,
    Event,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.utils.common import all_subclasses

from bot.rasa_patches import forget_memos, install_performance_patches
from core.db.engine import configure_sqlite
from core.identity import TOKEN_METADATA_KEY
from core.redaction import install_log_redaction, redact_card_data
from core.settings import Settings

logger = logging.getLogger(__name__)

# Set on each tracker this store builds: how many of its events are already in the database.
STORED_EVENTS_ATTRIBUTE = "_billing_stored_event_count"
# And the id of the conversation's latest event in the database when it was loaded or saved.
LATEST_ID_ATTRIBUTE = "_billing_latest_event_id"
# Conversations whose tracker a server keeps between messages, the most recently saved: up to 0.4 MB each with
# the memos bot.rasa_patches keeps on it (measured with tracemalloc at 115 events), so about 80 MB at most.
KEPT_TRACKERS = 200
# A string can hold a card number only if it holds 13 digits in a row, with at most one space, dot or dash
# between two of them (every match of core.redaction's card pattern contains one): the others need no redaction.
_MAY_HOLD_CARD = re.compile(r"\d(?:[ .\-]?\d){12}")


def event_classes_by_type() -> dict[str, type[Event]]:
    """Every event class by its ``type_name``, first definition winning as in ``Event.resolve_by_type``.

    ``Event.from_parameters`` walks all Event subclasses for every event it reads; with a window of a hundred
    events that reflection cost more than the database query, so the store resolves types through this map.
    """
    classes: dict[str, type[Event]] = {}
    for cls in all_subclasses(Event):
        classes.setdefault(cls.type_name, cls)
    return classes


def scrub(value: Any) -> Any:
    """``value`` with card data removed from every string and identity tokens dropped, at any depth."""
    if isinstance(value, str):
        return redact_card_data(value).text if _MAY_HOLD_CARD.search(value) else value
    if isinstance(value, list):
        return [scrub(item) for item in value]
    if isinstance(value, dict):
        return {key: ("[removed]" if key == TOKEN_METADATA_KEY else scrub(item)) for key, item in value.items()}
    return value


def deserialise(event_dicts: list[dict[str, Any]], classes: dict[str, type[Event]]) -> list[Event]:
    """Events from their stored form; unknown types are skipped as Rasa skips them."""
    events: list[Event] = []
    for data in event_dicts:
        cls = classes.get(str(data.get("event")))
        event = cls._from_parameters(data) if cls is not None else Event.from_parameters(data)
        if event is not None:
            events.append(event)
    return events


EVENTS_INDEX = "ix_events_sender_id_id"  # a conversation's events in order: every query of this store uses it
SCHEMA_LOCK = 0x62696C6C696E67  # PostgreSQL advisory lock key of the tracker store's tables ("billing")


@contextmanager
def schema_lock(url: sa.engine.URL) -> Iterator[None]:
    """On PostgreSQL, hold an advisory lock while the tables and index are created (checked first, created when
    missing): two servers doing it at once would both try to create them and one would fail. SQLite: nothing."""
    if url.get_backend_name() != "postgresql":
        yield
        return
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK})
            try:
                yield
            finally:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK})
    finally:
        engine.dispose()


class WindowedSQLTrackerStore(SQLTrackerStore):
    """SQL tracker store on ``Settings.database_url`` that loads the recent window of a conversation."""

    def __init__(
        self,
        domain: Domain | None = None,
        event_broker: EventBroker | None = None,
        url: str | None = None,
        window: int | None = None,
        **kwargs: Any,
    ) -> None:
        # The tracker store is built once when the Rasa server starts: the place for process-wide set-up.
        install_performance_patches()
        install_log_redaction()
        settings = Settings.from_env()
        database_url = sa.engine.make_url(url or settings.database_url)
        if database_url.get_backend_name() == "sqlite" and database_url.database:
            Path(database_url.database).parent.mkdir(parents=True, exist_ok=True)
        self.window = window or settings.tracker_window
        # A full URL in ``host`` is used as is by SQLTrackerStore (any dialect SQLAlchemy knows).
        kwargs.pop("host", None)
        with schema_lock(database_url):  # several Rasa servers starting at once on a new database
            super().__init__(
                domain=domain,
                host=database_url.render_as_string(hide_password=False),
                event_broker=event_broker,
                **kwargs,
            )
            # One Index object on Rasa's table, shared by every store of the process (a second one of the same name
            # would make the next store's create_all create the index twice).
            table = self.SQLEvent.__table__
            index = next((index for index in table.indexes if index.name == EVENTS_INDEX), None)
            if index is None:
                index = sa.Index(EVENTS_INDEX, self.SQLEvent.sender_id, self.SQLEvent.id)
            index.create(self.engine, checkfirst=True)
        configure_sqlite(self.engine)
        self._event_classes = event_classes_by_type()
        # The statements of every message, built once: SQLAlchemy then finds their compiled form without
        # rebuilding their cache key each time.
        events_table = self.SQLEvent.__table__
        sender = sa.bindparam("sender_id", type_=sa.String())
        session = (
            sa.select(sa.func.coalesce(sa.func.max(events_table.c.id), 0).label("start"))
            .where(events_table.c.sender_id == sender,
                   events_table.c.type_name.in_([SessionStarted.type_name, Restarted.type_name]))
            .cte("latest_session")
        )
        # The latest session's last events, newest first, each with the session's first id, in one query (plain
        # rows: no ORM objects are needed).
        self._window_query = (
            sa.select(events_table.c.id, events_table.c.type_name, events_table.c.action_name, events_table.c.data,
                      session.c.start)
            .where(events_table.c.sender_id == sender, events_table.c.id >= session.c.start)
            .order_by(events_table.c.id.desc())
            .limit(self.window + 1)
        )
        # What a long conversation's window needs from before it (see ``_state_before``).
        before = sa.bindparam("before", type_=sa.Integer())
        self._latest_of_type_query = sa.select(sa.func.coalesce(sa.func.max(events_table.c.id), 0)).where(
            events_table.c.sender_id == sender,
            events_table.c.type_name == sa.bindparam("type_name", type_=sa.String()),
            events_table.c.id < before,
        )
        self._latest_slots_query = (
            sa.select(sa.func.max(events_table.c.id))
            .where(events_table.c.sender_id == sender, events_table.c.type_name == SlotSet.type_name,
                   events_table.c.id >= sa.bindparam("reset", type_=sa.Integer()), events_table.c.id < before)
            .group_by(events_table.c.action_name)  # SQLTrackerStore stores a SlotSet's slot name there
        )
        self._events_by_id_query = (
            sa.select(events_table.c.data)
            .where(events_table.c.id.in_(sa.bindparam("ids", expanding=True)))
            .order_by(events_table.c.id)
        )
        self._insert_events = events_table.insert()
        self._latest_id_query = sa.select(sa.func.max(events_table.c.id)).where(events_table.c.sender_id == sender)
        # Trackers kept between messages: sender id -> (tracker as stored, id of the conversation's latest event).
        self._kept: OrderedDict[str, tuple[DialogueStateTracker, int]] = OrderedDict()

    # -- reading ---------------------------------------------------------------------------------------------

    def _latest_id(self, connection: Any, sender_id: str) -> int:
        """The id of the conversation's latest stored event (0: none)."""
        return int(connection.execute(self._latest_id_query, {"sender_id": sender_id}).scalar() or 0)

    def _latest_of_type(self, connection: Any, sender_id: str, type_name: str, before: int) -> int:
        """The id of the conversation's latest event of that type before event ``before`` (0: none)."""
        parameters = {"sender_id": sender_id, "type_name": type_name, "before": before}
        return int(connection.execute(self._latest_of_type_query, parameters).scalar() or 0)

    def _state_before(self, connection: Any, sender_id: str, start: int, first_id: int) -> list[dict[str, Any]]:
        """Events that recreate the slots and active loop in force just before event ``first_id``."""
        reset = max(start, self._latest_of_type(connection, sender_id, AllSlotsReset.type_name, first_id))
        slot_events = connection.execute(
            self._latest_slots_query, {"sender_id": sender_id, "reset": reset, "before": first_id}
        )
        ids = [row[0] for row in slot_events]
        loop_event = self._latest_of_type(connection, sender_id, ActiveLoop.type_name, first_id)
        if loop_event >= start:
            ids.append(loop_event)
        if not ids:
            return []
        return [json.loads(row.data) for row in connection.execute(self._events_by_id_query, {"ids": ids})]

    async def _retrieve(self, sender_id: str, fetch_events_from_all_sessions: bool) -> DialogueStateTracker | None:
        if fetch_events_from_all_sessions or self.domain is None:
            return await super()._retrieve(sender_id, fetch_events_from_all_sessions)
        kept = self._kept.pop(sender_id, None)  # the caller has it now; kept again when saved
        with self.engine.connect() as connection:
            if kept is not None and self._latest_id(connection, sender_id) == kept[1]:
                return kept[0]
            rows = connection.execute(self._window_query, {"sender_id": sender_id}).all()
            rows.reverse()
            if not rows:
                return None
            prefix: list[dict[str, Any]] = []
            if len(rows) > self.window:
                # Start the window where a turn starts (the bot listening), so no rule sees half a turn.
                for index, row in enumerate(rows):
                    if index > 0 and row.type_name == "action" and row.action_name == ACTION_LISTEN_NAME:
                        rows = rows[index:]
                        break
                prefix = self._state_before(connection, sender_id, rows[0].start, rows[0].id)
            events = prefix + [json.loads(row.data) for row in rows]
            latest = rows[-1].id
        tracker = DialogueStateTracker.from_events(
            sender_id, deserialise(events, self._event_classes), self.domain.slots
        )
        setattr(tracker, STORED_EVENTS_ATTRIBUTE, len(tracker.events))
        setattr(tracker, LATEST_ID_ATTRIBUTE, latest)
        return tracker

    # -- writing ---------------------------------------------------------------------------------------------

    def _unsaved_events(self, tracker: DialogueStateTracker) -> list[Event] | None:
        stored = getattr(tracker, STORED_EVENTS_ATTRIBUTE, None)
        if stored is None:
            return None
        return list(tracker.events)[stored:]

    async def stream_events(self, tracker: DialogueStateTracker) -> None:
        """Publish the tracker's new events to the event broker, if one is configured."""
        new_events = self._unsaved_events(tracker)
        if new_events is None:
            await super().stream_events(tracker)
        elif self.event_broker is not None:
            await self._stream_new_events(self.event_broker, new_events, tracker.sender_id)

    async def _stream_new_events(self, event_broker: EventBroker, new_events: list[Event], sender_id: str) -> None:
        """Publish events to the broker in their stored (scrubbed) form."""
        for event in new_events:
            event_broker.publish({"sender_id": sender_id, **self.serialise_event(event)})

    def serialise_event(self, event: Event) -> dict[str, Any]:
        """The stored form of one event: card numbers (in what the customer typed, and in any slot filled from
        it) never reach the database, nor does the portal's identity token, which is only needed in flight."""
        return dict(scrub(event.as_dict()))

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Store the events this tracker gained since it was loaded (or all unsaved ones, for a new tracker), and
        keep the tracker for the conversation's next message when it can be."""
        new_events = self._unsaved_events(tracker)
        if new_events is None and not tracker.events:
            new_events = []  # a conversation just created, still empty (Rasa saves it before its first message)
        keep = new_events is not None and 0 < len(tracker.events) <= 2 * self.window
        await self.stream_events(tracker)
        latest = getattr(tracker, LATEST_ID_ATTRIBUTE, 0)
        if new_events is None:
            with self.session_scope() as session:
                new_events = list(self._additional_events(session, tracker))
        if new_events:
            rows = []
            for index, event in enumerate(new_events, start=len(tracker.events) - len(new_events)):
                row, scrubbed = self._row(tracker.sender_id, event)
                rows.append(row)
                if keep and scrubbed:
                    keep = _as_stored(tracker, index, event, row["data"], self._event_classes)
            # A plain connection: nothing here needs an ORM session and its bookkeeping.
            with self.engine.begin() as connection:
                connection.execute(self._insert_events, rows)  # one multi-row INSERT, in the events' order
                if keep:  # only Rasa servers write events, each under the conversation's lock: the latest is ours
                    latest = self._latest_id(connection, tracker.sender_id)
        setattr(tracker, STORED_EVENTS_ATTRIBUTE, len(tracker.events))
        setattr(tracker, LATEST_ID_ATTRIBUTE, latest)
        self._kept.pop(tracker.sender_id, None)
        if keep:
            self._kept[tracker.sender_id] = (tracker, latest)
            while len(self._kept) > KEPT_TRACKERS:
                self._kept.popitem(last=False)  # the conversation saved longest ago

    def _row(self, sender_id: str, event: Event) -> tuple[dict[str, Any], bool]:
        """The events table's row for one event, in its stored (scrubbed) form; and whether that form differs from
        the event's."""
        raw = event.as_dict()
        data = dict(scrub(raw))
        row = {
            "sender_id": sender_id,
            "type_name": event.type_name,
            "timestamp": data.get("timestamp"),
            "intent_name": data.get("parse_data", {}).get("intent", {}).get("name"),
            "action_name": data.get("name"),
            "data": json.dumps(data),
        }
        return row, data != raw


def _as_stored(tracker: DialogueStateTracker, index: int, event: Event, stored: str,
               classes: dict[str, type[Event]]) -> bool:
    """Put the stored form of the tracker's event at ``index`` in its place, as the database would give it back;
    False when the tracker would then differ otherwise than in that event (a slot holding a card number), and
    must not be kept."""
    if not isinstance(event, (UserUttered, BotUttered)):
        return False
    replacement = deserialise([json.loads(stored)], classes)[0]
    tracker.events[index] = replacement
    forget_memos(tracker)  # they hold the event replaced
    if tracker.latest_message is event:
        tracker.latest_message = replacement
    if tracker.latest_bot_utterance is event:
        tracker.latest_bot_utterance = replacement
    return True
