"""Live handoff benchmark: 50 conversations handed to agents at once, on the real stack (Rasa, the action server and
the console's chat hub, started as ``make run`` starts them), over HTTP on loopback.

1. The stack starts on a store of its own (SQLite by default; ``--postgresql`` on the machine's PostgreSQL) with
   business hours that are always open; ``--agents`` Canadian agents sign in to the console over HTTP and each
   follows their event stream (``/events``) as their open pages do.
2. ``--conversations`` customers start at once, each as the widget does: a conversation, its event stream
   (``/chat/events``), and a billing request only a person can settle ("je conteste un montant..."), which the bot
   hands to the team's queue; an agent claims it.
3. Once all are with agents (the time that took is printed), each conversation exchanges ``--messages`` messages, the agent and the customer in turn, each after a
   think time (``--customer-think``, ``--agent-think``: seconds, MIN,MAX; 0,0 sends back to back, a stress test).
   Agent → customer: from the agent's POST until the message arrives on the customer's stream. Customer →
   agent: from the customer's POST until the agent's page has it (its stream announced it and the page fetched
   the new lines, as console.js does).
4. A message that never arrives (``--timeout`` seconds) is lost; one that arrives twice, or is stored twice, is
   duplicated.

Usage: .venv/bin/python bench/handoff_bench.py [--postgresql] [--console-workers 1] [--conversations 50] [--messages 6]
The last line, for scripts: ``p95_agent_to_customer_ms=… p95_customer_to_agent_ms=… lost=… duplicated=…``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from core.agents import create_agent  # noqa: E402
from core.db.engine import make_engine, make_session_factory, unit_of_work  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.db.models import ChatMessage, Conversation  # noqa: E402
from core.demo import seed  # noqa: E402
from runner.harness import Stack, stack_environment  # noqa: E402
from tests.conftest import postgres_database  # noqa: E402
from tests.e2e.conftest import ALWAYS_OPEN  # noqa: E402

PASSWORD = "bench password 2026"
REQUESTS = {"fr": "je conteste un montant sur ma facture", "en": "I was charged twice this month, I want a refund"}


def events(response: requests.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) of a server-sent event stream, until it ends (the stack stopping ends it)."""
    kind, data = "message", []
    for raw in lines_of(response):
        if raw is None:
            continue
        if raw == "":
            if data:
                yield kind, json.loads("\n".join(data))
            kind, data = "message", []
        elif raw.startswith("event:"):
            kind = raw[6:].strip()
        elif raw.startswith("data:"):
            data.append(raw[5:].strip())


def lines_of(response: requests.Response) -> Iterator[str]:
    """The lines of a streamed response, until it ends or breaks."""
    try:
        yield from response.iter_lines(decode_unicode=True)
    except requests.RequestException:
        return


