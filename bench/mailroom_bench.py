"""Mailroom benchmark against a real Dovecot (IMAP) and a real SMTP server (aiosmtpd), both on loopback.

1. Fills a Dovecot mailbox with ``--messages`` varied messages (default 5,000): every English and French test
   message of ``tests/mailroom/data`` (every queue, misroutes both ways and their look-alikes, auto-replies,
   bounces, bulk mail, replies, HTML-only, odd charsets, card numbers), each copy with its own Message-ID and
   sender, written straight into the Maildir as the MTA would.
2. Raw transport limit: the same mailbox fetched with imapclient alone (``BODY.PEEK[]`` in batches of the
   mailroom's batch size), after a warm-up pass so both sides read from Dovecot's warm index and page cache.
3. End to end on SQLite: connect, search, fetch, triage, ticket and outbox rows committed per message, then the
   batch flagged ``$BillingTriaged`` (every message's ticket is committed before its flag). Peak RSS of this
   process (the mailroom runs in it; Dovecot is a separate process).
4. Where the time goes: the end-to-end pass again, under cProfile, on a second mailbox of ``--profile-messages``
   messages; cumulative time of each pipeline stage and of fetch, store and commit.
5. IDLE to acknowledgement: the mailroom daemon watches a third, empty mailbox with IMAP IDLE; a message is
   delivered into the Maildir and the clock runs until the SMTP server has received its acknowledgement
   (``--idle-rounds`` rounds, median and worst).

Usage: .venv/bin/python bench/mailroom_bench.py [--messages N] [--profile-messages N] [--idle-rounds N]
The last line, for scripts: ``e2e_msgs_per_s=… raw_fetch_msgs_per_s=… ratio=… peak_rss_mb=… idle_to_ack_s=…``.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import imapclient  # noqa: E402
import yaml  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from core.db.engine import make_engine, make_session_factory  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.demo import seed  # noqa: E402
from core.settings import Settings  # noqa: E402
from mailroom.config import MailboxConfig, MailroomConfig, SmtpConfig  # noqa: E402
from mailroom.context import TriageContext  # noqa: E402
from mailroom.imap import ImapMailbox  # noqa: E402
from mailroom.parse import parse_mail  # noqa: E402
from mailroom.pipeline import STAGES  # noqa: E402
from mailroom.service import Daemon, Processor, process_imap  # noqa: E402
from mailroom.store import handled_keys, record  # noqa: E402
from tests.mailroom.helpers import copy_of, make_mail  # noqa: E402
from tests.mailroom.servers import MAIL_UID, Dovecot, SmtpServer  # noqa: E402

DATA = ROOT / "tests" / "mailroom" / "data"
EXPECTED = yaml.safe_load((DATA / "expected.yml").read_text(encoding="utf-8"))
USERS = {"bench": "bench-pw", "warmup": "warmup-pw", "profile": "profile-pw", "idle": "idle-pw"}
WARMUP_MESSAGES = 200


def fill(dovecot: Dovecot, user: str, count: int) -> dict[str, int]:
    """Write ``count`` messages into the user's Maildir ``cur/`` (what Dovecot indexes on the first SELECT)."""
    templates = [(DATA / name).read_bytes() for name in sorted(EXPECTED)]
    kinds: dict[str, int] = {}
    folder = dovecot.maildir(user) / "cur"
    base = time.time_ns()
    for number in range(count):
        name = sorted(EXPECTED)[number % len(templates)]
        kind = EXPECTED[name]["automated"] or "customer"
        kinds[kind] = kinds.get(kind, 0) + 1
        path = folder / f"{base + number}.M{number}P{os.getpid()}.bench:2,"
        path.write_bytes(copy_of(templates[number % len(templates)], f"b{number}"))
        os.chown(path, MAIL_UID, MAIL_UID)
    return kinds


def reader_pids() -> list[int]:
    """This process's children that are mail reader processes (multiprocessing spawns them with ``-c``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if parent == os.getpid() and b"multiprocessing" in command and b"resource_tracker" not in command:
            pids.append(int(entry.name))
    return pids


def peak_rss_mb_of(pid: int) -> float:
    """A process's peak resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def connect(dovecot: Dovecot, user: str) -> imapclient.IMAPClient:
    client = imapclient.IMAPClient("127.0.0.1", port=dovecot.port, ssl=False, timeout=120)
    client.login(user, USERS[user])
    client.select_folder("INBOX")
    return client


