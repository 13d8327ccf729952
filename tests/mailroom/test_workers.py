"""Several mailroom workers on one store: each mailbox is worked by one of them at a time (the holder of its lease),
another takes it over within seconds when its owner is killed, and nothing is lost or handled twice.

The leases themselves on PostgreSQL (advisory locks) and SQLite (file locks); then real ``python -m mailroom
daemon`` workers on the session's Dovecot, killed with SIGKILL. (``bench/mailroom_workers.py`` measures the same
at a larger scale: messages per second with 1 and 2 workers, and the takeover time.)
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.db.engine import make_engine, make_session_factory
from core.db.migrate import upgrade
from core.db.models import InboundMail, OutboxMail, Ticket, TicketMessage
from core.leases import Leases
from core.settings import PROJECT_ROOT
from mailroom.ownership import Ownership, Shares
from tests.conftest import TEST_SECRET, postgres_database
from tests.mailroom import crashkit  # (its test_mails and TestMail imported by name would be collected as tests)
from tests.mailroom.crashkit import INBOXES, MailroomRun, active_outbox, handled
from tests.mailroom.helpers import make_mail
from tests.mailroom.servers import Dovecot, SmtpServer

TAKEOVER_LIMIT_S = 10.0  # the target for a mailbox's takeover after its owner's death
OWNED = "owned by this worker"
# A process that takes a lease, says so, and holds it until it is killed.
HOLD = ("import sys, time; from core.leases import Leases; "
        "lease = Leases(sys.argv[1], 'mailroom holder').lease(sys.argv[2]); "
        "assert lease.try_acquire(); print('held', flush=True); time.sleep(600)")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``condition`` until it holds; the seconds it took. Fails after ``timeout`` seconds."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.02)  # polling a state (a log line, a count, a lock), not timing anything
    return time.monotonic() - began


# --- the lease ---------------------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def lease_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store to keep leases in: a SQLite file's URL (no need for the file to exist), or the session's PostgreSQL
    database (advisory locks need no table)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'billing.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def hold_lease(lease_store: str) -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    """Start a process that holds the lease ``name`` of ``lease_store`` (returned once it holds it)."""
    processes: list[subprocess.Popen[str]] = []

    def start(name: str) -> subprocess.Popen[str]:
        process = subprocess.Popen([sys.executable, "-c", HOLD, lease_store, name], cwd=PROJECT_ROOT,
                                   stdout=subprocess.PIPE, text=True)
        processes.append(process)
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        return process

    yield start
    for process in processes:
        process.kill()
        process.wait()
        assert process.stdout is not None
        process.stdout.close()


def test_a_lease_has_one_holder_at_a_time(lease_store: str) -> None:
    name = f"imap://lease-{uuid.uuid4().hex[:8]}@127.0.0.1/INBOX"
    first, second = Leases(lease_store, "mailroom first"), Leases(lease_store, "mailroom second")
    mine, theirs = first.lease(name), second.lease(name)
    try:
        assert mine.holder() is None
        assert mine.try_acquire() and mine.is_held() and mine.try_acquire()  # taking it again: still held
        assert not theirs.try_acquire() and not theirs.is_held()
        assert theirs.holder() == "mailroom first"
        other = second.lease(f"{name}/other")  # another mailbox: its own lease
        assert other.try_acquire()
        other.release()
        mine.release()
        assert not mine.is_held()
        wait_for(theirs.try_acquire, 5, "the lease given up by its holder")  # (PostgreSQL ends a session shortly after)
        assert mine.holder() == "mailroom second" and not mine.try_acquire()
    finally:
        mine.release()
        theirs.release()
        first.close()
        second.close()


def test_a_lease_is_free_as_soon_as_its_holder_is_killed(
    lease_store: str, hold_lease: Callable[[str], subprocess.Popen[str]],
) -> None:
    name = f"imap://killed-{uuid.uuid4().hex[:8]}@127.0.0.1/INBOX"
    leases = Leases(lease_store, "mailroom standby")
    lease = leases.lease(name)
    try:
        holder = hold_lease(name)
        assert not lease.try_acquire() and lease.holder() == "mailroom holder"
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        took = wait_for(lease.try_acquire, TAKEOVER_LIMIT_S, "the lease of a killed holder")
        assert lease.is_held()
        print(f"lease taken {took:.3f} s after its holder's death")
    finally:
        lease.release()
        leases.close()


def test_a_holder_sees_its_lease_lost_with_its_connection(postgres_url: str) -> None:
    """PostgreSQL restarted, or the connection cut: the lock went with the session, and the holder must know."""
    name = f"imap://cut-{uuid.uuid4().hex[:8]}@127.0.0.1/INBOX"
    first, second = Leases(postgres_url, "mailroom cut-off"), Leases(postgres_url, "mailroom next")
    mine, theirs = first.lease(name), second.lease(name)
    admin = sa.create_engine(postgres_url, future=True)
    try:
        assert mine.try_acquire() and mine.is_held()
        with admin.connect() as connection:
            connection.execute(sa.select(sa.func.pg_terminate_backend(sa.column("pid")))
                               .select_from(sa.table("pg_stat_activity", sa.column("pid"),
                                                     sa.column("application_name")))
                               .where(sa.column("application_name") == "mailroom cut-off"))
        wait_for(lambda: not mine.is_held(), 5, "the holder noticing its lost connection")
        assert theirs.try_acquire()
        assert not mine.try_acquire()  # a new connection, and the lease is someone else's now
    finally:
        mine.release()
        theirs.release()
        first.close()
        second.close()
        admin.dispose()


def test_a_worker_that_owns_every_mailbox_hands_one_over_when_another_joins() -> None:
    """Shares, on PostgreSQL (where workers see each other): alone, a worker owns both mailboxes; when a second
    one waits, the first hands one over at its next check and keeps the other."""
    names = ["imap://billing-ca@127.0.0.1/INBOX", "imap://billing-us@127.0.0.1/INBOX"]
    stop = threading.Event()
    with postgres_database() as url:  # a database of its own: the workers alive are counted in it
        first, second = Leases(url, "mailroom first"), Leases(url, "mailroom second")
        ours, others = Shares(len(names)), Shares(len(names))  # one count per worker, for all its mailboxes
        mine = [Ownership(first.lease(name), name, "mailroom first", stop, ours) for name in names]
        theirs = [Ownership(second.lease(name), name, "mailroom second", stop, others) for name in names]
        waiting = [threading.Thread(target=ownership.wait) for ownership in theirs]
        try:
            assert all(ownership.wait() for ownership in mine)  # alone: both are its share
            for thread in waiting:
                thread.start()
            wait_for(lambda: mine[0].workers() == 2, 10, "the second worker seen")
            assert [ownership.still_mine() for ownership in mine] == [False, True]  # one handed over, one kept
            wait_for(lambda: theirs[0].owned, 5, "the mailbox handed over taken")
            assert not theirs[1].owned and mine[1].still_mine() and mine[1].lease.is_held()
        finally:
            stop.set()
            for thread in waiting:
                if thread.ident is not None:
                    thread.join(timeout=10)
            for ownership in mine + theirs:
                ownership.give_up()
            first.close()
            second.close()


# --- workers on Dovecot ------------------------------------------------------------------------------------------


class Worker:
    """A ``python -m mailroom daemon`` process of a run, with a log of its own."""

    def __init__(self, run: MailroomRun, name: str, fault: str | None = None) -> None:
        self.name = name
        self.log_path = run.var_dir / f"{name}.log"
        self.process = run.start(fault, self.log_path)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def says(self, text: str) -> bool:
        """True once the worker logged ``text``; fails if it ended without."""
        log = self.log()
        assert text in log or self.process.poll() is None, f"{self.name} ended:\n{log[-3000:]}"
        return text in log

    def owns(self, mailbox: str) -> bool:
        """True when the worker's last word on ``mailbox`` is that it owns it."""
        events = [line for line in self.log().splitlines() if f"mailbox {mailbox}: " in line]
        return bool(events) and OWNED in events[-1]

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            MailroomRun.kill(self.process)
            return None


