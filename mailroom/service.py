"""Running the mailroom: each message in its own error boundary, committed before it is flagged.

``Processor.handle`` triages one message and stores its effects in one transaction; the source (IMAP or Maildir)
flags or moves the message only after that commit. A message that cannot be handled is quarantined with its
reason and the batch goes on; a database or server failure stops the batch without flagging anything, to be
retried. ``run_forever`` watches every mailbox in a thread of its own (IMAP IDLE, reconnecting with backoff), each
while this process owns it (``mailroom.ownership``: several workers may run, one works a mailbox at a time), and
sends the outbox as soon as a handled message queued something (every worker sends: rows are claimed one by one).
"""

from __future__ import annotations

import logging
import signal
import ssl
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.db.engine import make_engine, make_session_factory, unit_of_work
from core.db.migrate import upgrade
from core.db.models import MailboxState, OutboxMail
from core.errors import ConfigurationError as CoreConfigurationError
from core.errors import TransientError as CoreTransientError
from core.leases import FileLease, Lease, Leases
from core.outbox import sender_identity
from core.settings import Settings
from mailroom.config import MailboxConfig, MailroomConfig, load_config
from mailroom.context import TriageContext
from mailroom.errors import PermanentMailError, TransientMailError
from mailroom.faults import crash_point
from mailroom.imap import ImapMailbox
from mailroom.mail import Mail, SourceKey
from mailroom.maildir import MaildirSource
from mailroom.outbox import FolderTransport, SmtpTransport, Transport, send_pending
from mailroom.ownership import Ownership, Shares, worker_name
from mailroom.pipeline import decide
from mailroom.readers import Readers, Reading, ToRead, warm_up
from mailroom.store import forget, handled_keys, is_handled, record, record_quarantine, reprocess_requests
from mailroom.view import StoreView

logger = logging.getLogger(__name__)
T = TypeVar("T")  # what a source knows its batch by (the files, the UIDs)
MAX_BACKOFF = 60.0
MAILDIR_LEASE = "mailroom.lock"  # in the Maildir's root: the local folder is worked by one process at a time


@dataclass(frozen=True)
class Outcome:
    """What happened to one message: ``outcome`` as recorded, ``queued`` if it queued mail to send."""

    outcome: str
    queued: bool = False


