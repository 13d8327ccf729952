"""Agent console benchmark: pages served over HTTP by the real server on a store of 100,000 tickets, and the time
from a mail's arrival in Dovecot to its ticket on an open queue page.

1. A store (SQLite, then PostgreSQL) is filled with ``--tickets`` tickets (80 % solved or closed, 20 % new, open or
   waiting; both teams, every queue, priority and language), each with the customer's mail and our
   acknowledgement, a third of them linked to a demo account.
2. ``python -m console serve`` (gunicorn, as ``make run`` starts it) serves it; a Canadian agent and a supervisor
   sign in over HTTP. Timed, over keep-alive HTTP on loopback: the queue page (default worklist, then a filtered
   and a searched one) and ticket pages picked at random, ``--requests`` of each; p50 and p95.
3. Arrival to screen: Dovecot (IMAP IDLE), the mailroom daemon and the console on one SQLite store; a headless
   Chromium shows the queue page; a mail is written into the Maildir as the MTA would, and the clock runs until its
   ticket's row is on the page (pushed by the server: no reload). ``--arrivals`` rounds, median and worst.

Usage: .venv/bin/python bench/console_bench.py [--tickets 100000] [--requests 300] [--arrivals 5]
The last line, for scripts: ``queue_p95_ms=… ticket_p95_ms=… arrival_to_screen_s=…`` (the worst of the stores for
the pages, the queue page default and filtered; the median for the arrival). The searched page is printed apart.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
import yaml  # noqa: E402

from core.agents import create_agent  # noqa: E402
from core.db.engine import make_engine, make_session_factory, unit_of_work  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.db.models import Account, Ticket, TicketMessage, priority_rank  # noqa: E402
from core.demo import seed  # noqa: E402
from core.knowledge import QUEUES  # noqa: E402
from runner.harness import free_port  # noqa: E402
from tests.browsers import LAUNCH_ARGS, ensure_chromium  # noqa: E402
from tests.conftest import postgres_database  # noqa: E402
from tests.mailroom.helpers import make_mail  # noqa: E402
from tests.mailroom.servers import Dovecot, SmtpServer  # noqa: E402

PASSWORD = "bench password 2026"
SUBJECTS = {"en": ["Card declined", "Copy of my invoice", "Call records for May", "Credit missing", "Bill To change",
                   "Add a portal user", "Letter of good standing"],
            "fr": ["Carte refusée", "Copie de facture", "Relevé des appels de mai", "Crédit manquant",
                   "Changer le Bill To", "Ajouter un utilisateur", "Lettre de bon crédit"]}


def fill(url: str, count: int) -> None:
    """``count`` tickets with two messages each, in batches."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    seed(factory, datetime.now(timezone.utc).date())
    with factory() as session:
        accounts = list(session.execute(sa.select(Account.id)).scalars())
    rng = random.Random(7)
    now = datetime.now(timezone.utc)
    batch = 5000
    for start in range(0, count, batch):
        tickets, messages = [], []
        for number in range(start, min(start + batch, count)):
            language = rng.choice(("en", "fr"))
            priority = rng.choices(("urgent", "high", "normal"), (1, 3, 16))[0]
            status = rng.choices(("new", "open", "waiting", "solved", "closed"), (6, 8, 6, 30, 50))[0]
            created = now - timedelta(minutes=rng.randint(1, 60 * 24 * 365))
            tickets.append({
                "reference": f"BL-{number:06d}", "channel": "email", "team": rng.choices(("CA", "US"), (7, 3))[0],
                "mailbox": "ca", "queue": rng.choice(QUEUES), "priority": priority,
                "priority_rank": priority_rank(priority), "language": language, "status": status,
                "subject": f"{rng.choice(SUBJECTS[language])} #{number}",
                "customer_email": f"customer{number % 20000}@example{number % 97}.ca",
                "customer_name": f"Customer {number}", "account_id": rng.choice(accounts) if number % 3 == 0 else None,
                "misroute": "unsure" if number % 97 == 0 else "none", "misroute_confidence": 0.0,
                "misroute_reasons": [], "created_at": created, "updated_at": created,
            })
        with unit_of_work(factory) as session:
            session.execute(sa.insert(Ticket), tickets)
            ids = dict(session.execute(sa.select(Ticket.reference, Ticket.id)
                                       .where(Ticket.reference.in_([t["reference"] for t in tickets]))).all())
            for ticket in tickets:
                ticket_id = ids[ticket["reference"]]
                messages.append({"ticket_id": ticket_id, "direction": "in", "kind": "mail",
                                 "message_id": f"<{uuid.uuid4().hex}@example.ca>", "from_address": ticket["customer_email"],
                                 "to_addresses": "billing@net2phone.ca", "subject": ticket["subject"],
                                 "text": "Bonjour, " * 40, "quoted": "", "language": ticket["language"], "size": 2000,
                                 "attachments_dropped": False, "created_at": ticket["created_at"]})
                messages.append({"ticket_id": ticket_id, "direction": "out", "kind": "ack",
                                 "message_id": f"<ack-{uuid.uuid4().hex}@net2phone.ca>", "from_address": "billing@net2phone.ca",
                                 "to_addresses": ticket["customer_email"], "subject": "", "text": "Merci " * 60,
                                 "quoted": "", "language": ticket["language"], "size": 0, "attachments_dropped": False,
                                 "created_at": ticket["created_at"]})
            session.execute(sa.insert(TicketMessage), messages)
    # A store in its steady state: statistics gathered (and on PostgreSQL, the visibility map that index-only
    # scans need, which autovacuum keeps in a live database).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM ANALYZE" if url.startswith("postgresql") else "ANALYZE"))
    engine.dispose()