class Clock:
    """When each token was sent and when (and how often) it arrived."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: dict[str, float] = {}
        self.arrived: dict[str, float] = {}
        self.seen: Counter[str] = Counter()
        self.done = threading.Condition(self.lock)

    def start(self, token: str) -> None:
        with self.lock:
            self.sent[token] = time.perf_counter()

    def arrive(self, token: str) -> None:
        with self.lock:
            self.seen[token] += 1
            if token not in self.arrived:
                self.arrived[token] = time.perf_counter()
                self.done.notify_all()

    def wait(self, token: str, timeout: float) -> bool:
        with self.lock:
            return self.done.wait_for(lambda: token in self.arrived, timeout=timeout)

    def latencies_ms(self, prefix: str) -> list[float]:
        return [(self.arrived[t] - self.sent[t]) * 1000 for t in self.sent if t.startswith(prefix) and t in self.arrived]


class Agent:
    """An agent signed in over HTTP, following their event stream and fetching a chat's new lines as the page does."""

    def __init__(self, url: str, email: str, clock: Clock) -> None:
        self.url, self.clock = url, clock
        self.http = requests.Session()
        page = self.http.get(f"{url}/login", timeout=30).text
        token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page)
        assert token, "no CSRF token on the sign-in page"
        signed = self.http.post(f"{url}/login", allow_redirects=False, timeout=30,
                                data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)})
        assert signed.status_code == 302, f"{email} could not sign in"
        meta = re.search(r'name="csrf-token" content="([^"]+)"', self.http.get(url, timeout=30).text)
        assert meta
        self.csrf = meta.group(1)
        self.last: dict[int, int] = defaultdict(int)  # ticket -> the last line id the page shows
        self.fetching: dict[int, threading.Lock] = defaultdict(threading.Lock)
        self.tickets: set[int] = set()
        self.stream = self.http.get(f"{url}/events", stream=True, timeout=(10, None))
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        for kind, data in events(self.stream):
            ticket = data.get("ticket")
            # As console.js: a line the page shows already (the agent's own, from their send) is not fetched.
            if kind == "chat.message" and ticket in self.tickets and int(data["message"]) > self.last[ticket]:
                threading.Thread(target=self._more, args=(int(ticket),), daemon=True).start()

    def _more(self, ticket: int) -> None:
        with self.fetching[ticket]:  # as console.js: one fetch at a time per chat, none lost
            self._show(ticket, self.http.get(f"{self.url}/tickets/{ticket}/chat/lines?after={self.last[ticket]}",
                                             timeout=30, headers={"X-Requested-With": "fetch"}).text)

    def _show(self, ticket: int, html: str) -> None:
        for line_id, body in re.findall(r'data-id="(\d+)">(.*?)</article>', html, re.S):
            if int(line_id) <= self.last[ticket]:
                continue  # shown already (as console.js: each line once)
            self.last[ticket] = int(line_id)
            for token in re.findall(r"C-\d+-\d+", body):
                self.clock.arrive(token)

    def act(self, ticket: int, action: str, **fields: str) -> None:
        if action == "say":  # as console.js: the page says which line it shows last, and gets the rest back
            fields["after"] = str(self.last[ticket])
        answer = post(self.http, f"{self.url}/tickets/{ticket}/chat/{action}",
                      data={**fields, "csrf_token": self.csrf}, headers={"X-Requested-With": "fetch"})
        assert answer.status_code == 200, answer.text
        if "lines" in answer.json():
            with self.fetching[ticket]:
                self._show(ticket, answer.json()["lines"])


class Customer:
    """A widget: its conversation, its event stream, its messages."""

    def __init__(self, url: str, language: str, clock: Clock) -> None:
        self.url, self.clock = url, clock
        self.http = requests.Session()
        started = self.http.post(f"{url}/chat/conversations", json={"language": language}, timeout=30).json()
        self.key, self.sender = started["key"], started["conversation"]["id"]
        self.frames: Counter[int] = Counter()
        self.stream = self.http.get(f"{url}/chat/events", params={"key": self.key}, stream=True, timeout=(10, None))
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        for kind, data in events(self.stream):
            if kind == "message":
                self.frames[int(data["id"])] += 1
                for token in re.findall(r"A-\d+-\d+", data["text"]):
                    self.clock.arrive(token)

    def send(self, text: str) -> list[dict[str, Any]]:
        answer = post(self.http, f"{self.url}/chat/messages", headers={"X-Chat-Key": self.key},
                      json={"text": text, "client_id": uuid.uuid4().hex})
        assert answer.status_code == 200, answer.text
        return list(answer.json()["messages"])


def post(http: requests.Session, url: str, **fields: Any) -> requests.Response:
    """A POST as a browser sends it: once more when a kept-alive connection was closed under it (a duplicate
    that this could cause is counted)."""
    try:
        return http.post(url, timeout=120, **fields)
    except requests.ConnectionError:
        return http.post(url, timeout=120, **fields)


def think(span: tuple[float, float]) -> None:
    if span[1] > 0:
        time.sleep(random.uniform(*span))  # the pace of people typing (load shape, not a measurement)


def conversation(number: int, url: str, agents: list[Agent], database: sa.engine.Engine, clock: Clock,
                 args: argparse.Namespace, claimed: threading.Barrier) -> tuple[Customer, int]:
    language = "fr" if number % 2 else "en"
    customer = Customer(url, language, clock)
    customer.send(REQUESTS[language])
    with database.connect() as connection:
        ticket = connection.execute(sa.select(Conversation.ticket_id).where(Conversation.sender_id == customer.sender)
                                    ).scalar_one()
    assert ticket is not None, f"conversation {number} was not handed off"
    agent = agents[number % len(agents)]
    agent.tickets.add(int(ticket))
    agent.act(int(ticket), "claim")
    claimed.wait()  # the 50 conversations are all with agents: the exchanges start together
    for turn in range(args.messages):
        if turn % 2 == 0:
            think(args.agent_think)
            token = f"A-{number}-{turn}"
            clock.start(token)
            agent.act(int(ticket), "say", text=f"{token} voici la réponse de l'agent")
        else:
            think(args.customer_think)
            token = f"C-{number}-{turn}"
            clock.start(token)
            customer.send(f"{token} la réponse du client")
        clock.wait(token, args.timeout)
    return customer, int(ticket)


