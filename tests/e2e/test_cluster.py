"""``make cluster`` on loopback: two Rasa servers, two action servers, two consoles and two mailroom workers behind
a real HAProxy, on PostgreSQL and the machine's Redis (Rasa's lock store), in both languages.

Conversations sent at once through HAProxy are answered in order and in their language; two messages of one
conversation sent to both Rasa servers at the same moment are processed one after the other; a Rasa server
SIGKILLed under load is taken out by HAProxy, the conversations go on with their language and their form, and
no request fails: those in flight on it are answered by the other, none stored twice; a customer on one console replica and an agent on the other hear each
other live, with one sign-in valid on both.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from core.db.engine import make_engine
from core.settings import PROJECT_ROOT
from runner.cluster import BUSY_QUEUE_DEPTH, replica_port
from runner.harness import Stack, free_port, stack_environment
from tests.browsers import screenshot_path
from tests.conftest import TEST_SECRET, postgres_database
from tests.e2e.conftest import ALWAYS_OPEN, Responses
from tests.e2e.test_console_browser import WAIT
from tests.e2e.test_handoff import ConsoleAgent, HubChat, conversation_of

pytestmark = pytest.mark.e2e
LOW_PORTS = 60000  # the replicas listen on the public ports + 100 × their number

# One conversation per language: the FAQ, a request for a person (a form asking for an email address), the
# address, then a message in no language at all, answered in the conversation's.
SCRIPT = {
    "en": [("what cards do you accept?", "utter_faq_payment_methods"),
           ("I want to talk to a person", "utter_offer_email_ticket"),
           ("/affirm", "utter_ask_contact_email"),
           ("{email}", "utter_handoff_recorded"),
           ("Auto Pay", None)],
    "fr": [("quelles cartes acceptez-vous", "utter_faq_payment_methods"),
           ("je veux parler à un agent", "utter_offer_email_ticket"),
           ("/affirm", "utter_ask_contact_email"),
           ("{email}", "utter_handoff_recorded"),
           ("Auto Pay", None)],
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, trained_model: Path) -> Iterator[Stack]:
    """``make cluster`` (``python -m runner.cluster``) on a throwaway PostgreSQL database, with HAProxy installed
    by the project's make target when missing."""
    subprocess.run(["make", "-s", "haproxy"], cwd=PROJECT_ROOT, check=True, timeout=900)
    var_dir = tmp_path_factory.mktemp("cluster")
    hours = var_dir / "business_hours.yml"
    hours.write_text(ALWAYS_OPEN, encoding="utf-8")
    with postgres_database() as url:
        env = stack_environment(
            var_dir, database_url=url, BILLING_MODEL_PATH=str(trained_model), BILLING_AUTH_SECRET=TEST_SECRET,
            BILLING_BUSINESS_HOURS_FILE=str(hours), BILLING_MAIL_WORKERS="0", REDIS_URL="redis://127.0.0.1:6379/5",
            **{f"BILLING_{name}": str(free_port(below=LOW_PORTS))
               for name in ("RASA_PORT", "ACTION_PORT", "CONSOLE_PORT", "HAPROXY_STATS_PORT")},
        )
        running = Stack(env, module="runner.cluster").start(timeout=300)
        yield running
        assert running.stop() == 0, "the cluster did not stop cleanly on Ctrl-C"


@pytest.fixture(scope="module")
def store(cluster: Stack) -> Iterator[sa.engine.Engine]:
    engine = make_engine(cluster.settings.database_url)
    yield engine
    engine.dispose()


def replica_url(cluster: Stack, service: str, number: int) -> str:
    settings = cluster.settings
    port = {"rasa": settings.rasa_port, "console": settings.console_port}[service]
    return f"http://127.0.0.1:{replica_port(port, number)}"