class Processor:
    """Triage and store messages; shared by every source of a run."""

    def __init__(self, settings: Settings, factory: sessionmaker[Session], context: TriageContext,
                 on_queued: Callable[[], None] = lambda: None, stopping: threading.Event | None = None) -> None:
        self.settings = settings
        self.factory = factory
        self.context = replace(context, settings=settings)  # the models of ``context``, these settings
        self.on_queued = on_queued
        self.stopping = stopping or threading.Event()  # set: finish the batch in hand, take no other
        self.readers = Readers(settings, self.context, settings.mail_workers)

    def close(self) -> None:
        """Stop the reader processes, if any were started."""
        self.readers.close()

    def handle(self, raw: bytes, key: SourceKey, team: str | None) -> Outcome:
        """Handle one message (committed on return); see ``store``."""
        return self.handle_batch([(raw, key)], team)[0]

    def handle_batch(self, messages: Sequence[tuple[bytes, SourceKey]], team: str | None) -> list[Outcome]:
        """Read then store a batch of messages (committed on return)."""
        return self.store(self.start(messages, team))

    def handle_batches(self, batches: Iterator[tuple[T, list[tuple[bytes, SourceKey]]]], team: str | None,
                       finish: Callable[[T, list[SourceKey], list[Outcome]], None]) -> int:
        """Handle a source's batches, each ``(tag, messages)``: the next batch is taken from ``batches`` (fetched)
        and read while the previous one is stored; ``finish(tag, keys, outcomes)`` flags or moves the messages of
        a batch once it is committed, never before. Returns how many messages were handled."""
        handled = 0
        previous: tuple[T, Started] | None = None
        for tag, messages in batches:
            if self.stopping.is_set():
                break  # stopping (SIGTERM): what is in hand is finished below, the rest waits for the next start
            started = self.start(messages, team)
            if previous is not None:
                handled += self._store_and_finish(*previous, finish)
            previous = (tag, started)
        if previous is not None:
            handled += self._store_and_finish(*previous, finish)
        return handled

    def _store_and_finish(self, tag: T, started: Started,
                          finish: Callable[[T, list[SourceKey], list[Outcome]], None]) -> int:
        outcomes = self.store(started)
        crash_point("after_commit")
        finish(tag, started.keys, outcomes)
        return len(started.keys)

    def start(self, messages: Sequence[tuple[bytes, SourceKey]], team: str | None) -> Started:
        """Start reading a batch (in worker processes when it is large): the caller may fetch the next batch or
        store the previous one meanwhile, then passes the result to ``store``."""
        readings = self.readers.submit([ToRead(raw, team, key.mailbox) for raw, key in messages])
        return Started([key for _, key in messages], readings)

    def store(self, started: Started) -> list[Outcome]:
        """Store a batch that was read, in one transaction committed on return (one commit per batch).

        The store is consulted once for the whole batch (``StoreView``), then each message is decided and recorded
        in a savepoint of its own: a message that cannot be handled is quarantined, its partial rows rolled back,
        and the others go on. Raises only for failures that must stop the batch (the store is unreachable):
        nothing of it is then committed, every message is left unflagged, to be retried."""
        readings = started.readings()
        outcomes: list[Outcome] = []
        with unit_of_work(self.factory) as session:
            done = handled_keys(session, started.keys)
            context = replace(self.context, session=session, now=datetime.now(timezone.utc))
            readable = [r.mail for key, r in zip(started.keys, readings) if key not in done and r.failure is None]
            context = replace(context, view=StoreView.load(session, readable, context.now))
            for key, reading in zip(started.keys, readings):
                if key in done:
                    outcomes.append(Outcome("already"))
                elif reading.failure is not None:
                    outcomes.append(self._quarantine(session, key, reading.mail, reading.failure))
                else:
                    outcomes.append(self._decide_and_record(session, context, reading.mail, key))
        if any(outcome.queued for outcome in outcomes):
            self.on_queued()
        return outcomes

    def _decide_and_record(self, session: Session, context: TriageContext, mail: Mail, key: SourceKey) -> Outcome:
        assert context.view is not None
        try:
            decide(mail, context)
            outcome = self._record(session, context, mail, key)
        except (OperationalError, TransientMailError):
            raise
        except PermanentMailError as error:
            return self._quarantine(session, key, mail, str(error))
        except Exception as error:  # a message that breaks a stage: quarantined, logged, the batch goes on
            logger.error("message %s of %s quarantined:\n%s", key.uid, key.mailbox, traceback.format_exc())
            return self._quarantine(session, key, mail, f"{type(error).__name__}: {error}")
        if outcome.outcome != "already":
            context.view.note_recorded(mail, outcome.outcome, key.mailbox, key.uid)
            crash_point("before_commit")
            logger.info("%s UID %s: %s", key.mailbox, key.uid, outcome.outcome)
        return outcome

    @staticmethod
    def _record(session: Session, context: TriageContext, mail: Mail, key: SourceKey) -> Outcome:
        """Record the mail in a savepoint. Its record's unique key fails when another mailroom process stored
        this very message meanwhile: it is then "already" handled, and nothing more is to be done."""
        before = (mail.ticket_id, mail.ticket_reference)
        try:
            with session.begin_nested():
                row = record(mail, context, key)
                queued = any(isinstance(obj, OutboxMail) for obj in session.new)
                session.flush()
            return Outcome(str(row.outcome), queued)
        except IntegrityError:
            mail.ticket_id, mail.ticket_reference = before  # the savepoint took the new ticket away
            if is_handled(session, key):
                logger.info("%s UID %s: already handled by another mailroom process", key.mailbox, key.uid)
                return Outcome("already")
            raise

    @staticmethod
    def _quarantine(session: Session, key: SourceKey, mail: Mail, reason: str) -> Outcome:
        try:
            with session.begin_nested():
                record_quarantine(session, key, mail, reason)
                session.flush()
        except IntegrityError:  # another mailroom process recorded this message meanwhile
            if is_handled(session, key):
                return Outcome("already")
            raise
        logger.warning("%s UID %s quarantined: %s", key.mailbox, key.uid, reason)
        return Outcome("quarantined")