def raw_fetch_rate(dovecot: Dovecot, user: str, batch: int) -> tuple[float, int]:
    """Messages per second fetching every message of the mailbox with imapclient alone, in batches."""
    client = connect(dovecot, user)
    uids = sorted(client.search(["ALL"]))
    for start in range(0, len(uids), batch):  # warm-up: index and page cache, as the mailroom will find them
        client.fetch(uids[start : start + batch], ["BODY.PEEK[]"])
    began = time.perf_counter()
    fetched = 0
    for start in range(0, len(uids), batch):
        fetched += len(client.fetch(uids[start : start + batch], ["BODY.PEEK[]"]))
    elapsed = time.perf_counter() - began
    client.logout()
    return fetched / elapsed, fetched


def mailbox_config(dovecot: Dovecot, user: str) -> MailboxConfig:
    return MailboxConfig(name=user, team="CA", host="127.0.0.1", port=dovecot.port, security="plain",
                         username=user, password=USERS[user], poll_seconds=5)


def end_to_end(dovecot: Dovecot, user: str, processor: Processor) -> tuple[float, int]:
    began = time.perf_counter()
    mailbox = ImapMailbox(mailbox_config(dovecot, user))
    mailbox.connect()
    handled = process_imap(mailbox, processor)
    left = len(mailbox.unhandled())
    mailbox.close()
    elapsed = time.perf_counter() - began
    if left:
        raise SystemExit(f"{left} message(s) were left unflagged in {user}")
    return elapsed, handled


def _profiled_functions() -> dict[tuple[str, int, str], str]:
    """cProfile's keys (file, first line, name) of every pipeline stage and of the I/O around them."""
    functions = {f"stage {stage.name}": type(stage).run for stage in STAGES}
    functions.update({
        "parse (MIME, HTML, reply split)": parse_mail,
        "store rows + compose mail": record,
        "dedupe lookup (per batch)": handled_keys,
        "commit (SQLite)": Session.commit,
        "IMAP fetch": ImapMailbox.fetch,
        "IMAP flag": ImapMailbox.mark_triaged,
        "IMAP search": ImapMailbox.unhandled,
    })
    keys = {}
    for label, function in functions.items():
        code = function.__code__  # type: ignore[attr-defined]
        keys[(code.co_filename, code.co_firstlineno, code.co_name)] = label
    return keys


def where_time_goes(profile: cProfile.Profile, total: float) -> list[tuple[str, float]]:
    """Each profiled function's cumulative share of the pass, largest first."""
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    shares = [(label, stats[key][3] / total) for key, label in _profiled_functions().items() if key in stats]
    return sorted(shares, key=lambda item: -item[1])


def idle_to_ack(dovecot: Dovecot, smtp: SmtpServer, settings: Settings, factory: sessionmaker[Session],
                context: TriageContext, rounds: int) -> list[float]:
    """Seconds from a message's delivery into the Maildir of a mailbox the daemon watches with IDLE to its
    acknowledgement's arrival at the SMTP server, for each round."""
    config = MailroomConfig((mailbox_config(dovecot, "idle"),), SmtpConfig("127.0.0.1", smtp.port, "plain"))
    daemon = Daemon(settings, config, factory, context)
    daemon.start()
    delays: list[float] = []
    try:
        for number in range(rounds):
            if not daemon.idling["idle"].wait(timeout=60):  # waiting for a state, not timing anything
                raise SystemExit("the daemon never started IDLE")
            sender = f"idle{number}-{uuid.uuid4().hex[:6]}@example.ca"
            body = ("Bonjour, mon paiement préautorisé a été refusé ce matin. Pouvez-vous vérifier ?" if number % 2
                    else "Hello, my automatic payment was declined this morning. Could you check?")
            raw = make_mail(sender, "Paiement refusé" if number % 2 else "Payment declined", body)
            arrived = len(smtp.recorder.messages)
            began = time.perf_counter()
            dovecot.deliver("idle", raw)
            received = smtp.recorder.wait_for(arrived + 1, timeout=60)
            if not any(sender in recipients for _, recipients, _ in received[arrived:]):
                raise SystemExit(f"round {number}: no acknowledgement within 60 s")
            delays.append(time.perf_counter() - began)
    finally:
        daemon.stop.set()
        daemon.join()
    return delays


