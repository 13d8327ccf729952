"""Cluster benchmark: ``make cluster`` on this machine (HAProxy, 2 Rasa servers, 2 action servers, 2 consoles, on
PostgreSQL and Redis), loaded over HTTP on loopback as customers' chats would load it.

1. **Saturation**: ``--conversations`` conversations, each sending its next message as soon as the last is
   answered (English and French FAQ questions, greetings, thanks), for ``--seconds``, through HAProxy with one Rasa
   server (the others disabled on HAProxy's admin socket) and then with all (``--rasa-replicas``, 2): messages/s
   and p95.
2. **Paced**: the same conversations each sending a message every ``--interval`` seconds (``--conversations`` /
   ``--interval`` messages/s offered, 100 by default), with both servers: p95 at that load.
3. **Failover**: paced load again; one Rasa server SIGKILLed midway, then one console replica, then one action
   server: how long until HAProxy took each out, and how many requests failed (``lost``; a "503 busy" answer is
   retried after its Retry-After, as the widget does, and is not lost).
4. **Mailroom**: ``bench/mailroom_workers.py`` (1 and 2 workers on Dovecot, and the mailbox takeover after the
   owner's SIGKILL), run as it is, its figures repeated here.

Usage: .venv/bin/python bench/cluster_bench.py [--conversations 50] [--seconds 20] [--interval 0.5] [--skip-mail]
       [--rasa-replicas 2] [--paced-only]
The last line, for scripts: ``chat_1_msgs_per_s=… chat_2_msgs_per_s=… ratio=… p95_ms=… lost=… takeover_s=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import requests  # noqa: E402

from bench.chat_profile import sampled, summarise_stacks  # noqa: E402
from runner.harness import Stack, free_port, stack_environment  # noqa: E402
from tests.conftest import TEST_SECRET, postgres_database  # noqa: E402
from tests.e2e.conftest import ALWAYS_OPEN  # noqa: E402

MESSAGES = {
    "en": ["hi", "what cards do you accept?", "when is my invoice issued?", "how do I set up auto pay?",
           "where do I find my call detail records?", "thanks", "how do I add a billing contact?",
           "what happens if my payment is declined?"],
    "fr": ["bonjour", "quelles cartes acceptez-vous?", "quand ma facture est-elle émise?",
           "comment activer le paiement automatique?", "où trouver mes relevés d'appels?", "merci",
           "comment ajouter un contact de facturation?", "que se passe-t-il si mon paiement est refusé?"],
}


@dataclass
class Load:
    """What one load run saw."""

    latencies: list[float] = field(default_factory=list)  # seconds, answered requests
    busy: int = 0  # "503 busy" answers (retried after Retry-After)
    failed: list[str] = field(default_factory=list)  # other failures
    began: float = 0.0
    ended: float = 0.0

    @property
    def per_second(self) -> float:
        return len(self.latencies) / max(self.ended - self.began, 1e-9)

    def p(self, percent: int) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * percent / 100))] * 1000 if ordered else float("nan")


async def converse(http: aiohttp.ClientSession, url: str, sender: str, language: str, until: float, load: Load,
                   interval: float) -> None:
    """One conversation: its messages in turn until ``until``; ``interval`` > 0: one message every ``interval``
    seconds (from a random start), else back to back."""
    turn = 0
    next_at = time.monotonic() + (interval * (hash(sender) % 1000) / 1000 if interval else 0)
    while time.monotonic() < until:
        if interval:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
        text = MESSAGES[language][turn % len(MESSAGES[language])]
        turn += 1
        began = time.monotonic()
        while True:
            try:
                async with http.post(url, json={"sender": sender, "message": text}) as answer:
                    body = await answer.read()
                    status, retry_after = answer.status, answer.headers.get("Retry-After", "")
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                load.failed.append(f"{sender}: {type(error).__name__}")
                break
            if status == 200 and body.startswith(b"["):
                load.latencies.append(time.monotonic() - began)
                break
            if status == 503 and retry_after.isdigit():
                load.busy += 1
                await asyncio.sleep(int(retry_after))
                continue
            load.failed.append(f"{sender}: HTTP {status}")
            break


async def run_load(url: str, conversations: int, seconds: float, interval: float, tag: str,
                   during: Callable[[], None] | None = None) -> Load:
    """``conversations`` conversations for ``seconds``; ``during`` runs in a thread at half time."""
    load = Load()
    timeout = aiohttp.ClientTimeout(total=90)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as http:
        load.began = time.monotonic()
        until = load.began + seconds
        tasks = [converse(http, url, f"bench-{tag}-{n}-{uuid.uuid4().hex[:6]}", ("en", "fr")[n % 2], until, load,
                          interval) for n in range(conversations)]
        if during is not None:
            async def midway() -> None:
                await asyncio.sleep(seconds / 2)
                await asyncio.get_running_loop().run_in_executor(None, during)
            tasks.append(midway())
        await asyncio.gather(*tasks)
        load.ended = time.monotonic()
    return load


TICKS = os.sysconf("SC_CLK_TCK")


def service_of(pid: int) -> str | None:
    """Which part of the cluster a process is, from its command line (None: not the cluster's)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    words = [word.decode(errors="replace") for word in argv if word]
    line = " ".join(words)
    if pid == os.getpid():
        return "load generator"
    if not words:
        return None
    try:
        program = Path(f"/proc/{pid}/comm").read_text().strip()  # "postgres" for a backend, whatever its title
    except OSError:
        return None
    if program in ("postgres", "redis-server", "haproxy"):
        return program
    if "run actions" in line:
        return "action servers"
    if "rasa run" in line:
        return "Rasa servers"
    for module in ("console", "mailroom"):
        if f"-m {module}" in line:
            return module
    return None


def cpu_by_service() -> dict[str, float]:
    """CPU seconds (user + system, all threads) spent so far by each part of the cluster, and by the machine."""
    seconds: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        name = service_of(int(entry.name))
        if name is None:
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[name] = seconds.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    busy = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    seconds["machine"] = (sum(int(value) for value in busy) - int(busy[3]) - int(busy[4])) / TICKS  # less idle, iowait
    return seconds


def cpu_per_message(before: dict[str, float], after: dict[str, float], messages: int) -> str:
    """``name 1.2 ms`` for each part, per answered message, the machine's total last."""
    spent = {name: (after.get(name, 0.0) - before.get(name, 0.0)) * 1000 / max(messages, 1) for name in after}
    parts = sorted((name for name in spent if name != "machine"), key=lambda name: -spent[name])
    return ", ".join(f"{name} {spent[name]:.2f} ms" for name in parts + ["machine"])


def admin(stack: Stack, command: str) -> str:
    """One command on HAProxy's admin socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(str(stack.settings.var_dir / "cluster" / "haproxy.sock"))
        connection.sendall(command.encode() + b"\n")
        return connection.recv(65536).decode()


def states(stack: Stack) -> dict[str, str]:
    csv = requests.get(f"http://127.0.0.1:{stack.settings.haproxy_stats_port}/;csv", timeout=10).text
    rows = [line.split(",") for line in csv.splitlines() if line and not line.startswith("#")]
    return {row[1]: row[17].split()[0] for row in rows if row[1] not in ("FRONTEND", "BACKEND")}


def kill_and_time(stack: Stack, name: str) -> float:
    """SIGKILL the replica ``name``; seconds until HAProxy no longer shows it UP."""
    os.kill(stack.pid_of(name), signal.SIGKILL)
    began = time.monotonic()
    while states(stack).get(name) == "UP":
        if time.monotonic() - began > 60:
            return float("inf")
        time.sleep(0.05)  # polling HAProxy's view
    return time.monotonic() - began


def wait_up(stack: Stack, names: list[str], limit: float = 240) -> None:
    began = time.monotonic()
    while not all(states(stack).get(name) == "UP" for name in names):
        if time.monotonic() - began > limit:
            raise SystemExit(f"{names} not back UP within {limit:.0f} s")
        time.sleep(0.5)  # polling HAProxy's view


def console_load(stack: Stack, seconds: float, during: Callable[[], None]) -> tuple[int, int]:
    """Requests to the console's support page through HAProxy, back to back from 4 threads for ``seconds``, with
    ``during`` at half time: (answered, failed)."""
    from concurrent.futures import ThreadPoolExecutor

    until = time.monotonic() + seconds
    counts = [0, 0]

    def hammer() -> None:
        with requests.Session() as http:
            while time.monotonic() < until:
                try:
                    ok = http.get(f"{stack.console_url}/support?lang=fr", timeout=30).status_code == 200
                except requests.RequestException:
                    ok = False
                counts[0 if ok else 1] += 1

    with ThreadPoolExecutor(max_workers=5) as pool:
        workers = [pool.submit(hammer) for _ in range(4)]
        time.sleep(seconds / 2)  # the load runs meanwhile
        during()
        for worker in workers:
            worker.result()
    return counts[0], counts[1]


def mailroom_figures(skip: bool) -> dict[str, str]:
    """The last line of ``bench/mailroom_workers.py``, as a dict."""
    if skip:
        return {}
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "mailroom_workers.py")], cwd=ROOT,
                            capture_output=True, text=True, timeout=900)
    print(result.stdout.rstrip(), flush=True)
    if result.returncode != 0:
        print(result.stderr[-3000:], file=sys.stderr)
        raise SystemExit("bench/mailroom_workers.py failed")
    last = result.stdout.strip().splitlines()[-1]
    return dict(item.split("=", 1) for item in last.split())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--rasa-replicas", type=int, default=2, help="Rasa servers of the cluster (2)")
    parser.add_argument("--skip-mail", action="store_true", help="leave out bench/mailroom_workers.py")
    parser.add_argument("--paced-only", action="store_true",
                        help="only the paced run and its CPU per message (for trying a change quickly)")
    parser.add_argument("--py-spy", metavar="PATH",
                        help="with --paced-only: sample the first Rasa server with this py-spy (not a dependency: "
                             "pip install --target /tmp/pyspy py-spy) and list where its CPU went")
    args = parser.parse_args()
    model = ROOT / "models" / "billing.tar.gz"
    if not model.exists():
        raise SystemExit("no trained model: run `make train` first")
    subprocess.run(["make", "-s", "haproxy"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as scratch, postgres_database() as url:
        var_dir = Path(scratch)
        hours = var_dir / "business_hours.yml"
        hours.write_text(ALWAYS_OPEN, encoding="utf-8")
        env = stack_environment(
            var_dir, database_url=url, BILLING_MODEL_PATH=str(model), BILLING_AUTH_SECRET=TEST_SECRET,
            BILLING_BUSINESS_HOURS_FILE=str(hours), BILLING_MAIL_WORKERS="0", BILLING_MAILROOM_REPLICAS="1",
            BILLING_RASA_REPLICAS=str(args.rasa_replicas),
            REDIS_URL="redis://127.0.0.1:6379/6",
            **{f"BILLING_{name}": str(free_port(below=60000))
               for name in ("RASA_PORT", "ACTION_PORT", "CONSOLE_PORT", "HAPROXY_STATS_PORT")},
        )
        with Stack(env, module="runner.cluster") as stack:
            print(f"cluster ready in {stack.started_in:.1f} s ({args.rasa_replicas} Rasa, 2 action servers, "
                  "2 consoles, HAProxy)",
                  flush=True)
            url = stack.rest_url
            run = asyncio.run
            warm = run(run_load(url, 10, 5, 0, "warm"))  # first requests of each process load lazily
            print(f"warm-up: {len(warm.latencies)} messages", flush=True)
            if args.paced_only:
                out = Path(tempfile.mkdtemp(prefix="cluster-profile-"))
                with sampled(args.py_spy, {"rasa1": stack.pid_of("rasa1")}, out) as stacks:
                    cpu_before = cpu_by_service()
                    paced = run(run_load(url, args.conversations, args.seconds, args.interval, "paced"))
                    cpu_after = cpu_by_service()
                print(f"a message every {args.interval} s: {args.conversations} conversations, "
                      f"{paced.per_second:.1f} msg/s, p50 {paced.p(50):.0f} ms, p95 {paced.p(95):.0f} ms, "
                      f"busy {paced.busy}, failed {len(paced.failed)}", flush=True)
                print(f"CPU per message: {cpu_per_message(cpu_before, cpu_after, len(paced.latencies))}")
                if stacks:
                    rasa_ms = (cpu_after["Rasa servers"] - cpu_before["Rasa servers"]) * 1000 / len(paced.latencies)
                    print("Rasa server 1 (both servers' CPU per message, shared as its samples are):")
                    print("\n".join(summarise_stacks(stacks["rasa1"], rasa_ms, 40)))
                print(f"p95_ms={paced.p(95):.0f} paced_msgs_per_s={paced.per_second:.1f}")
                return 0
            others = [f"rasa{n}" for n in range(2, args.rasa_replicas + 1)]
            for name in others:
                admin(stack, f"disable server rasa/{name}")
            one = run(run_load(url, args.conversations, args.seconds, 0, "one"))
            for name in others:
                admin(stack, f"enable server rasa/{name}")
            wait_up(stack, others)
            two = run(run_load(url, args.conversations, args.seconds, 0, "two"))
            cpu_before = cpu_by_service()
            paced = run(run_load(url, args.conversations, args.seconds, args.interval, "paced"))
            cpu_paced = cpu_per_message(cpu_before, cpu_by_service(), len(paced.latencies))
            for name, load in (("1 Rasa server, back to back", one),
                               (f"{args.rasa_replicas} Rasa servers, back to back", two),
                               (f"{args.rasa_replicas} Rasa servers, a message every {args.interval} s", paced)):
                print(f"{name}: {args.conversations} conversations, {load.per_second:.1f} msg/s, "
                      f"p50 {load.p(50):.0f} ms, p95 {load.p(95):.0f} ms, busy {load.busy}, failed {len(load.failed)}",
                      flush=True)
            print(f"CPU per message, paced run: {cpu_paced}", flush=True)
            took: dict[str, float] = {}
            failover = run(run_load(url, args.conversations, args.seconds, args.interval, "failover",
                                    during=lambda: took.__setitem__("rasa", kill_and_time(stack, "rasa1"))))
            print(f"Rasa server killed under paced load: out of HAProxy in {took['rasa']:.2f} s; answered "
                  f"{len(failover.latencies)}, busy {failover.busy}, failed {len(failover.failed)} "
                  f"{failover.failed[:5]}, slowest {max(failover.latencies) * 1000:.0f} ms", flush=True)
            answered, console_failed = console_load(
                stack, 10, lambda: took.__setitem__("console", kill_and_time(stack, "console1")))
            print(f"console replica killed under load: out of HAProxy in {took['console']:.2f} s; "
                  f"pages answered {answered}, failed {console_failed}", flush=True)
            actions = run(run_load(url, 20, 10, 0.5, "actions",
                                   during=lambda: took.__setitem__("actions", kill_and_time(stack, "actions1"))))
            print(f"action server killed under load: out of HAProxy in {took['actions']:.2f} s; "
                  f"answered {len(actions.latencies)}, failed {len(actions.failed)}", flush=True)
            lost = len(failover.failed) + console_failed + len(actions.failed)
    mail = mailroom_figures(args.skip_mail)
    ratio = two.per_second / one.per_second if one.per_second else float("nan")
    print(
        f"chat_1_msgs_per_s={one.per_second:.1f} chat_2_msgs_per_s={two.per_second:.1f} ratio={ratio:.2f} "
        f"p95_ms={paced.p(95):.0f} p95_saturated_ms={two.p(95):.0f} paced_msgs_per_s={paced.per_second:.1f} "
        f"lost={lost} rasa_out_s={took['rasa']:.2f} console_out_s={took['console']:.2f} "
        f"actions_out_s={took['actions']:.2f} mail_1_msgs_per_s={mail.get('mail_1_msgs_per_s', 'nan')} "
        f"mail_2_msgs_per_s={mail.get('mail_2_msgs_per_s', 'nan')} takeover_s={mail.get('takeover_s', 'nan')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