def span(text: str) -> tuple[float, float]:
    low, high = (float(part) for part in text.split(","))
    return low, high


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgresql", action="store_true", help="the machine's PostgreSQL instead of SQLite")
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--messages", type=int, default=6, help="messages per conversation after the claim")
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--customer-think", type=span, default=(1.0, 3.0))
    parser.add_argument("--agent-think", type=span, default=(0.5, 1.5))
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--console-workers", type=int, default=1, help="console processes (BILLING_CONSOLE_WORKERS)")
    args = parser.parse_args()

    with ExitStack() as cleanup:
        var_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="handoff-bench-")))
        url = cleanup.enter_context(postgres_database()) if args.postgresql else f"sqlite:///{var_dir / 'billing.db'}"
        upgrade(url)
        engine = make_engine(url)
        cleanup.callback(engine.dispose)
        factory = make_session_factory(engine)
        seed(factory, date.today())
        emails = [f"bench-agent-{n}@net2phone.ca" for n in range(args.agents)]
        with unit_of_work(factory) as session:
            for number, email in enumerate(emails):
                create_agent(session, email, f"Agent {number}", "CA", password=PASSWORD)
        hours = var_dir / "business_hours.yml"
        hours.write_text(ALWAYS_OPEN, encoding="utf-8")
        stack = Stack(stack_environment(var_dir, database_url=url, BILLING_BUSINESS_HOURS_FILE=str(hours),
                                        BILLING_MAILROOM_CONFIG="", BILLING_CONSOLE_WORKERS=str(args.console_workers)))
        began = time.monotonic()
        stack.start()
        cleanup.callback(stack.stop)
        print(f"stack ({url.split(':')[0]}) ready in {time.monotonic() - began:.0f} s; "
              f"{stack.settings.console_workers} console process(es) of {stack.settings.console_threads} threads")
        clock = Clock()
        agents = [Agent(stack.console_url, email, clock) for email in emails]
        began = time.monotonic()
        claimed = threading.Barrier(args.conversations, action=lambda: print(
            f"{args.conversations} conversations handed off and claimed in {time.monotonic() - began:.1f} s", flush=True))
        with ThreadPoolExecutor(max_workers=args.conversations) as pool:
            futures = [pool.submit(conversation, n, stack.console_url, agents, engine, clock, args, claimed)
                       for n in range(args.conversations)]
            done = [future.result() for future in futures]
        elapsed = time.monotonic() - began
        time.sleep(1.0)  # (late duplicates, if any, would arrive now)
        with engine.connect() as connection:
            stored = Counter(connection.execute(sa.select(ChatMessage.text).where(
                ChatMessage.sender.in_(("agent", "customer")))).scalars())
    to_customer, to_agent = clock.latencies_ms("A-"), clock.latencies_ms("C-")
    sent = len(clock.sent)
    lost = sent - len(clock.arrived)
    duplicated = sum(count - 1 for count in clock.seen.values() if count > 1) \
        + sum(count - 1 for customer, _ in done for count in customer.frames.values() if count > 1) \
        + sum(count - 1 for text, count in stored.items() if re.match(r"[AC]-\d+-\d+ ", text) and count > 1)
    print(f"{args.conversations} conversations handed off at once, {args.messages} messages each after the claim "
          f"(customer think {args.customer_think[0]:g}-{args.customer_think[1]:g} s, agent think "
          f"{args.agent_think[0]:g}-{args.agent_think[1]:g} s), {args.agents} agents: {sent} messages in {elapsed:.1f} s")
    for name, values in (("agent -> customer's widget", to_customer), ("customer -> agent's console", to_agent)):
        if values:
            print(f"  {name:28} p50 {statistics.median(values):6.0f} ms  p95 {percentile(values, 0.95):6.0f} ms  "
                  f"max {max(values):6.0f} ms  ({len(values)} messages)")
    print(f"  lost {lost}, duplicated {duplicated}")
    print(f"p95_agent_to_customer_ms={percentile(to_customer, 0.95):.0f} "
          f"p95_customer_to_agent_ms={percentile(to_agent, 0.95):.0f} lost={lost} duplicated={duplicated}")
    return 0 if lost == 0 and duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
