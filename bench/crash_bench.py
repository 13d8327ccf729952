"""Crash benchmark of the mailroom, as an operator would run one: real Dovecot (two inboxes), real SMTP (aiosmtpd,
30 ms to accept a message), ``python -m mailroom daemon`` SIGKILLed with its whole process group again and again.

``--mails`` customer mails (copies of every test mail of ``tests/mailroom/data``: every queue, misroutes both ways,
auto-replies, bounces, bulk mail, card numbers...) are delivered in ``--kills`` rounds; each round starts the
daemon(s) and kills them: at a random moment (the first rounds during the first start, while the topic model is
trained and the secret created), or at a named point (after claiming an outgoing mail, after the SMTP server
accepted it but before it is marked sent, before or after a commit, after the flags). Once the SMTP server goes
away for a few seconds; once Dovecot is restarted. A last daemon then works until every mail is flagged and the
outbox is empty, and is stopped with SIGTERM.

It counts from the servers and the store: tickets lost or duplicated (by Message-ID), acknowledgements and
forwards the store holds that never reached the SMTP server, and duplicates that did (at most one per kill is
allowed: the message in the SMTP transaction when the kill came), messages left unflagged, outbox rows stuck,
threads that died.

Usage: .venv/bin/python bench/crash_bench.py [--mails 1000] [--kills 60] [--daemons 1] [--postgresql]
(two daemons need PostgreSQL; it uses the machine's server, postgresql://postgres@127.0.0.1:5432, in a database
of its own that it drops). The last line, for scripts:
``mails=… kills=… tickets_lost=… tickets_duplicated=… outgoing_missing=… outgoing_duplicates=… unflagged=… stuck=…``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.db.engine import make_engine, make_session_factory  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from tests.conftest import postgres_database  # noqa: E402
from tests.mailroom.crashkit import PASSWORDS, CrashPlan, MailroomRun, run_crash_test  # noqa: E402
from tests.mailroom.servers import Dovecot, SmtpServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=60)
    parser.add_argument("--daemons", type=int, default=1)
    parser.add_argument("--postgresql", action="store_true", help="the store on PostgreSQL (else SQLite)")
    parser.add_argument("--seed", type=int, default=20261203)
    args = parser.parse_args()
    if args.daemons > 1 and not args.postgresql:
        parser.error("several daemons need --postgresql (SQLite is the single-process embedded store)")
    began = time.monotonic()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="crash-bench-")))
        dovecot = Dovecot.start(PASSWORDS)
        stack.callback(dovecot.stop)
        smtp = SmtpServer.start(latency=0.03)
        stack.callback(smtp.stop)
        url = stack.enter_context(postgres_database()) if args.postgresql else f"sqlite:///{work / 'billing.db'}"
        upgrade(url)
        engine = make_engine(url)
        stack.callback(engine.dispose)
        run = MailroomRun(dovecot, smtp, url, work / "var")
        plan = CrashPlan(mails=args.mails, kills=args.kills, daemons=args.daemons, seed=args.seed)
        report = run_crash_test(plan, run, make_session_factory(engine), drain_timeout=900.0)
    print(f"store: {'PostgreSQL' if args.postgresql else 'SQLite'}, daemons: {args.daemons}, "
          f"tickets expected: {report.tickets_expected}, acknowledgements: {report.acks}, forwards: {report.forwards}, "
          f"drain after the last kill: {report.drain_seconds:.1f} s, clean stop on SIGTERM: {report.stopped_cleanly}, "
          f"whole run: {time.monotonic() - began:.0f} s")
    for note in report.notes:
        print(f"note: {note}")
    print(report.line())
    failed = (report.tickets_lost or report.tickets_duplicated or report.outgoing_missing or report.unflagged
              or report.stuck or report.dead_threads or report.outgoing_duplicates > args.kills * args.daemons
              or not report.stopped_cleanly)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