def deliver(dovecot: Dovecot, mails: list[crashkit.TestMail], user: str | None = None) -> None:
    for mail in mails:
        dovecot.deliver(user or mail.user, mail.raw)


def died_at(process: subprocess.Popen[bytes]) -> float:
    """The moment ``process`` is seen to have ended (it kills itself at a fault point)."""
    wait_for(lambda: process.poll() is not None, 120, "the worker's death at its fault point")
    assert process.returncode == -signal.SIGKILL
    return time.monotonic()


def kill(worker: Worker) -> float:
    MailroomRun.kill(worker.process)
    return time.monotonic()


def assert_each_handled_once(factory: sessionmaker[Session], smtp: SmtpServer, mails: list[crashkit.TestMail],
                             kills: int) -> None:
    """Every mail recorded once, its ticket (if it needs one) made once; every acknowledgement and forward
    received by the SMTP server, twice at most for the one in the SMTP transaction at each kill."""
    with factory() as session:
        records = Counter(session.execute(sa.select(InboundMail.message_id)).scalars())
        tickets = Counter(dict(session.execute(
            sa.select(TicketMessage.message_id, sa.func.count(sa.distinct(TicketMessage.ticket_id)))
            .join(Ticket, Ticket.id == TicketMessage.ticket_id).where(TicketMessage.direction == "in")
            .group_by(TicketMessage.message_id)).all()))
        outgoing = session.execute(sa.select(OutboxMail.message_id, OutboxMail.doubts)
                                   .where(OutboxMail.status != "suppressed")).all()
    assert sorted(records.values()) == [1] * len(mails) and set(records) == {m.message_id for m in mails}
    assert [m.message_id for m in mails if tickets[m.message_id] != int(m.needs_ticket)] == []
    received = Counter(str(message["Message-ID"]) for _, _, message in smtp.recorder.messages)
    assert outgoing and [row.message_id for row in outgoing if received[row.message_id] == 0] == []
    twice = [row for row in outgoing if received[row.message_id] > 1]
    assert len(twice) <= kills and all(received[row.message_id] == 2 and row.doubts for row in twice), twice