def server_states(cluster: Stack) -> dict[str, str]:
    """HAProxy's view of every server: {"rasa1": "UP", ...}."""
    csv = requests.get(f"http://127.0.0.1:{cluster.settings.haproxy_stats_port}/;csv", timeout=10).text
    rows = [line.split(",") for line in csv.splitlines() if line and not line.startswith("#")]
    return {row[1]: row[17].split()[0] for row in rows if row[1] not in ("FRONTEND", "BACKEND")}


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``seconds``."""
    done = threading.Event()
    for _ in range(int(seconds * 4)):
        if condition():
            return
        done.wait(0.25)  # polling interval, not a timing assumption
    raise AssertionError(f"{what} within {seconds:.0f} s")


def post(url: str, sender: str, text: str) -> requests.Response:
    return requests.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=90)


def user_turns(store: sa.engine.Engine, sender: str) -> list[tuple[str, str]]:
    """The conversation's user messages and actions as stored by the tracker store, in order."""
    with store.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT type_name, action_name, data FROM events WHERE sender_id = :sender ORDER BY id"),
            {"sender": sender}).all()
    turns = []
    for kind, action, data in rows:
        if kind == "user":
            turns.append(("user", str(json.loads(data).get("text"))))
        elif kind == "action":
            turns.append(("action", str(action)))
    return turns


def run_script(url: str, responses: Responses, language: str, sender: str,
               on_reply: Callable[[], None] = lambda: None) -> tuple[list[list[str | None]], list[str]]:
    """One conversation of ``SCRIPT`` as a client should talk to the chat: a message answered "503 busy" is sent
    again after its ``Retry-After``, one that failed otherwise (in flight on a server that died) at once. Returns
    the names of the replies of each turn, and the requests that failed otherwise than busy."""
    names: list[list[str | None]] = []
    failed: list[str] = []
    for text, _ in SCRIPT[language]:
        message = text.format(email=f"{sender}@example.com")
        errors: list[str] = []
        for _attempt in range(40):
            try:
                answer = post(url, sender, message)
            except requests.RequestException as error:
                answer, errors = None, [*errors, repr(error)]
            if answer is not None and answer.status_code == 200:
                break
            if answer is not None and answer.status_code == 503 and answer.headers.get("Retry-After", "").isdigit():
                threading.Event().wait(int(answer.headers["Retry-After"]))  # the client's back-off, as told
                continue
            if answer is not None:
                errors.append(f"{answer.status_code} {answer.text[:200]}")
            failed.append(f"{message!r}: {errors[-1]}")
        else:
            raise AssertionError(f"{sender}: {message!r} was never answered: {errors}")
        names.append([responses.name_of(reply["text"], language) for reply in answer.json() if reply.get("text")])
        on_reply()
    return names, failed


def check_script(language: str, names: list[list[str | None]], sender: str) -> None:
    for (text, expected), got in zip(SCRIPT[language], names):
        assert got and None not in got, f"{sender} ({language}): {text!r} got a reply not in {language}: {got}"
        if expected is not None:
            assert expected in got, f"{sender} ({language}): {text!r} got {got}, not {expected}"


def test_twenty_conversations_at_once_are_answered_in_order_in_their_language(
    cluster: Stack, responses: Responses, store: sa.engine.Engine,
) -> None:
    senders = {f"cluster-{language}-{n}-{uuid.uuid4().hex[:6]}": language for n in range(10) for language in ("en", "fr")}
    url = f"http://127.0.0.1:{cluster.settings.rasa_port}"
    with ThreadPoolExecutor(max_workers=len(senders)) as pool:
        results = dict(zip(senders, pool.map(lambda s: run_script(url, responses, senders[s], s), senders)))
    for sender, (names, failed) in results.items():
        assert not failed, f"{sender}: requests failed with both servers up: {failed}"
        check_script(senders[sender], names, sender)
        sent = [text.format(email=f"{sender}@example.com") for text, _ in SCRIPT[senders[sender]]]
        assert [text for kind, text in user_turns(store, sender) if kind == "user"] == sent


def test_one_conversations_messages_sent_to_both_servers_at_once_are_processed_one_after_the_other(
    cluster: Stack, store: sa.engine.Engine,
) -> None:
    pairs = {f"cluster-lock-{n}-{uuid.uuid4().hex[:6]}": ("what cards do you accept?", "how do I pay my invoice?")
             for n in range(8)}
    first, second = replica_url(cluster, "rasa", 1), replica_url(cluster, "rasa", 2)
    with ThreadPoolExecutor(max_workers=2 * len(pairs)) as pool:
        answers = list(pool.map(lambda job: post(*job), [(url, sender, text) for sender, texts in pairs.items()
                                                         for url, text in zip((first, second), texts)]))
    assert all(answer.status_code == 200 and answer.json() for answer in answers), [a.text for a in answers]
    for sender, texts in pairs.items():
        turns = [turn for turn in user_turns(store, sender)
                 if turn[0] == "user" or turn[1] not in ("action_session_start",)]
        users = [n for n, (kind, _) in enumerate(turns) if kind == "user"]
        assert sorted(turns[n][1] for n in users) == sorted(texts), f"{sender}: {turns}"
        # Each message's turn ends (the assistant listens again) before the next message is read.
        assert turns[users[1] - 1] == ("action", "action_listen"), f"{sender}: the turns interleaved: {turns}"
        assert turns[-1] == ("action", "action_listen"), f"{sender}: {turns}"


