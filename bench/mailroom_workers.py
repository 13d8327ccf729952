"""Mailroom workers benchmark: throughput with 1 and 2 workers, and the takeover of a mailbox after its owner's death.

Real ``python -m mailroom daemon`` workers on one PostgreSQL store (the machine's server, a database of its own,
dropped afterwards), a real Dovecot with the two billing inboxes (CA and US), a real SMTP server (aiosmtpd). The
mail: copies of every test mail of ``tests/mailroom/data`` (every queue, misroutes, auto-replies, bounces, bulk
mail, card numbers), each with its own Message-ID and sender, delivered into the Maildirs as an MTA would, half to
each inbox. Each worker runs as ``make run`` starts it: batches of 200, as many reader processes as cores (started
on its first backlog: a warm-up backlog is handled before the clock runs).

1. **1 worker** owns both inboxes; ``--messages`` mails are delivered and the clock runs from the first delivery
   to the last mail committed (its ticket and acknowledgement in the store; flagged on the server right after).
2. **2 workers**: a second one starts; the first hands it one inbox (its share); the same measure.
3. With ``--standby-throughput``, on a store and one inbox of their own, **2 workers on 1 mailbox**: an owner and a
   standby. The standby does no mail work, so this is the one-worker figure again (not in the last line).
4. **Takeover**, ``--kills`` times: ``--backlog`` mails are delivered to the CA inbox and its owner is SIGKILLed
   (its whole process group) while the store's count rises; the other worker's takeover is timed to its lease (its
   log says it owns the inbox) and to the mail flowing again (the store's count rises; for a worker whose reader
   processes are not started yet, it reads in its own process meanwhile). A new worker is then started, as a
   supervisor would, and is handed its share.

Then everything is handled and sent, and counted from the store and the servers: mails lost (no record, no ticket
when one is due, or left unflagged), handled twice (two records or two tickets), and mail sent twice by SMTP (the
one in the SMTP transaction at a kill may be: sent again with the same Message-ID, as ``core.outbox`` chooses).

Usage: .venv/bin/python bench/mailroom_workers.py [--messages 1000] [--kills 2] [--backlog 300] [--readers N]
       [--standby-throughput]   (about 3 minutes; 4 with --standby-throughput)
The last line, for scripts (``bench/cluster_bench.py`` runs this one and reads it):
``mail_1_msgs_per_s=… mail_2_msgs_per_s=… takeover_s=… lease_s=… lost=… duplicated=… sent_twice=…``
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from core.db.engine import make_engine, make_session_factory  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.db.models import InboundMail, OutboxMail, Ticket, TicketMessage  # noqa: E402
from core.settings import Settings  # noqa: E402
from mailroom.context import TriageContext  # noqa: E402
from tests.conftest import postgres_database  # noqa: E402
from tests.mailroom import crashkit  # noqa: E402
from tests.mailroom.crashkit import (  # noqa: E402
    INBOXES,
    PASSWORDS,
    MailroomRun,
    active_outbox,
    empty_inboxes,
    handled,
)
from tests.mailroom.servers import Dovecot, SmtpServer  # noqa: E402

OWNED = "owned by this worker"
READERS_READY = "mail reader processes ready"
WARM_UP_MAILS = 100  # per inbox: batches large enough for the reader processes to start
TIMEOUT_S = 240.0


class Worker:
    """A mailroom daemon of a phase, with a log of its own."""

    def __init__(self, run: MailroomRun, name: str) -> None:
        self.name = name
        self.log_path = run.var_dir / f"{name}.log"
        self.process = run.start(None, self.log_path)

    def owns(self, mailbox: str) -> bool:
        """True when the worker's last word on ``mailbox`` is that it owns it."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""
        if self.process.poll() is not None:
            raise SystemExit(f"worker {self.name} ended:\n{text[-3000:]}")
        events = [line for line in text.splitlines() if f"mailbox {mailbox}: " in line]
        return bool(events) and OWNED in events[-1]

    def says(self, text: str) -> bool:
        return self.log_path.exists() and text in self.log_path.read_text(encoding="utf-8", errors="replace")

    def is_waiting(self, mailbox: str) -> bool:
        return self.says(f"mailbox {mailbox}: waiting, owned by")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                MailroomRun.kill(self.process)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT_S,
             state: Callable[[], str] = lambda: "") -> float:
    """Poll ``condition`` until it holds; the seconds it took."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout:
            raise SystemExit(f"{what}: not within {timeout:.0f} s {state()}")
        time.sleep(0.02)  # polling a state (a count, a log line)
    return time.monotonic() - began


class Phase:
    """A store of its own, workers started on ``inboxes``, the mail delivered to them and what became of it."""

    def __init__(self, stack: ExitStack, dovecot: Dovecot, smtp: SmtpServer, work: Path, models: Path, label: str,
                 inboxes: dict[str, tuple[str, str]], readers: int | None = None) -> None:
        empty_inboxes(dovecot)
        self.dovecot = dovecot
        self.smtp = smtp
        self.inboxes = inboxes
        url = stack.enter_context(postgres_database())
        upgrade(url)
        engine = make_engine(url)
        stack.callback(engine.dispose)
        self.factory = make_session_factory(engine)
        self.run = MailroomRun(dovecot, smtp, url, work / label, models_from=models, inboxes=inboxes,
                               extra_env={"BILLING_MAIL_BATCH": str(Settings().mail_batch),  # the default batch
                                          "BILLING_MAIL_WORKERS": str(readers or Settings().mail_workers)})
        self.workers: list[Worker] = []
        self.mails: list[crashkit.TestMail] = []
        stack.callback(self.stop)

    def start(self, name: str) -> Worker:
        worker = Worker(self.run, name)
        self.workers.append(worker)
        return worker

    def alive(self) -> list[Worker]:
        return [worker for worker in self.workers if worker.process.poll() is None]

    def owner_of(self, inbox: str) -> Worker | None:
        return next((worker for worker in self.alive() if worker.owns(inbox)), None)

    def shared_out(self) -> bool:
        """True when every inbox has an owner and every worker alive owns its share (as many as the others)."""
        owned = [sum(worker.owns(inbox) for inbox in self.inboxes) for worker in self.alive()]
        return sum(owned) == len(self.inboxes) and max(owned) - min(owned) <= 1

    def deliver(self, count: int, seed: int, inbox: str | None = None) -> None:
        """``count`` mails, to ``inbox`` or half to each inbox."""
        users = [user for user, _ in ([self.inboxes[inbox]] if inbox else self.inboxes.values())]
        mails = crashkit.test_mails(count, random.Random(seed))
        for number, mail in enumerate(mails):
            self.dovecot.deliver(users[number % len(users)], mail.raw)
        self.mails += mails

    def drain(self, outbox: bool = True) -> float:
        """Wait until every mail is handled and flagged, and with ``outbox`` every acknowledgement sent."""
        return wait_for(lambda: handled(self.factory) == len(self.mails) and self.run.unflagged() == 0
                        and (not outbox or active_outbox(self.factory) == 0), "every mail handled, flagged and answered",
                        state=lambda: f"(handled {handled(self.factory)} of {len(self.mails)}, unflagged "
                                      f"{self.run.unflagged()}, outbox busy {active_outbox(self.factory)})")

    def warm_up(self, seed: int) -> None:
        """A first backlog in every inbox, handled: the reader processes of every owner start on it."""
        self.deliver(WARM_UP_MAILS * len(self.inboxes), seed)
        wait_for(lambda: all(worker.says(READERS_READY) for worker in self.alive()
                             if any(worker.owns(inbox) for inbox in self.inboxes)), "the reader processes")
        self.drain(outbox=False)

    def throughput(self, count: int, seed: int) -> float:
        """Messages per second, the first delivery to the last commit."""
        before = handled(self.factory)
        began = time.monotonic()
        self.deliver(count, seed)
        wait_for(lambda: handled(self.factory) >= before + count, "the mail handled")
        return count / (time.monotonic() - began)

    def takeover(self, count: int, seed: int) -> tuple[float, float]:
        """Deliver ``count`` mails to the CA inbox, SIGKILL its owner once the store's count rises, and time the
        takeover: (to the new owner's lease, to the mail flowing again)."""
        owner = self.owner_of("ca")
        assert owner is not None
        before = handled(self.factory)
        self.deliver(count, seed, "ca")
        wait_for(lambda: handled(self.factory) >= before + count // 5, "the owner at work")  # mid-backlog
        MailroomRun.kill(owner.process)
        death = time.monotonic()
        at_death = handled(self.factory)
        if at_death >= before + count:
            raise SystemExit("the owner finished before the kill: deliver more (--backlog)")
        wait_for(lambda: self.owner_of("ca") is not None, "the takeover")
        lease_s = time.monotonic() - death
        wait_for(lambda: handled(self.factory) > at_death, "the mail flowing again")
        return lease_s, time.monotonic() - death

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()

    def count(self) -> tuple[int, int, int]:
        """(lost, handled twice, sent twice) over the phase's mail (sent twice: among the mail sent so far)."""
        with self.factory() as session:
            records = Counter(session.execute(sa.select(InboundMail.message_id)).scalars())
            tickets = Counter(dict(session.execute(
                sa.select(TicketMessage.message_id, sa.func.count(sa.distinct(TicketMessage.ticket_id)))
                .join(Ticket, Ticket.id == TicketMessage.ticket_id).where(TicketMessage.direction == "in")
                .group_by(TicketMessage.message_id)).all()))
            outgoing = session.execute(sa.select(OutboxMail.message_id).where(OutboxMail.status != "suppressed")
                                       ).scalars().all()
        lost = sum(1 for m in self.mails if records[m.message_id] == 0 or (m.needs_ticket and not tickets[m.message_id]))
        lost = max(lost, self.run.unflagged())
        twice = sum(1 for m in self.mails if records[m.message_id] > 1 or tickets[m.message_id] > 1)
        received = Counter(str(message["Message-ID"]) for _, _, message in self.smtp.recorder.messages)
        sent_twice = sum(received[message_id] - 1 for message_id in outgoing if received[message_id] > 1)
        return lost, twice, sent_twice


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000, help="mails per throughput measure (default 1000)")
    parser.add_argument("--kills", type=int, default=2, help="owners killed (default 2)")
    parser.add_argument("--backlog", type=int, default=300, help="mails delivered before each kill (default 300)")
    parser.add_argument("--readers", type=int, default=None,
                        help="reader processes of each worker (default: as many as cores, as make run starts it)")
    parser.add_argument("--standby-throughput", action="store_true",
                        help="also measure 2 workers on 1 inbox (an owner and a standby: the 1-worker figure)")
    args = parser.parse_args(argv)
    began = time.monotonic()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mailroom-workers-")))
        models = work / "models"
        settings = Settings.from_env({"BILLING_VAR_DIR": str(models), "BILLING_AUTH_SECRET": uuid.uuid4().hex * 2})
        trained = time.monotonic()
        TriageContext.build(settings)  # trains the mail topic model once; every worker loads it from the cache
        print(f"mail topic model ready in {time.monotonic() - trained:.0f} s (not part of the figures)", flush=True)
        dovecot = Dovecot.start(PASSWORDS)
        stack.callback(dovecot.stop)
        smtp = SmtpServer.start()
        stack.callback(smtp.stop)
        counts: list[tuple[int, int, int]] = []

        if args.standby_throughput:
            with ExitStack() as phase_stack:
                standby = Phase(phase_stack, dovecot, smtp, work, models, "standby", {"ca": INBOXES["ca"]},
                                args.readers)
                owner = standby.start("w1")
                wait_for(lambda: owner.owns("ca"), "the first worker owning the inbox")
                waiting = standby.start("w2")
                wait_for(lambda: waiting.is_waiting("ca"), "the second worker waiting")
                standby.warm_up(seed=300)
                rate = standby.throughput(args.messages, seed=3)
                standby.drain(outbox=False)
                counts.append(standby.count())
            print(f"2 workers, 1 inbox (an owner and a standby): {args.messages} mails at {rate:.0f} msg/s", flush=True)

        phase = Phase(stack, dovecot, smtp, work, models, "workers", INBOXES, args.readers)
        first = phase.start("w1")
        wait_for(lambda: first.owns("ca") and first.owns("us"), "the first worker owning both inboxes")
        phase.warm_up(seed=100)
        mail_1 = phase.throughput(args.messages, seed=1)
        print(f"1 worker, 2 inboxes: {args.messages} mails at {mail_1:.0f} msg/s", flush=True)

        phase.start("w2")
        handed = wait_for(phase.shared_out, "each worker owning one inbox")
        print(f"a second worker started: {handed:.1f} s later (its start included) it owned its share, one inbox",
              flush=True)
        phase.warm_up(seed=200)
        mail_2 = phase.throughput(args.messages, seed=2)
        print(f"2 workers, 2 inboxes (one each): {args.messages} mails at {mail_2:.0f} msg/s "
              f"({mail_2 / mail_1:.2f} x one worker)", flush=True)

        takeovers: list[tuple[float, float]] = []
        for number in range(args.kills):
            if number:
                phase.start(f"w{number + 2}")  # the one killed, started again (as a supervisor would)
                wait_for(phase.shared_out, "the new worker owning its share")
            takeovers.append(phase.takeover(args.backlog, seed=10 + number))
            print(f"kill {number + 1}: the CA inbox owned by the other worker {takeovers[-1][0]:.2f} s after its "
                  f"owner's SIGKILL, mail stored again {takeovers[-1][1]:.2f} s after", flush=True)
        drained = phase.drain()
        print(f"everything handled and sent {drained:.0f} s later", flush=True)
        counts.append(phase.count())
    lost, duplicated, sent_twice = (sum(column) for column in zip(*counts))
    lease_s, takeover_s = max(t[0] for t in takeovers), max(t[1] for t in takeovers)
    print(f"{lost} mails lost, {duplicated} handled twice, {sent_twice} acknowledgements or forwards sent twice (at "
          f"most one per kill: the one in the SMTP transaction); whole run {time.monotonic() - began:.0f} s")
    print(f"mail_1_msgs_per_s={mail_1:.0f} mail_2_msgs_per_s={mail_2:.0f} takeover_s={takeover_s:.2f} "
          f"lease_s={lease_s:.2f} lost={lost} duplicated={duplicated} sent_twice={sent_twice}")
    return 1 if lost or duplicated or takeover_s > 10 else 0


if __name__ == "__main__":
    sys.exit(main())