@dataclass(frozen=True)
class Started:
    """A batch being read: its source keys, and the function that waits for its readings."""

    keys: list[SourceKey]
    readings: Callable[[], list[Reading]]


def process_maildir(source: MaildirSource, processor: Processor, still_mine: Callable[[], bool] = lambda: True) -> int:
    """Handle every file waiting in the Maildir, a batch at a time; each batch is committed before its files
    move. Stops taking batches once ``still_mine`` says the Maildir is no longer this worker's (the batch in hand
    is finished). Returns how many were handled."""
    for key in _reprocess_requests(processor.factory, source.name):
        source.release(key.uid)  # (a file already gone cannot be read again: its record goes all the same)
        _forget(processor.factory, key)

    def batches() -> Iterator[tuple[list[Path], list[tuple[bytes, SourceKey]]]]:
        pending, size = source.pending(), processor.settings.mail_batch
        for start in range(0, len(pending), size):
            if start and not still_mine():
                return
            messages: list[tuple[Path, bytes]] = []
            for path in pending[start : start + size]:
                try:
                    messages.append((path, path.read_bytes()))
                except OSError:
                    continue  # vanished meanwhile
            if messages:
                yield [path for path, _ in messages], [(raw, source.key(path)) for path, raw in messages]

    def move(paths: list[Path], keys: list[SourceKey], outcomes: list[Outcome]) -> None:
        for path, outcome in zip(paths, outcomes):
            if outcome.outcome == "quarantined":
                source.quarantine(path)
            else:
                source.done(path)

    return processor.handle_batches(batches(), None, move)


def process_imap(mailbox: ImapMailbox, processor: Processor, still_mine: Callable[[], bool] = lambda: True) -> int:
    """Handle every unflagged message of a connected mailbox, batch by batch; each batch is committed before it
    is flagged on the server. Stops taking batches once ``still_mine`` says the mailbox is no longer this
    worker's (the batch in hand is finished: should the new owner read it too, its records are found, or its
    unique key refuses the second). Returns how many were handled."""
    name = mailbox.config.name
    for key in _reprocess_requests(processor.factory, name):
        if key.uidvalidity == mailbox.uidvalidity:
            mailbox.unflag([key.uid])  # first unflag, then forget: a crash between leaves the request standing
        _forget(processor.factory, key)

    def batches() -> Iterator[tuple[list[int], list[tuple[bytes, SourceKey]]]]:
        uids, size = mailbox.unhandled(), processor.settings.mail_batch
        for start in range(0, len(uids), size):
            if start and not still_mine():
                return
            chunk = uids[start : start + size]
            fetched = mailbox.fetch(chunk)
            # Messages expunged meanwhile are missing from ``fetched``.
            yield chunk, [(fetched[uid], SourceKey(name, mailbox.uidvalidity, uid)) for uid in chunk if uid in fetched]

    def flag(chunk: list[int], keys: list[SourceKey], outcomes: list[Outcome]) -> None:
        quarantined = [key.uid for key, outcome in zip(keys, outcomes) if outcome.outcome == "quarantined"]
        done = [key.uid for key, outcome in zip(keys, outcomes) if outcome.outcome != "quarantined"]
        mailbox.mark_triaged(done, quarantined)
        crash_point("after_flag")
        _checkpoint(processor.factory, name, mailbox.uidvalidity, max(chunk))

    return processor.handle_batches(batches(), mailbox.config.team, flag)