def new_store(environment: dict[str, str]) -> tuple[Settings, sessionmaker[Session]]:
    """Settings on a fresh SQLite store in a directory of its own, migrated, with the demo accounts."""
    work = Path(tempfile.mkdtemp(prefix="mailroom-bench-"))
    settings = Settings.from_env({"BILLING_VAR_DIR": str(work), "BILLING_AUTH_SECRET": uuid.uuid4().hex * 2,
                                  **environment})
    upgrade(settings.database_url)
    factory = make_session_factory(make_engine(settings.database_url, batch_writer=True))
    seed(factory, date.today())
    return settings, factory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--profile-messages", type=int, default=1000)
    parser.add_argument("--idle-rounds", type=int, default=6)
    args = parser.parse_args(argv)

    # Every customer mail is acknowledged (composed and queued): the global hourly limit, 500 by default, would
    # otherwise stop acknowledging after the first 500 and flatter the figures.
    settings, factory = new_store({"BILLING_ACK_GLOBAL_HOUR": "1000000"})
    print(f"store: {settings.database_url}", flush=True)
    context = TriageContext.build(settings)  # loads or trains the topic model: not part of the timings
    dovecot = Dovecot.start(USERS)
    smtp = SmtpServer.start()
    try:
        kinds = fill(dovecot, "bench", args.messages)
        fill(dovecot, "warmup", WARMUP_MESSAGES)
        fill(dovecot, "profile", args.profile_messages)
        print(f"filled a Dovecot mailbox with {args.messages} messages: "
              + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())), flush=True)

        raw_rate, fetched = raw_fetch_rate(dovecot, "bench", settings.mail_batch)
        print(f"raw imapclient FETCH (BODY.PEEK[], batches of {settings.mail_batch}): {fetched} messages, "
              f"{raw_rate:.0f} msg/s", flush=True)

        # A running mailroom: its reader processes started on an earlier backlog (the warm-up mailbox).
        processor = Processor(settings, factory, context)
        end_to_end(dovecot, "warmup", processor)
        connect(dovecot, "bench").logout()
        elapsed, handled = end_to_end(dovecot, "bench", processor)
        e2e_rate = handled / elapsed
        own_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        readers_mb = [peak_rss_mb_of(pid) for pid in reader_pids()]
        peak_rss_mb = own_mb + sum(readers_mb)
        processor.close()
        print(f"end to end (fetch -> ticket committed -> flagged, SQLite, {settings.mail_workers} reader "
              f"process(es)): {handled} messages in {elapsed:.1f} s, {e2e_rate:.0f} msg/s; ratio to the raw fetch "
              f"{e2e_rate / raw_rate:.3f}", flush=True)
        print(f"peak memory: {peak_rss_mb:.0f} MB (mailroom process {own_mb:.0f} MB, readers "
              + (" + ".join(f"{mb:.0f}" for mb in readers_mb) or "none") + " MB)", flush=True)

        # Where the time goes: everything in one process, so that the profile sees every stage.
        single = Processor(replace(settings, mail_workers=0), factory, context)
        raw_fetch_rate(dovecot, "profile", settings.mail_batch)  # the same warm-up as the timed pass had
        profile = cProfile.Profile()
        began = time.perf_counter()
        profile.enable()
        _, profiled = end_to_end(dovecot, "profile", single)
        profile.disable()
        total = time.perf_counter() - began
        print(f"where the time goes (cProfile of {profiled} messages in one process, no readers; "
              f"cumulative share of the pass, {total / profiled * 1000:.2f} ms a message under the profiler):")
        for label, share in where_time_goes(profile, total):
            print(f"  {label:<34} {share * 100:5.1f} %")

        # IDLE latency on a mailroom in its steady state: a store of its own, with an empty outbox (the backlog
        # above queued thousands of acknowledgements that would be sent first).
        idle_settings, idle_factory = new_store({})
        delays = idle_to_ack(dovecot, smtp, idle_settings, idle_factory, replace(context, settings=idle_settings),
                             args.idle_rounds)
        print("IDLE to acknowledgement received by SMTP: " + ", ".join(f"{d:.2f}" for d in delays)
              + f" s (median {statistics.median(delays):.2f} s, worst {max(delays):.2f} s)")
    finally:
        smtp.stop()
        dovecot.stop()
    print(f"e2e_msgs_per_s={e2e_rate:.0f} raw_fetch_msgs_per_s={raw_rate:.0f} ratio={e2e_rate / raw_rate:.3f} "
          f"peak_rss_mb={peak_rss_mb:.0f} idle_to_ack_s={statistics.median(delays):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
