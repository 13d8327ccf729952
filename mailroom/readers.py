"""Reading mail, in worker processes when there is a lot of it.

Reading a message (parsing its MIME, recognising automation, language, topic, places: ``pipeline.read``) needs no
store and takes most of the CPU time a message costs; Python runs one thread at a time, so a backlog is read by
``mail_workers`` processes while the mailroom's own process stores the previous batch. Small batches (a new mail
under IDLE) are read in-process: a round trip to a worker would only add latency. Workers start on the first
large batch, each with its own models (loaded from the cache the parent filled), and stop with the mailroom;
batches are read in-process until they have started (seconds of loading models), so that a backlog, such as the
one a worker finds when it takes a mailbox over, is not held up by their start.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace

from core.settings import Settings
from mailroom.context import TriageContext
from mailroom.errors import PermanentMailError
from mailroom.mail import Mail
from mailroom.parse import recipients_of, team_of_recipients
from mailroom.pipeline import read, triage

logger = logging.getLogger(__name__)
# Below this many messages a batch is read in-process.
PARALLEL_FROM = 32


@dataclass
class Reading:
    """A message as read: the mail (None if it could not even be started), or why it cannot be handled."""

    mail: Mail
    failure: str | None = None
    crashed: bool = False  # the failure is a bug in a stage (logged with its traceback), not a bad message


@dataclass(frozen=True)
class ToRead:
    raw: bytes
    team: str | None  # None: from the recipients
    mailbox: str


def read_one(item: ToRead, context: TriageContext, settings: Settings) -> Reading:
    """Read one message; never raises for a bad message or a failing stage."""
    mail = Mail(raw=item.raw, team=item.team or "CA", mailbox=item.mailbox)
    try:
        if item.team is None:
            mail.team = team_of_recipients(recipients_of(item.raw), settings)
        read(mail, context, settings.mail_size_limit_mb * 1024 * 1024)
    except PermanentMailError as error:
        return Reading(mail, str(error))
    except Exception as error:  # a message that breaks a stage: quarantined, the batch goes on
        logger.error("a message of %s could not be read:\n%s", item.mailbox, traceback.format_exc())
        return Reading(mail, f"{type(error).__name__}: {error}", crashed=True)
    mail.message = None  # the parsed tree is not needed any more (and would be costly to send back)
    return Reading(mail)


# A small mail in each language, triaged at start-up (``warm_up``).
WARM_UP_MAILS = (
    b"From: Warm Up <warm-up@example.com>\r\nTo: billing@net2phone.com\r\nSubject: Invoice for March\r\n"
    b"Message-ID: <warm-up-en@billing.invalid>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Hello, my card was declined on invoice INV-2026031 of $120.50 in March. Acme Inc, Atlanta, GA 30309.\r\n",
    "From: Warm Up <warm-up@example.ca>\r\nTo: billing@net2phone.ca\r\nSubject: Facture de mars\r\n"
    "Message-ID: <warm-up-fr@billing.invalid>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    "Bonjour, ma facture de mars est de 120,50 $, TPS et TVQ comprises. Merci, Julie Tremblay, "
    "Gatineau (Québec) J8Y 6T3\r\n".encode("utf-8"),
)


def warm_up(context: TriageContext, settings: Settings) -> None:
    """Triage a small mail in each language, offline: what loads on first use (spaCy's pipelines, the gazetteer,
    month names) is loaded before the first real mail, so that a worker taking a mailbox over starts at full
    speed instead of spending its first seconds loading."""
    offline = replace(context, session=None, view=None)
    for raw in WARM_UP_MAILS:
        triage(Mail(raw=raw, team="CA", mailbox="warm-up"), offline, settings.mail_size_limit_mb * 1024 * 1024)


_worker_context: TriageContext | None = None
_worker_settings: Settings | None = None


def _start_worker(settings: Settings) -> None:
    global _worker_context, _worker_settings
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool
    _worker_settings = settings
    _worker_context = TriageContext.build(settings)
    warm_up(_worker_context, settings)


def _started() -> bool:
    return True  # runs once the worker's initializer is done: the worker is ready


def _read_in_worker(items: list[ToRead]) -> list[Reading]:
    assert _worker_context is not None and _worker_settings is not None
    readings = [read_one(item, _worker_context, _worker_settings) for item in items]
    for reading in readings:
        reading.mail.raw = b""  # the parent has it: do not send it back
    return readings


class Readers:
    """Reads batches of messages, in-process or in worker processes."""

    def __init__(self, settings: Settings, context: TriageContext, workers: int) -> None:
        self.settings = settings
        self.context = context
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._starting: list[Future[bool]] = []
        self._ready = False
        self._lock = threading.RLock()  # every mailbox's thread submits batches

    def submit(self, items: Sequence[ToRead]) -> Callable[[], list[Reading]]:
        """Start reading ``items``; the returned function waits for the readings, in the same order."""
        if self.workers < 1 or len(items) < PARALLEL_FROM or not self.start():
            readings = [read_one(item, self.context, self.settings) for item in items]
            return lambda: readings
        with self._lock:
            pool = self._ensure_pool()
        parts = [list(items[start::self.workers * 2]) for start in range(self.workers * 2)]
        futures: list[Future[list[Reading]]] = [pool.submit(_read_in_worker, part) for part in parts]

        def collect() -> list[Reading]:
            try:
                results = [future.result() for future in futures]
            except BrokenProcessPool:  # a worker died (killed, out of memory): read this batch here
                logger.warning("a mail reader process died; reading the batch in the mailroom process")
                self.close()
                return [read_one(item, self.context, self.settings) for item in items]
            ordered: list[Reading] = [None] * len(items)  # type: ignore[list-item]
            for start, readings in enumerate(results):
                ordered[start::self.workers * 2] = readings
            for item, reading in zip(items, ordered):
                reading.mail.raw = item.raw
            return ordered

        return collect

    def start(self) -> bool:
        """Start the worker processes if they are not started (without waiting); True once they are ready."""
        with self._lock:
            self._ensure_pool()
            return self._ready

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # "spawn": fresh interpreters, safe whatever threads the mailroom runs (fork is not, with threads).
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker, initargs=(self.settings,))
            self._starting = [self._pool.submit(_started) for _ in range(self.workers)]
            for future in self._starting:
                future.add_done_callback(self._note_started)
        return self._pool

    def _note_started(self, _: Future[bool]) -> None:
        with self._lock:
            if not self._ready and self._starting and all(future.done() for future in self._starting):
                self._ready = True
                logger.info("%d mail reader processes ready", self.workers)

    def close(self) -> None:
        with self._lock:
            self._starting, self._ready = [], False
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