def test_workers_on_one_mailbox_each_owner_killed_mid_batch_the_next_takes_over(
    empty_inboxes: Dovecot, crash_smtp: SmtpServer, tmp_path: Path, models: Path,
) -> None:
    """Three workers on one mailbox, 300 mails. The owner dies between a batch's commit and its flags (at its own
    fault point): a standby takes over and only flags what was committed. That one is SIGKILLed from outside as
    the store's count rises, mid-batch: the last takes over. None lost, none handled twice, and no mail sent twice
    but the ones in an SMTP transaction at a kill."""
    mails = crashkit.test_mails(300, random.Random(12))
    with postgres_database() as url:
        upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        run = MailroomRun(empty_inboxes, crash_smtp, url, tmp_path / "var", models_from=models,
                          inboxes={"ca": INBOXES["ca"]})
        workers: list[Worker] = []
        try:
            first = Worker(run, "first", fault="after_commit:3")  # killed between its third commit and flags
            workers.append(first)
            wait_for(lambda: first.says(OWNED), 120, "the first worker owning the mailbox")
            standbys = [Worker(run, "second"), Worker(run, "third")]
            workers += standbys
            for standby in standbys:
                wait_for(lambda: standby.says("mailbox ca: waiting, owned by mailroom "), 120, "a standby waiting")
            deliver(empty_inboxes, mails, "billing-ca")

            death = died_at(first.process)
            at_death = handled(factory)
            assert at_death < len(mails), "the fault point came after the work: nothing to take over"
            wait_for(lambda: any(standby.owns("ca") for standby in standbys), TAKEOVER_LIMIT_S, "the takeover")
            lease_s = time.monotonic() - death
            wait_for(lambda: handled(factory) > at_death, TAKEOVER_LIMIT_S, "mail handled again after the takeover")
            flowing_s = time.monotonic() - death
            owner, last = sorted(standbys, key=lambda standby: not standby.owns("ca"))

            wait_for(lambda: handled(factory) >= at_death + 50, 120, "the new owner at work")
            death = kill(owner)  # mid-batch: the store's count is rising
            at_death = handled(factory)
            assert at_death < len(mails), "the kill came after the work: nothing to take over"
            wait_for(lambda: last.owns("ca"), TAKEOVER_LIMIT_S, "the second takeover")
            second_lease_s = time.monotonic() - death
            wait_for(lambda: run.unflagged() == 0 and active_outbox(factory) == 0, 180, "the whole work done")
            assert last.stop() == 0
        finally:
            for worker in workers:
                worker.stop()
        # The mailbox was never worked by two at once: no worker stored a message another was storing.
        assert not [worker.name for worker in workers if "already handled by another" in worker.log()]
        assert_each_handled_once(factory, crash_smtp, mails, kills=2)
        engine.dispose()
    print(f"takeover after a death at a fault point: lease {lease_s:.2f} s, mail flowing {flowing_s:.2f} s; "
          f"after a SIGKILL: lease {second_lease_s:.2f} s")


