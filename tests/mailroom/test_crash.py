"""The mailroom killed as an operator would kill it, against a real Dovecot and a real SMTP server: nothing lost,
nothing handled twice, at most one duplicate mail per kill, nothing left stuck, no thread dead in a live
process. (``bench/crash_bench.py`` runs the long version: 1,000 mails, 60 kills.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.db.engine import make_engine, make_session_factory
from core.db.migrate import upgrade
from core.db.models import Ticket
from core.settings import PROJECT_ROOT
from tests.conftest import postgres_database
from tests.mailroom.crashkit import CrashPlan, MailroomRun, run_crash_test
from tests.mailroom.helpers import make_mail
from tests.mailroom.servers import Dovecot, SmtpServer


def store(url: str) -> tuple[sessionmaker[Session], sa.engine.Engine]:
    upgrade(url)
    engine = make_engine(url)
    return make_session_factory(engine), engine


def assert_nothing_lost(report_line: str, kills: int, **figures: int) -> None:
    values = dict(pair.split("=") for pair in report_line.split())
    assert values["tickets_lost"] == "0" and values["tickets_duplicated"] == "0", report_line
    assert values["outgoing_missing"] == "0" and int(values["outgoing_duplicates"]) <= kills, report_line
    assert values["unflagged"] == "0" and values["stuck"] == "0" and values["dead_threads"] == "0", report_line
    assert values["stopped_cleanly"] == "1", report_line
    for key, minimum in figures.items():
        assert int(values[key]) >= minimum, report_line


def test_one_daemon_on_sqlite_killed_again_and_again_loses_nothing(
    empty_inboxes: Dovecot, crash_smtp: SmtpServer, tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'billing.db'}"
    factory, engine = store(url)
    run = MailroomRun(empty_inboxes, crash_smtp, url, tmp_path / "var")  # a fresh var: the first start is killed
    report = run_crash_test(CrashPlan(mails=70, kills=8, first_start_kills=2), run, factory)
    engine.dispose()
    print(report.line())
    assert_nothing_lost(report.line(), 8, acks=40, forwards=5)


def test_two_daemons_on_postgresql_killed_again_and_again_never_break_each_other(
    empty_inboxes: Dovecot, crash_smtp: SmtpServer, tmp_path: Path, models: Path,
) -> None:
    with postgres_database() as url:
        factory, engine = store(url)
        run = MailroomRun(empty_inboxes, crash_smtp, url, tmp_path / "var", models_from=models)
        report = run_crash_test(CrashPlan(mails=50, kills=5, daemons=2, first_start_kills=0, restart_dovecot=False),
                                run, factory)
        engine.dispose()
    print(report.line())
    assert_nothing_lost(report.line(), 2 * 5, acks=25)


@pytest.mark.parametrize("fault", ["before_commit:1:raise", "after_send:1:raise"])
def test_an_unexpected_error_in_a_loop_is_logged_and_the_loop_goes_on(
    empty_inboxes: Dovecot, crash_smtp: SmtpServer, tmp_path: Path, models: Path, fault: str,
) -> None:
    url = f"sqlite:///{tmp_path / 'billing.db'}"
    factory, engine = store(url)
    run = MailroomRun(empty_inboxes, crash_smtp, url, tmp_path / "var", models_from=models)
    sender = f"loop-{uuid.uuid4().hex[:6]}@example.ca"
    empty_inboxes.deliver("billing-ca", make_mail(sender, "Carte refusée", "Ma carte Visa est refusée au portail."))
    process = run.start(fault)
    try:
        messages = crash_smtp.recorder.wait_for(1, timeout=90)
        assert [m for _, recipients, m in messages if sender in recipients]
        assert process.poll() is None  # still alive, still working
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    log = run.log.read_text()
    assert "unexpected error" in log and "InjectedFault" in log and "Traceback" in log
    with factory() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(Ticket)
                               .where(Ticket.customer_email == sender)).scalar_one() == 1
    engine.dispose()


def test_a_thread_that_ends_silently_stops_the_process_with_a_failure_status(
    empty_inboxes: Dovecot, crash_smtp: SmtpServer, tmp_path: Path, models: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'billing.db'}"
    factory, engine = store(url)
    run = MailroomRun(empty_inboxes, crash_smtp, url, tmp_path / "var", models_from=models)
    empty_inboxes.deliver("billing-ca", make_mail("exit@example.ca", "Facture", "Où est ma facture de mars?"))
    process = run.start("after_claim:1:exit")  # SystemExit ends the sender thread without a traceback
    assert process.wait(timeout=90) == 1
    assert "ended unexpectedly" in run.log.read_text()
    engine.dispose()


def test_sigterm_finishes_the_batch_in_flight_and_exits_within_seconds(
    empty_inboxes: Dovecot, crash_smtp: SmtpServer, tmp_path: Path, models: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'billing.db'}"
    factory, engine = store(url)
    run = MailroomRun(empty_inboxes, crash_smtp, url, tmp_path / "var", models_from=models)
    for number in range(120):
        empty_inboxes.deliver("billing-ca", make_mail(f"t{number}-{uuid.uuid4().hex[:6]}@example.ca",
                                                      f"Crédit {number}", "Je ne vois pas mon crédit."))
    process = run.start()
    while "UID" not in (run.log.read_text() if run.log.exists() else ""):
        assert process.poll() is None, run.log.read_text()[-3000:]
        time.sleep(0.1)  # waiting for the first message to be handled
    process.send_signal(signal.SIGTERM)
    began = time.monotonic()
    assert process.wait(timeout=30) == 0
    stopped_in = time.monotonic() - began
    with factory() as session:
        handled = session.execute(sa.text("SELECT count(*) FROM inbound_mail")).scalar_one()
    assert handled >= 1 and run.unflagged() == 120 - handled  # what was stored is flagged, nothing more
    process = run.start()  # the rest, after a restart
    try:
        while run.unflagged():
            assert process.poll() is None, run.log.read_text()[-3000:]
            time.sleep(0.5)  # polling the mailbox until the backlog is handled
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    with factory() as session:
        assert session.execute(sa.text("SELECT count(*) FROM inbound_mail")).scalar_one() == 120
    engine.dispose()
    print(f"stopped {stopped_in:.1f} s after SIGTERM")


def test_a_daemon_that_cannot_start_says_why_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "auth_secret").write_text("too-short")  # someone wrote it: refused, never silently replaced
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLING_")}
    env["BILLING_VAR_DIR"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-m", "mailroom", "daemon"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "auth_secret" in output and "BILLING_AUTH_SECRET" in output and "delete the file" in output
    assert "Traceback" not in output