def _reprocess_requests(factory: sessionmaker[Session], mailbox: str) -> list[SourceKey]:
    with factory() as session:
        return reprocess_requests(session, mailbox)


def _forget(factory: sessionmaker[Session], key: SourceKey) -> None:
    with unit_of_work(factory) as session:
        forget(session, key)
    logger.info("%s UID %s: read again, as a person asked", key.mailbox, key.uid)


def _checkpoint(factory: sessionmaker[Session], name: str, uidvalidity: int, last_uid: int) -> None:
    with unit_of_work(factory) as session:
        state = session.get(MailboxState, name)
        if state is None:
            try:
                with session.begin_nested():
                    session.add(MailboxState(mailbox=name, uidvalidity=uidvalidity, last_uid=last_uid))
                return
            except IntegrityError:  # another mailroom process wrote the first checkpoint meanwhile
                state = session.get(MailboxState, name, populate_existing=True)
                assert state is not None
        if int(state.uidvalidity) != uidvalidity:
            logger.warning("%s: UIDVALIDITY changed from %s to %s: Message-IDs prevent duplicates",
                           name, state.uidvalidity, uidvalidity)
            state.uidvalidity, state.last_uid = uidvalidity, 0
        state.last_uid = max(int(state.last_uid), last_uid)
        state.updated_at = datetime.now(timezone.utc)


def lease_name(config: MailboxConfig) -> str:
    """The name of a mailbox's lease: the mailbox on its server, whichever port or name a worker knows it by."""
    return f"imap://{config.username}@{config.host.lower()}/{config.folder}"


def maildir_lease(source: MaildirSource, holder_name: str) -> FileLease:
    """The local Maildir's lease: a file lock in the folder itself (a local folder is one machine's)."""
    return FileLease(source.root / MAILDIR_LEASE, f"maildir:{source.root.resolve()}", holder_name)


def store_url(factory: sessionmaker[Session]) -> sa.engine.URL:
    """The URL of the store ``factory`` opens sessions on (no connection is made)."""
    with factory() as session:
        bind = session.get_bind()
    return bind.engine.url


def ssl_context_for(config: MailboxConfig) -> ssl.SSLContext:
    """Certificate checks against the system's authorities, or the mailbox's own ``ca_file``."""
    return ssl.create_default_context(cafile=config.ca_file) if config.ca_file else ssl.create_default_context()


def transport_for(settings: Settings, config: MailroomConfig) -> Transport:
    """SMTP when configured, else the local outbox folder."""
    if config.smtp is not None:
        return SmtpTransport(config.smtp)
    return FolderTransport(settings.mail_dir / "outbox")


def build(settings: Settings) -> tuple[MailroomConfig, sessionmaker[Session], TriageContext]:
    """Configuration, store (migrated) and models for a run."""
    config = load_config(settings)
    upgrade(settings.database_url)
    factory = make_session_factory(make_engine(settings.database_url, batch_writer=True))
    context = TriageContext.build(settings)
    return config, factory, context


def _unless_owned(lease: Lease, mailbox: str, work: Callable[[], int]) -> int:
    """Run ``work`` (one pass over a mailbox) holding the mailbox's lease; skip it when a running worker owns the
    mailbox (it handles that mail). Returns what ``work`` returned, or 0."""
    if not lease.try_acquire():
        logger.info("mailbox %s: owned by %s, which handles its mail: skipped", mailbox, lease.holder() or "a worker")
        return 0
    try:
        return work()
    finally:
        lease.release()


