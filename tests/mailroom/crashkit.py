"""Crash-testing the mailroom as an operator would: real Dovecot, real SMTP, ``python -m mailroom daemon`` killed
again and again, then counted from the servers and the store.

Used by ``tests/mailroom/test_crash.py`` (a short run in CI) and ``bench/crash_bench.py`` (1,000 mails, 60 kills).
Each round delivers a share of the mail to the two inboxes, starts the daemon(s) in a process group of their own
and kills the whole group: at a random moment (the first rounds fall in the first start, while the topic model
is trained and the secret created), or at a named fault point (after a claim, after the SMTP server accepted a
message but before it is marked sent, before or after a commit, after the flags). Once, the SMTP server goes
away for a few seconds; once, Dovecot is restarted. A last daemon then runs until everything is handled and
sent, and is stopped with SIGTERM.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imapclient
import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session, sessionmaker

from core.db.models import InboundMail, OutboxMail, Ticket, TicketMessage
from core.settings import PROJECT_ROOT
from tests.mailroom.helpers import copy_of
from tests.mailroom.servers import Dovecot, SmtpServer

DATA = Path(__file__).parent / "data"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((DATA / "expected.yml").read_text(encoding="utf-8"))
INBOXES = {"ca": ("billing-ca", "CA"), "us": ("billing-us", "US")}
PASSWORDS = {"billing-ca": "ca-secret-pw", "billing-us": "us-secret-pw"}
FAULT_POINTS = ("after_claim", "after_send", "before_commit", "after_commit", "after_flag")
ACTIVE = ("pending", "sending")


@dataclass(frozen=True)
class TestMail:
    """One mail of the run: where it goes, its Message-ID, and whether it must become a ticket."""

    user: str
    raw: bytes
    message_id: str
    needs_ticket: bool


@dataclass
class CrashPlan:
    """What a run does. ``daemons``: how many mailroom processes at once (on PostgreSQL for more than one)."""

    mails: int
    kills: int
    daemons: int = 1
    first_start_kills: int = 2
    smtp_outage_seconds: float = 3.0
    restart_dovecot: bool = True
    seed: int = 20261203


@dataclass
class CrashReport:
    """What the servers and the store say after the run."""

    mails: int = 0
    kills: int = 0
    tickets_expected: int = 0
    tickets_lost: int = 0
    tickets_duplicated: int = 0
    outgoing: int = 0  # acknowledgements and forwards the store holds (not suppressed)
    acks: int = 0
    forwards: int = 0
    outgoing_missing: int = 0
    outgoing_duplicates: int = 0
    unflagged: int = 0
    stuck: int = 0
    dead_threads: int = 0
    stopped_cleanly: bool = False
    drain_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        keys = ("mails", "kills", "tickets_expected", "tickets_lost", "tickets_duplicated", "acks", "forwards",
                "outgoing_missing", "outgoing_duplicates", "unflagged", "stuck", "dead_threads")
        return " ".join(f"{key}={getattr(self, key)}" for key in keys) + \
            f" stopped_cleanly={int(self.stopped_cleanly)} drain_s={self.drain_seconds:.1f}"


def test_mails(count: int, rng: random.Random) -> list[TestMail]:
    """``count`` copies of the test corpus (each with a Message-ID and a sender of its own), shuffled."""
    files = sorted(EXPECTED)
    mails = []
    for number in range(count):
        name = files[number % len(files)]
        raw = copy_of((DATA / name).read_bytes(), tag=f"c{number}")
        message_id = raw.split(b"Message-ID: <", 1)[1].split(b">", 1)[0].decode()
        user = INBOXES[EXPECTED[name]["to"]][0]
        mails.append(TestMail(user, raw, f"<{message_id}>", EXPECTED[name]["queue"] is not None))
    rng.shuffle(mails)
    return mails


class MailroomRun:
    """``python -m mailroom daemon`` processes on the two Dovecot mailboxes, the SMTP server and a store."""

    def __init__(self, dovecot: Dovecot, smtp: SmtpServer, database_url: str, var_dir: Path,
                 extra_env: dict[str, str] | None = None, models_from: Path | None = None,
                 inboxes: dict[str, tuple[str, str]] | None = None) -> None:
        """``models_from``: a var folder whose trained mail models are copied in (a run that is not about the
        first start need not wait for the training). ``inboxes``: the mailboxes to watch (both by default), by
        name: (Dovecot user, team)."""
        self.dovecot = dovecot
        self.smtp = smtp
        self.var_dir = var_dir
        var_dir.mkdir(parents=True, exist_ok=True)
        if models_from is not None:
            shutil.copytree(models_from / "mailroom", var_dir / "mailroom", dirs_exist_ok=True)
        config = var_dir / "mailroom.yml"
        config.write_text(yaml.safe_dump({
            "mailboxes": [{"name": name, "team": team, "host": "127.0.0.1", "port": dovecot.port,
                           "security": "starttls", "username": user, "password_env": f"TEST_PW_{name.upper()}",
                           "ca_file": str(dovecot.ca_file), "poll_seconds": 2}
                          for name, (user, team) in (inboxes or INBOXES).items()],
            "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "plain"},
        }))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BILLING_")}
        self.env.update(
            BILLING_VAR_DIR=str(var_dir), DATABASE_URL=database_url, BILLING_MAILROOM_CONFIG=str(config),
            TEST_PW_CA=PASSWORDS["billing-ca"], TEST_PW_US=PASSWORDS["billing-us"],
            BILLING_ACK_GLOBAL_HOUR="100000",  # a test sends more than a real hour's worth of acknowledgements
            BILLING_MAIL_BATCH="25",  # several batches, so that kills land between them too
            PYTHONUNBUFFERED="1",
        )
        self.env.update(extra_env or {})
        self.log = var_dir / "mailroom.log"
        self.processes: list[subprocess.Popen[bytes]] = []

    def wait_ready(self, process: subprocess.Popen[bytes], since: int, timeout: float = 180.0) -> bool:
        """Wait until the daemon started at log offset ``since`` says it watches (False if it ended first)."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            with self.log.open("rb") as log:
                log.seek(since)
                if b"mailroom watching" in log.read():
                    return True
            if process.poll() is not None:
                return False
            time.sleep(0.1)  # polling the log for the readiness line
        raise TimeoutError(f"the mailroom was not ready within {timeout:.0f} s")

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def start(self, fault: str | None = None, log_path: Path | None = None) -> subprocess.Popen[bytes]:
        """Start a daemon, its output appended to ``log_path`` (the run's log by default)."""
        env = dict(self.env)
        if fault:
            env["BILLING_MAILROOM_CRASH_AT"] = fault
        with (log_path or self.log).open("ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "mailroom", "daemon"], cwd=PROJECT_ROOT, env=env,
                                       stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        self.processes.append(process)
        return process

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the process's whole group (its reader processes too)."""
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()

    def unflagged(self) -> int:
        total = 0
        for user in PASSWORDS:
            client = imapclient.IMAPClient("127.0.0.1", port=self.dovecot.port, ssl=False, timeout=20)
            try:
                client.login(user, PASSWORDS[user])
                client.select_folder("INBOX", readonly=True)
                total += len(client.search(["NOT", "KEYWORD", "$BillingTriaged"]))
            finally:
                client.logout()
        return total


def handled(factory: sessionmaker[Session]) -> int:
    """How many messages the store has recorded."""
    with factory() as session:
        return int(session.execute(sa.select(sa.func.count()).select_from(InboundMail)).scalar_one())


def active_outbox(factory: sessionmaker[Session]) -> int:
    """How many outgoing mails are still to send (pending, or being sent)."""
    with factory() as session:
        return int(session.execute(sa.select(sa.func.count()).select_from(OutboxMail)
                                   .where(OutboxMail.status.in_(ACTIVE))).scalar_one())


def empty_inboxes(dovecot: Dovecot) -> None:
    """Delete every message of the two billing inboxes."""
    for user in PASSWORDS:
        for sub in ("new", "cur"):
            for path in (dovecot.maildir(user) / sub).iterdir():
                path.unlink()


def run_crash_test(plan: CrashPlan, run: MailroomRun, factory: sessionmaker[Session],
                   drain_timeout: float = 300.0, log: Any = print) -> CrashReport:
    """Run ``plan`` and count what was lost, duplicated, left unflagged or stuck."""
    rng = random.Random(plan.seed)
    mails = test_mails(plan.mails, rng)
    report = CrashReport(mails=len(mails), kills=plan.kills)
    chunks = [mails[i::plan.kills] for i in range(plan.kills)]
    outage_round = plan.kills // 3 if plan.smtp_outage_seconds else -1
    dovecot_round = (2 * plan.kills) // 3 if plan.restart_dovecot else -1
    for number, chunk in enumerate(chunks):
        for mail in chunk:
            run.dovecot.deliver(mail.user, mail.raw)
        first_start = number < plan.first_start_kills
        fault = None
        if not first_start and rng.random() < 0.5:
            fault = f"{rng.choice(FAULT_POINTS)}:{rng.randint(1, 4)}"
        since = run.log_size()
        processes = [run.start(fault) for _ in range(plan.daemons)]
        if not first_start:
            run.wait_ready(processes[0], since)  # the kill lands in the work, not in the start (see first_start)
        if number == outage_round:
            run.smtp.stop()
            time.sleep(plan.smtp_outage_seconds)  # the length of the outage, not a wait for a result
            run.smtp.resume()
        if number == dovecot_round:
            run.dovecot.restart()
        if fault:
            try:
                processes[0].wait(timeout=rng.uniform(4.0, 12.0))
            except subprocess.TimeoutExpired:
                pass  # the fault point was not reached (nothing to send): killed at a random moment instead
        else:
            time.sleep(rng.uniform(0.2, 3.0) if first_start else rng.uniform(0.05, 2.5))  # a random moment to kill
        for process in processes:
            run.kill(process)
        log(f"round {number + 1}/{plan.kills}: {len(chunk)} mails, "
            f"{'fault ' + fault if fault else 'killed at a random moment'}{' (first start)' if first_start else ''}")
    began, since = time.monotonic(), run.log_size()
    final = [run.start() for _ in range(plan.daemons)]
    try:
        run.wait_ready(final[0], since)
        while time.monotonic() - began < drain_timeout:
            if run.unflagged() == 0 and active_outbox(factory) == 0:
                break
            if any(process.poll() is not None for process in final):
                report.notes.append("a daemon exited while draining")
                break
            time.sleep(1.0)  # polling the servers and the store for the end of the work
        report.drain_seconds = time.monotonic() - began
    finally:
        for process in final:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        statuses = []
        for process in final:
            try:
                statuses.append(process.wait(timeout=30))
            except subprocess.TimeoutExpired:
                run.kill(process)
                statuses.append(None)
        report.stopped_cleanly = all(status == 0 for status in statuses)
    _count(report, mails, run, factory)
    return report


def _count(report: CrashReport, mails: list[TestMail], run: MailroomRun, factory: sessionmaker[Session]) -> None:
    with factory() as session:
        tickets_of = Counter(dict(session.execute(
            sa.select(TicketMessage.message_id, sa.func.count(sa.distinct(TicketMessage.ticket_id)))
            .join(Ticket, Ticket.id == TicketMessage.ticket_id)
            .where(TicketMessage.direction == "in").group_by(TicketMessage.message_id)
        ).all()))
        rows = session.execute(sa.select(OutboxMail.message_id, OutboxMail.kind, OutboxMail.status)).all()
    expected = [mail for mail in mails if mail.needs_ticket]
    report.tickets_expected = len(expected)
    report.tickets_lost = sum(1 for mail in expected if tickets_of[mail.message_id] == 0)
    report.tickets_duplicated = sum(tickets_of[mail.message_id] - 1 for mail in expected if tickets_of[mail.message_id] > 1)
    received = Counter(str(message["Message-ID"]) for _, _, message in run.smtp.recorder.messages)
    outgoing = [row for row in rows if row.status != "suppressed"]
    report.outgoing = len(outgoing)
    report.acks = sum(1 for row in outgoing if row.kind == "ack")
    report.forwards = sum(1 for row in outgoing if row.kind == "forward")
    report.outgoing_missing = sum(1 for row in outgoing if received[row.message_id] == 0)
    report.outgoing_duplicates = sum(received[row.message_id] - 1 for row in outgoing if received[row.message_id] > 1)
    report.unflagged = run.unflagged()
    report.stuck = sum(1 for row in rows if row.status in (*ACTIVE, "failed"))
    text = run.log.read_text(encoding="utf-8", errors="replace") if run.log.exists() else ""
    report.dead_threads = text.count("Exception in thread") + text.count("ended unexpectedly")
