"""Reading mail, in worker processes when there is a lot of it.

Reading a message (parsing its MIME, recognising automation, language, topic, places: ``pipeline.read``) needs no
store and takes most of the CPU time a message costs; Python runs one thread at a time, so a backlog is read by
``mail_workers`` processes while the mailroom's own process stores the previous batch. Small batches (a new mail
under IDLE) are read in-process: a round trip to a worker would only add latency. Workers start on the first
large batch, each with its own models (loaded from the cache the parent filled), and stop with the mailroom.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from core.settings import Settings
from mailroom.context import TriageContext
from mailroom.errors import PermanentMailError
from mailroom.mail import Mail
from mailroom.parse import recipients_of, team_of_recipients
from mailroom.pipeline import read

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


_worker_context: TriageContext | None = None
_worker_settings: Settings | None = None


def _start_worker(settings: Settings) -> None:
    global _worker_context, _worker_settings
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool
    _worker_settings = settings
    _worker_context = TriageContext.build(settings)


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

    def submit(self, items: Sequence[ToRead]) -> Callable[[], list[Reading]]:
        """Start reading ``items``; the returned function waits for the readings, in the same order."""
        if self.workers < 1 or len(items) < PARALLEL_FROM:
            readings = [read_one(item, self.context, self.settings) for item in items]
            return lambda: readings
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

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # "spawn": fresh interpreters, safe whatever threads the mailroom runs (fork is not, with threads).
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker, initargs=(self.settings,))
        return self._pool

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