def test_a_customer_on_one_console_and_an_agent_on_the_other_hear_each_other_live(
    cluster: Stack, responses: Responses, store: sa.engine.Engine, demo_agents_of: Callable[[Stack], list[dict[str, str]]],
) -> None:
    first = SimpleNamespace(console_url=replica_url(cluster, "console", 1))
    second = SimpleNamespace(console_url=replica_url(cluster, "console", 2))
    [account] = [a for a in demo_agents_of(cluster) if a["team"] == "CA" and a["role"] == "agent"
                 and a["language"] == "fr"][:1]
    agent = ConsoleAgent(first, account)  # type: ignore[arg-type]  (signed in on one replica...)
    agent.url = second.console_url  # ... and working on the other with the same session
    customer = HubChat(first, responses, "fr")  # type: ignore[arg-type]
    assert customer.names("je conteste un montant sur ma facture") == ["utter_needs_person", "utter_agent_coming"]
    _, ticket = conversation_of(store, customer.sender)
    agent_stream = agent.http.get(f"{agent.url}/events", stream=True, timeout=(10, 60))
    customer_stream = requests.get(f"{first.console_url}/chat/events", params={"key": customer.key, "after": "0"},
                                   stream=True, timeout=(10, 60))
    assert agent_stream.status_code == 200 and customer_stream.status_code == 200
    agent.act(ticket.id, "claim")
    agent.act(ticket.id, "say", text="Bonjour, je regarde votre facture de novembre.")
    frames = frames_until(customer_stream, lambda kind, data: kind == "message" and data.get("from") == "agent")
    assert frames[-1][1]["text"] == "Bonjour, je regarde votre facture de novembre."
    assert ("comment", "keep-alive") not in frames, "the agent's message came by the stream's fallback, not live"
    assert customer.say("merci, c'est la facture 2026-1104") == []
    seen = frames_until(agent_stream, lambda kind, data: kind == "chat.message" and data.get("sender") == "customer"
                        and data.get("ticket") == ticket.id)
    assert seen, "the agent's stream on the other replica never heard the customer"
    assert "la facture 2026-1104" in agent.page(ticket.id)
    agent_stream.close()
    customer_stream.close()


def frames_until(stream: requests.Response, wanted: Callable[[str, dict[str, Any]], bool]
                 ) -> list[tuple[str, dict[str, Any]]]:
    """Read server-sent events until one is ``wanted``: every frame seen, as (event, data); a comment line is
    ("comment", its text)."""
    frames: list[tuple[str, dict[str, Any]]] = []
    kind = "message"
    for raw in stream.iter_lines(decode_unicode=True):
        if raw.startswith(":"):
            frames.append(("comment", raw[1:].strip()))  # type: ignore[arg-type]
        elif raw.startswith("event:"):
            kind = raw.split(":", 1)[1].strip()
        elif raw.startswith("data:"):
            data = json.loads(raw.split(":", 1)[1])
            frames.append((kind, data))
            if wanted(kind, data):
                return frames
            kind = "message"
    raise AssertionError(f"the stream ended before the event wanted: {frames}")


