"""Which mailroom worker works which mailbox: one at a time, the holder of the mailbox's lease (``core.leases``).

Every worker watches every configured mailbox; a worker that does not own one waits for it, trying its lease
every ``WAIT_SECONDS``: when the owner dies (its lease connection closes with it) another takes over within about
that time. The owner checks its lease before each batch and each time it wakes from IDLE, and stops working the
mailbox as soon as it is gone (a database restart): it then waits for it like the others. Should two workers
overlap for a moment, nothing is handled twice: the store's record of each message has a unique key.

**Shares.** On PostgreSQL the workers alive are seen by their lease connections' names, so a worker knows its fair
share: ``ceil(mailboxes / workers)``. Below it, a worker tries a free mailbox at once; at it, only once the mailbox
has been free for ``GRACE_SECONDS`` (the others may be unable to work it). Above it (a worker joined), it hands
one mailbox over, unless it took that one beyond its share less than ``KEEP_SECONDS`` ago (no handing back and
forth with a worker that cannot work it). Two workers on two inboxes own one each; on one mailbox the second
worker is a standby. File leases (SQLite) show no workers: whoever takes a lease first keeps it.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from core.leases import Lease

logger = logging.getLogger(__name__)

WAIT_SECONDS = 1.0  # how often a waiting worker tries a lease: the takeover time after an owner's death
GRACE_SECONDS = 3.0  # a mailbox free this long is taken by a worker that already has its share
KEEP_SECONDS = 60.0  # a mailbox taken beyond this worker's share is kept this long before it may be handed over
WORKER_PREFIX = "mailroom "  # the lease holder names of daemon workers (``mailroom host/pid/start``)
NAME_LIMIT = 63  # PostgreSQL's limit for application_name, which carries a worker's name


def worker_name(identity: str) -> str:
    """A worker's name among the others, from its ``sender_identity`` (``host/pid/start``): a long host name is cut
    short, never the pid and start that tell two workers of one host apart."""
    name = WORKER_PREFIX + identity
    if len(name) <= NAME_LIMIT:
        return name
    host, _, rest = identity.partition("/")
    return WORKER_PREFIX + host[: max(NAME_LIMIT - len(WORKER_PREFIX) - len(rest) - 1, 0)] + "/" + rest


class Shares:
    """The mailboxes this worker owns, of ``mailboxes`` configured, shared by its threads."""

    def __init__(self, mailboxes: int) -> None:
        self.mailboxes = mailboxes
        self._owned: set[str] = set()
        self._lock = threading.Lock()

    def fair(self, workers: int) -> int:
        """This worker's fair share among ``workers`` alive (all of them when none are seen)."""
        return math.ceil(self.mailboxes / max(workers, 1))

    def below_fair(self, workers: int) -> bool:
        with self._lock:
            return len(self._owned) < self.fair(workers)

    def took(self, mailbox: str) -> None:
        with self._lock:
            self._owned.add(mailbox)

    def gave_up(self, mailbox: str) -> None:
        with self._lock:
            self._owned.discard(mailbox)

    def hand_over(self, mailbox: str, workers: int) -> bool:
        """True when this worker owns more than its share: ``mailbox`` is then counted as given up (so that its
        other threads, checking meanwhile, keep theirs)."""
        with self._lock:
            if mailbox in self._owned and len(self._owned) > self.fair(workers):
                self._owned.discard(mailbox)
                return True
            return False

    def owned(self) -> int:
        with self._lock:
            return len(self._owned)


class Ownership:
    """The ownership of one mailbox by this worker: wait for it, check it, give it up."""

    def __init__(self, lease: Lease, mailbox: str, me: str, stop: threading.Event, shares: Shares) -> None:
        self.lease = lease
        self.mailbox = mailbox
        self.me = me
        self.stop = stop
        self.shares = shares
        self.owned = False  # as far as this worker knows: ``still_mine`` checks
        self._keep_until = 0.0

    def workers(self) -> int:
        """How many workers are alive (0 where they cannot be seen)."""
        return len(self.lease.peers(WORKER_PREFIX))

    def wait(self) -> bool:
        """Block until this worker owns the mailbox (True), or the mailroom stops (False). Says who owns it
        meanwhile, once per owner. Raises ``LeaseUnavailable`` when the store cannot be reached."""
        free_since: float | None = None
        said: str | None = None
        while not self.stop.is_set():
            now = time.monotonic()
            due = self.shares.below_fair(self.workers())
            if due or (free_since is not None and now - free_since >= GRACE_SECONDS):
                if self.lease.try_acquire():
                    self.owned = True
                    self.shares.took(self.mailbox)
                    self._keep_until = 0.0 if due else now + KEEP_SECONDS
                    logger.info("mailbox %s: owned by this worker (%s)%s", self.mailbox, self.me,
                                "" if due else ", beyond its share: the others left it free")
                    return True
            holder = self.lease.holder()
            if holder is None:
                free_since = now if free_since is None else free_since
            else:
                free_since = None
                if holder != said:
                    logger.info("mailbox %s: waiting, owned by %s", self.mailbox, holder)
                    said = holder
            self.stop.wait(WAIT_SECONDS)
        return False

    def still_mine(self) -> bool:
        """True while this worker owns the mailbox and may go on working it: checked before each batch and at each
        wake-up. False once the lease is lost or handed over (it is then released)."""
        if not self.owned:
            return False
        if not self.lease.is_held():
            logger.warning("mailbox %s: no longer owned by this worker (its lease connection failed); "
                           "waiting to own it again", self.mailbox)
            self.give_up()
            return False
        if time.monotonic() >= self._keep_until:
            workers = self.workers()
            if self.shares.hand_over(self.mailbox, workers):
                logger.info("mailbox %s: handed over, as this worker owned more than its share (%d of %d mailboxes, "
                            "%d workers)", self.mailbox, self.shares.owned() + 1, self.shares.mailboxes, workers)
                self.give_up()
                return False
        return True

    def give_up(self) -> None:
        """Release the mailbox (its lease), if this worker owns it."""
        self.owned = False
        self.shares.gave_up(self.mailbox)
        self.lease.release()