def test_two_workers_share_two_mailboxes_and_one_takes_both_when_the_other_dies(
    empty_inboxes: Dovecot, crash_smtp: SmtpServer, tmp_path: Path, models: Path,
) -> None:
    """Two workers, the two inboxes: each owns one (the first to start hands one over to the second); the owner of
    one is SIGKILLed mid-work, the other takes it over and owns both."""
    mails = crashkit.test_mails(100, random.Random(21))
    with postgres_database() as url:
        upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        run = MailroomRun(empty_inboxes, crash_smtp, url, tmp_path / "var", models_from=models)
        workers: list[Worker] = []
        try:
            workers += [Worker(run, "one"), Worker(run, "two")]
            wait_for(lambda: sorted(worker.owns("ca") + worker.owns("us") for worker in workers) == [1, 1]
                     and any(worker.owns("ca") for worker in workers), 120, "each worker owning one mailbox")
            owner_of_ca, other = sorted(workers, key=lambda worker: not worker.owns("ca"))
            deliver(empty_inboxes, mails)
            wait_for(lambda: handled(factory) >= 30, 120, "both mailboxes at work")
            death = kill(owner_of_ca)
            wait_for(lambda: other.owns("ca") and other.owns("us"), TAKEOVER_LIMIT_S, "the takeover of ca")
            took = time.monotonic() - death
            wait_for(lambda: run.unflagged() == 0 and active_outbox(factory) == 0, 180, "the whole work done")
            assert other.stop() == 0
        finally:
            for worker in workers:
                worker.stop()
        assert_each_handled_once(factory, crash_smtp, mails, kills=1)
        engine.dispose()
    print(f"ca taken over {took:.2f} s after its owner's death")


def test_a_second_mailroom_on_the_local_maildir_waits_instead_of_racing(tmp_path: Path, models: Path) -> None:
    """The embedded mode is one worker's: a second ``make run`` mailroom started by mistake on the same var folder
    waits for the Maildir's file lock, and takes over only when the first is gone."""
    var = tmp_path / "var"
    shutil.copytree(models / "mailroom", var / "mailroom")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLING_")}
    env.update(BILLING_VAR_DIR=str(var), BILLING_AUTH_SECRET=TEST_SECRET, PYTHONUNBUFFERED="1")
    inbox = var / "mail" / "inbox"
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    processes = []
    for log in logs:
        with log.open("ab") as output:
            processes.append(subprocess.Popen([sys.executable, "-m", "mailroom", "daemon"], cwd=PROJECT_ROOT, env=env,
                                              stdout=output, stderr=subprocess.STDOUT, start_new_session=True))

    def says(index: int, text: str) -> bool:
        log = logs[index].read_text(encoding="utf-8", errors="replace")
        assert text in log or processes[index].poll() is None, log[-3000:]
        return text in log

    def drop(count: int) -> None:
        for number in range(count):
            name = f"{uuid.uuid4().hex}.eml"
            raw = make_mail(f"local-{name[:6]}@example.ca", f"Facture {number}", "Où est ma facture de mars?")
            (inbox / "tmp" / name).write_bytes(raw)
            os.replace(inbox / "tmp" / name, inbox / "new" / name)  # as a mail client would deliver it

    def done() -> int:
        return len(list((inbox / "cur").iterdir())) if (inbox / "cur").exists() else 0

    try:
        wait_for(lambda: any(says(i, "mailbox local: owned by this worker") for i in (0, 1)), 120, "an owner")
        owner = 0 if says(0, "mailbox local: owned by this worker") else 1
        standby = 1 - owner
        wait_for(lambda: says(standby, "mailbox local: waiting, owned by mailroom "), 120, "the other waiting")
        drop(10)
        wait_for(lambda: done() == 10, 60, "the mail handled by the owner")
        assert not says(standby, "UID")  # the standby handled nothing
        MailroomRun.kill(processes[owner])
        wait_for(lambda: says(standby, "mailbox local: owned by this worker"), TAKEOVER_LIMIT_S, "the takeover")
        drop(5)
        wait_for(lambda: done() == 15, 60, "the mail handled by the new owner")
    finally:
        for process in processes:
            MailroomRun.kill(process)
    engine = make_engine(f"sqlite:///{var / 'billing.db'}")
    with make_session_factory(engine)() as session:
        records = session.execute(sa.select(InboundMail.uid)).scalars().all()
    engine.dispose()
    assert len(records) == len(set(records)) == 15