def test_a_flood_is_answered_busy_at_once_with_retry_after(cluster: Stack) -> None:
    """Far more requests at once than the servers can take: the ones over HAProxy's queue are answered "503 busy"
    with Retry-After (a JSON body in both languages), every other is answered; nothing fails otherwise."""
    url = f"http://127.0.0.1:{cluster.settings.rasa_port}"
    flood = 3 * BUSY_QUEUE_DEPTH * cluster.settings.rasa_replicas
    with ThreadPoolExecutor(max_workers=flood) as pool:
        answers = list(pool.map(lambda n: post(url, f"cluster-flood-{n}-{uuid.uuid4().hex[:6]}", "bonjour"),
                                range(flood)))
    busy = [a for a in answers if a.status_code == 503]
    assert busy, "nothing was answered busy"
    assert all(a.headers.get("Retry-After", "").isdigit() and a.json()["error"] == "busy" for a in busy)
    assert "réessayer" in busy[0].json()["message"] and "retry" in busy[0].json()["message"]
    assert all(a.status_code == 200 and a.json() for a in answers if a.status_code != 503)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_widget_says_the_assistant_is_busy_and_retries(
    cluster: Stack, open_page: Callable[[], Page], store: sa.engine.Engine, lang: str,
) -> None:
    """Both Rasa servers frozen (SIGSTOP) and taken out by HAProxy: it answers busy, the widget says so in the customer's language and
    sends the message again after Retry-After; the servers back (SIGCONT), the answer comes, the message kept once."""
    page = open_page()
    page.goto(f"{cluster.console_url}/support?lang={lang}")
    page.click("button.bw-launcher")
    expect(page.locator(".bw-root[data-ready='1']")).to_be_attached(timeout=WAIT)
    question = {"fr": "quelles cartes acceptez-vous?", "en": "which credit cards do you accept?"}[lang]
    frozen = [cluster.pid_of(f"rasa{n}") for n in range(1, cluster.settings.rasa_replicas + 1)]
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(lambda: "UP" not in {state for name, state in server_states(cluster).items() if name.startswith("rasa")},
                 10, "HAProxy did not take the frozen servers out")
        page.fill("#bw-box", question)
        page.keyboard.press("Enter")
        busy = {"fr": "Beaucoup de clients écrivent en ce moment", "en": "Many customers are writing right now"}[lang]
        expect(page.locator(".bw-alert")).to_contain_text(busy, timeout=WAIT)
        page.screenshot(path=str(screenshot_path(f"widget-busy-{lang}")))
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    expect(page.locator(".bw-msg[data-from='bot'] .bw-text", has_text="Visa").last).to_be_visible(timeout=60_000)
    expect(page.locator(".bw-alert")).to_have_text("")
    expect(page.locator(".bw-msg[data-from='customer'] .bw-text", has_text=question)).to_have_count(1)
    with store.connect() as connection:
        stored = connection.execute(sa.text("SELECT count(*) FROM chat_messages WHERE text = :text"),
                                    {"text": question}).scalar()
    assert stored == 1


def test_a_rasa_server_killed_under_load_is_taken_out_and_conversations_go_on(
    cluster: Stack, responses: Responses, store: sa.engine.Engine,
) -> None:
    senders = {f"cluster-kill-{language}-{n}-{uuid.uuid4().hex[:6]}": language
               for n in range(10) for language in ("en", "fr")}
    url = f"http://127.0.0.1:{cluster.settings.rasa_port}"
    answered, lock = [0], threading.Lock()
    mid_load = threading.Event()

    def counted() -> None:
        with lock:
            answered[0] += 1
            if answered[0] == len(senders) * 2:
                mid_load.set()

    def kill_when_loaded() -> int:
        assert mid_load.wait(300), "the load never reached the middle"
        pid = cluster.pid_of("rasa1")
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: server_states(cluster).get("rasa1") != "UP", 10, "HAProxy did not take rasa1 out")
        return pid

    with ThreadPoolExecutor(max_workers=len(senders) + 1) as pool:
        killed = pool.submit(kill_when_loaded)
        results = dict(zip(senders, pool.map(lambda s: run_script(url, responses, senders[s], s, counted), senders)))
        killed.result()
    failed = [failure for _, failures in results.values() for failure in failures]
    # Those in flight on the killed server went to the other (HAProxy's retry), whether or not it had stored them.
    assert failed == [], f"requests failed when a Rasa server died: {failed}"
    for sender, (names, _) in results.items():
        check_script(senders[sender], names, sender)  # the language and the form carried over
        sent = [text.format(email=f"{sender}@example.com") for text, _ in SCRIPT[senders[sender]]]
        assert [text for kind, text in user_turns(store, sender) if kind == "user"] == sent, f"{sender}: stored twice"
    # The runner starts the killed server again and HAProxy puts it back.
    wait_for(lambda: server_states(cluster).get("rasa1") == "UP", 180, "rasa1 was not back")