def run_once(settings: Settings) -> int:
    """One pass over every mailbox and the outbox."""
    try:
        config, factory, context = build(settings)
    except CoreConfigurationError as error:
        logger.error("%s", error)
        return 2
    processor = Processor(settings, factory, context)
    leases = Leases(store_url(factory), f"mailroom-once {sender_identity()}")
    total = 0
    try:
        if config.embedded:
            source = MaildirSource(settings.mail_dir / "inbox")
            total += _unless_owned(maildir_lease(source, leases.holder_name), source.name,
                                   lambda: process_maildir(source, processor))
        for mailbox_config in config.mailboxes:
            mailbox = ImapMailbox(mailbox_config, ssl_context_for(mailbox_config))

            def one_pass(mailbox: ImapMailbox = mailbox) -> int:
                mailbox.connect()
                return process_imap(mailbox, processor)

            try:
                total += _unless_owned(leases.lease(lease_name(mailbox_config)), mailbox_config.name, one_pass)
            except TransientMailError as error:
                logger.error("%s", error)
            finally:
                mailbox.close()
    finally:
        processor.close()
        leases.close()
    sent = send_pending(factory, transport_for(settings, config))
    logger.info("handled %d message(s), sent %d mail(s)", total, sent)
    return 0


class Daemon:
    """The long-running mailroom: a thread per source, one for the outbox; stops on SIGTERM or SIGINT.

    Several daemons (workers) may share the store: a source's thread works it only while this worker owns it
    (``mailroom.ownership``) and waits for it otherwise; every worker sends the outbox.

    No thread dies in silence. Each runs its loop under ``_supervise``: an expected failure (a server or the
    store unreachable) is logged in a line, an unexpected one with its traceback, and the loop starts again after
    a growing pause. Should a thread end anyway, ``run_forever`` sees it and exits non-zero, so that whoever
    supervises the process (``make run``'s runner, systemd) starts a whole new one."""

    def __init__(self, settings: Settings, config: MailroomConfig, factory: sessionmaker[Session],
                 context: TriageContext) -> None:
        self.settings = settings
        self.config = config
        self.factory = factory
        self.stop = threading.Event()
        self.wake_outbox = threading.Event()
        self.processor = Processor(settings, factory, context, on_queued=self.wake_outbox.set, stopping=self.stop)
        self.transport = transport_for(settings, config)
        self.sender = sender_identity()
        self.leases = Leases(store_url(factory), worker_name(self.sender))
        shares = Shares(len(config.mailboxes))
        self.ownerships = {mailbox.name: Ownership(self.leases.lease(lease_name(mailbox)), mailbox.name,
                                                   self.leases.holder_name, self.stop, shares)
                           for mailbox in config.mailboxes}
        self.threads: list[threading.Thread] = []
        # Set while a mailbox's watcher waits in IMAP IDLE for new mail (for tests and the benchmark).
        self.idling = {mailbox.name: threading.Event() for mailbox in config.mailboxes}

    def start(self) -> None:
        if self.config.embedded:
            source = MaildirSource(self.settings.mail_dir / "inbox")
            local = Ownership(maildir_lease(source, self.leases.holder_name), source.name, self.leases.holder_name,
                              self.stop, Shares(1))
            self._spawn("maildir", lambda: self._watch_maildir(source, local))
        for mailbox in self.config.mailboxes:
            self._spawn(f"imap-{mailbox.name}", lambda m=mailbox: self._watch_imap(m))  # type: ignore[misc]
        self._spawn("outbox", self._send_outbox)

    def _spawn(self, name: str, step: Callable[[], None]) -> None:
        thread = threading.Thread(target=self._supervise, args=(name, step), name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _supervise(self, name: str, step: Callable[[], None]) -> None:
        """Run ``step`` again and again until the mailroom stops, pausing longer after each failure in a row."""
        backoff = 1.0
        while not self.stop.is_set():
            began = time.monotonic()
            try:
                step()
                backoff = 1.0
                continue
            except (TransientMailError, CoreTransientError, OperationalError) as error:
                if time.monotonic() - began > MAX_BACKOFF:
                    backoff = 1.0  # it worked for a while (a connection that lasted): not a failure in a row
                logger.warning("%s: %s; again in %.0f s", name, error, backoff)
            except Exception:  # a bug or an unforeseen state: logged in full, and the loop goes on
                if time.monotonic() - began > MAX_BACKOFF:
                    backoff = 1.0
                logger.error("%s: unexpected error; again in %.0f s\n%s", name, backoff, traceback.format_exc())
            self.stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def dead_threads(self) -> list[str]:
        """The names of threads that ended while the mailroom was not stopping (never expected)."""
        return [thread.name for thread in self.threads if not thread.is_alive() and not self.stop.is_set()]

    def _watch_maildir(self, source: MaildirSource, ownership: Ownership) -> None:
        """Once this worker owns the local Maildir, handle what arrives in it until the mailroom stops."""
        if not ownership.wait():
            return
        try:
            while not self.stop.is_set() and ownership.still_mine():
                process_maildir(source, self.processor, ownership.still_mine)
                if not ownership.owned:
                    break  # lost between two batches
                self.stop.wait(0.5)  # a local folder has no IDLE: look twice a second
        finally:
            ownership.give_up()

    def _watch_imap(self, config: MailboxConfig) -> None:
        """Once this worker owns the mailbox, one connection's life: connect, then handle what is new each time
        the server announces mail (IDLE) or the poll interval passes. Returns when the mailroom stops or the
        mailbox is no longer this worker's, raises when the connection fails; the mailbox is given up either way
        (a worker that cannot reach it lets another try)."""
        ownership = self.ownerships[config.name]
        if not ownership.wait():
            return
        mailbox = ImapMailbox(config, ssl_context_for(config), idling=self.idling[config.name])
        try:
            mailbox.connect()
            logger.info("%s: connected to %s, watching %s", config.name, config.host, config.folder)
            while not self.stop.is_set() and ownership.still_mine():
                process_imap(mailbox, self.processor, ownership.still_mine)
                if not ownership.owned:
                    break  # lost or handed over between two batches
                announced = mailbox.wait(min(config.poll_seconds, 5.0))
                if not announced and b"IDLE" not in mailbox.client.capabilities():
                    self.stop.wait(config.poll_seconds)
        finally:
            mailbox.close()
            ownership.give_up()

    def _send_outbox(self) -> None:
        self.wake_outbox.wait(2.0)
        self.wake_outbox.clear()
        while send_pending(self.factory, self.transport, self.sender) and not self.stop.is_set():
            pass  # a full round: more may be due at once

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=10)
        self.processor.close()
        self.leases.close()