class Browserless:
    """An agent's HTTP session on one keep-alive connection: cookie and CSRF token carried along."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookie = ""

    def request(self, method: str, path: str, body: dict[str, str] | None = None) -> tuple[int, str, float]:
        headers = {"Cookie": self.cookie} if self.cookie else {}
        data = urlencode(body).encode() if body else None
        if data:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        began = time.perf_counter()
        self.connection.request(method, path, body=data, headers=headers)
        response = self.connection.getresponse()
        text = response.read().decode()
        elapsed = (time.perf_counter() - began) * 1000
        for name, value in response.getheaders():
            if name.lower() == "set-cookie" and value.startswith("billing_console="):
                self.cookie = value.split(";")[0]
        return response.status, text, elapsed

    def sign_in(self, email: str) -> None:
        _, page, _ = self.request("GET", "/login")
        token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        status, _, _ = self.request("POST", "/login", {"email": email, "password": PASSWORD, "csrf_token": token})
        assert status == 302, status


def start_console(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-m", "console", "serve"], cwd=ROOT, env=env, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    port = int(env["BILLING_CONSOLE_PORT"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)  # polling a server that is starting
    raise RuntimeError(f"the console did not start: {log.read_text()[-2000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def time_pages(url: str, var_dir: Path, requests: int) -> dict[str, float]:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with unit_of_work(factory) as session:
        for email, team, role in (("bench-ca@net2phone.ca", "CA", "agent"), ("bench-sup@net2phone.ca", "CA,US", "supervisor")):
            if session.execute(sa.text("SELECT 1 FROM agents WHERE email = :e"), {"e": email}).first() is None:
                create_agent(session, email, f"Bench {role}", team, role, password=PASSWORD)
    with factory() as session:
        ticket_ids = list(session.execute(sa.select(Ticket.id).where(Ticket.team == "CA")).scalars())
    engine.dispose()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLING_")}
    env.update(BILLING_VAR_DIR=str(var_dir), DATABASE_URL=url, BILLING_CONSOLE_PORT=str(port),
               BILLING_AUTH_SECRET="bench-signing-secret-that-is-long-enough-0123")
    console = start_console(env, var_dir / "console.log")
    try:
        rng = random.Random(3)
        figures: dict[str, list[float]] = {"queue": [], "queue_filtered": [], "queue_search": [], "ticket": []}
        for email in ("bench-ca@net2phone.ca", "bench-sup@net2phone.ca"):
            agent = Browserless(port)
            agent.sign_in(email)
            for path in ("/", f"/tickets/{ticket_ids[0]}"):  # warm-up: first connections, caches, templates
                agent.request("GET", path)
            for _ in range(requests // 2):
                for name, path in (("queue", "/"), ("queue_filtered", "/?queue=payments&language=fr&status=open"),
                                   ("queue_search", "/?q=customer12&status=all"),
                                   ("ticket", f"/tickets/{rng.choice(ticket_ids)}")):
                    status, _, elapsed = agent.request("GET", path)
                    assert status == 200, (path, status)
                    figures[name].append(elapsed)
    finally:
        stop(console)
    return {f"{name}_{stat}": round(statistics.median(values) if stat == "p50" else percentile(values, 0.95), 1)
            for name, values in figures.items() for stat in ("p50", "p95")}


def arrival_to_screen(work: Path, rounds: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    dovecot = Dovecot.start({"bench-ca": "bench-ca-pw"})
    smtp = SmtpServer.start()
    url = f"sqlite:///{work / 'arrival.db'}"
    var_dir = work / "arrival-var"
    var_dir.mkdir()
    upgrade(url)
    engine = make_engine(url)
    with unit_of_work(make_session_factory(engine)) as session:
        create_agent(session, "arrival@net2phone.ca", "Arrival Bench", "CA", password=PASSWORD)
    engine.dispose()
    (var_dir / "mailroom.yml").write_text(yaml.safe_dump({
        "mailboxes": [{"name": "bench-ca", "team": "CA", "host": "127.0.0.1", "port": dovecot.port,
                       "security": "starttls", "username": "bench-ca", "password_env": "BENCH_PW",
                       "ca_file": str(dovecot.ca_file)}],
        "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "plain"}}))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLING_")}
    env.update(BILLING_VAR_DIR=str(var_dir), DATABASE_URL=url, BILLING_CONSOLE_PORT=str(port), BENCH_PW="bench-ca-pw",
               BILLING_MAILROOM_CONFIG=str(var_dir / "mailroom.yml"),
               BILLING_AUTH_SECRET="bench-signing-secret-that-is-long-enough-0123")
    timings = []
    with ExitStack() as stack:
        stack.callback(dovecot.stop)
        stack.callback(smtp.stop)
        mailroom = subprocess.Popen([sys.executable, "-m", "mailroom", "daemon"], cwd=ROOT, env=env,
                                    stdout=(var_dir / "mailroom.log").open("wb"), stderr=subprocess.STDOUT,
                                    start_new_session=True)
        stack.callback(stop, mailroom)
        console = start_console(env, var_dir / "console.log")
        stack.callback(stop, console)
        while "watching INBOX" not in (var_dir / "mailroom.log").read_text():
            time.sleep(0.2)  # the mailroom trains its model on a first start
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=ensure_chromium(), headless=True, args=LAUNCH_ARGS)
        stack.callback(browser.close)
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/login")
        page.fill("#email", "arrival@net2phone.ca")
        page.fill("#password", PASSWORD)
        page.click("form.stack button[type=submit]")
        page.wait_for_selector("main")
        for number in range(rounds):
            subject = f"Arrival {number} {uuid.uuid4().hex[:6]}"
            time.sleep(2.0)  # let the mailroom settle back into IDLE between rounds (not a measurement)
            began = time.monotonic()
            dovecot.deliver("bench-ca", make_mail(f"arrival{number}@example.ca", subject, "Ma carte est refusée."))
            page.wait_for_selector(f"tr:has-text('{subject}')", timeout=30_000)
            timings.append(time.monotonic() - began)
            print(f"  arrival {number + 1}: {timings[-1]:.2f} s", flush=True)
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--arrivals", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="console-bench-") as folder:
        work = Path(folder)
        with ExitStack() as stack:
            for store in ("sqlite", "postgresql"):
                url = f"sqlite:///{work / 'billing.db'}" if store == "sqlite" else stack.enter_context(postgres_database())
                upgrade(url)
                began = time.monotonic()
                fill(url, args.tickets)
                print(f"{store}: {args.tickets} tickets stored in {time.monotonic() - began:.0f} s", flush=True)
                var_dir = work / f"var-{store}"
                var_dir.mkdir()
                results[store] = time_pages(url, var_dir, args.requests)
                print(f"{store}: " + json.dumps(results[store]), flush=True)
        timings = arrival_to_screen(work, args.arrivals)
    queue_p95 = max(results[s][f"{n}_p95"] for s in results for n in ("queue", "queue_filtered"))
    ticket_p95 = max(results[s]["ticket_p95"] for s in results)
    search_p95 = max(results[s]["queue_search_p95"] for s in results)
    print(f"search (a substring of sender or subject over every ticket): p95 {search_p95} ms")
    print(f"arrival to screen: median {statistics.median(timings):.2f} s, worst {max(timings):.2f} s")
    print(f"queue_p95_ms={queue_p95} ticket_p95_ms={ticket_p95} arrival_to_screen_s={statistics.median(timings):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