def run_forever(settings: Settings) -> int:
    """Watch and send until SIGTERM or SIGINT (exit 0); exit 1 if a loop ended on its own."""
    try:
        config, factory, context = build(settings)
    except CoreConfigurationError as error:
        logger.error("%s", error)
        return 2
    daemon = Daemon(settings, config, factory, context)
    warm_up(context, settings)  # before the readiness line: a standby must take a mailbox over at full speed

    def stop(signum: int, frame: FrameType | None) -> None:
        daemon.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    where = "; ".join(f"{m.name}: {m.host}:{m.port}/{m.folder}" for m in config.mailboxes) or \
        f"Maildir {settings.mail_dir / 'inbox'} (outbox: {settings.mail_dir / 'outbox'})"
    # The line a supervisor waits for: a worker that waits to own its mailboxes (a standby) is ready too.
    logger.info("mailroom watching %s (worker %s: each mailbox while it owns it)", where, daemon.sender)
    daemon.start()
    status = 0
    while not daemon.stop.is_set():
        daemon.stop.wait(1.0)
        if dead := daemon.dead_threads():
            logger.critical("the %s loop ended unexpectedly; stopping so that the supervisor restarts the mailroom",
                            ", ".join(dead))
            daemon.stop.set()
            status = 1
    daemon.join()
    logger.info("mailroom stopped")
    return status
