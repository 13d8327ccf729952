"""Where the CPU of one chat message goes: one real Rasa server and one real action server on a scratch PostgreSQL
database, loaded through the REST channel, with the CPU each process spent per message.

1. A new PostgreSQL database on the machine's server (dropped at the end), migrated and seeded with the demo
   accounts; the servers are started with the same commands as in ``make run`` (``runner/``), the tracker
   store ``bot.tracker_store.WindowedSQLTrackerStore`` on that database and, by default, Rasa's Redis lock store
   (``--lock-store memory`` for the in-memory one), on free ports and a scratch ``BILLING_VAR_DIR``.
2. A few conversations warm both servers up (nothing measured), then ``--conversations`` conversations send
   ``--messages`` messages in all, each conversation back to back (the next message as soon as the reply came):
   a greeting, an FAQ question (held-out phrasings of ``bench/data/heldout.yml``), "yes" to "was this helpful?"
   (a custom action), another FAQ question, an out-of-scope question, an account request from a verified portal
   user (a custom action reading the billing store), thanks; English and French conversations alternate.
3. Printed: the CPU time (``utime + stime`` of ``/proc/<pid>/stat``) of each server process during the load,
   per message; throughput; latency percentiles; errors. With ``--py-spy PATH`` (py-spy is not a dependency:
   ``pip install --target /tmp/pyspy py-spy``) both servers are sampled during the load and the functions that
   took their CPU are listed, with their share in ms per message; the raw stacks stay in ``--out``.

Usage: .venv/bin/python bench/chat_profile.py [--messages 1000] [--conversations 50] [--lock-store redis|memory]
       [--py-spy /tmp/pyspy/bin/py-spy] [--out DIR]
The last line, for scripts: ``rasa_cpu_ms_per_msg=… action_cpu_ms_per_msg=… msgs_per_s=… p50_ms=… p95_ms=… …``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import yaml  # noqa: E402

from core.db.engine import make_engine, make_session_factory  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.demo import seed  # noqa: E402
from core.identity import TOKEN_METADATA_KEY, mint_token  # noqa: E402
from runner.harness import free_port  # noqa: E402
from tests.conftest import postgres_database  # noqa: E402

SECRET = "chat-profile-bench-secret-0123456789abcdef"
TICKS = os.sysconf("SC_CLK_TCK")
# Demo portal users (core/demo.py): an English and a French Office Manager.
USERS = {"en": ("priya.shah@mapleleafdental.ca", "CA-100487"),
         "fr": ("marie.tremblay@boulangerietremblay.ca", "CA-100231")}
GREETINGS = {"en": ["hi", "hello", "good morning", "hey there"], "fr": ["bonjour", "allo", "salut", "bonjour!"]}
YES = {"en": ["yes", "yes thanks", "it did, yes"], "fr": ["oui", "oui merci", "oui, ça m'a aidé"]}
ACCOUNT = {"en": ["what's my balance", "show me my last invoice", "how much do I owe?"],
           "fr": ["c'est combien que je dois?", "montre-moi ma dernière facture", "quel est mon solde"]}
THANKS = {"en": ["thanks", "thank you!", "great, thanks"], "fr": ["merci", "merci beaucoup", "parfait merci"]}
# Which messages of a conversation run a custom action on the action server (the others are rules and responses).
CUSTOM_ACTION_KINDS = {"yes", "account"}


@dataclass
class Turn:
    """One message of a conversation."""

    kind: str
    text: str
    metadata: dict[str, Any] | None = None


def conversations(language_order: Iterator[str], seed_value: int = 0) -> Iterator[list[Turn]]:
    """Endless conversations (see the module docstring), English and French in turn."""
    heldout = yaml.safe_load((ROOT / "bench" / "data" / "heldout.yml").read_text(encoding="utf-8"))
    faq = {lang: [q for topic in heldout["faq"].values() for q in topic[lang]] for lang in ("en", "fr")}
    oos = {lang: list(heldout["out_of_scope"][lang]) for lang in ("en", "fr")}
    rng = random.Random(seed_value)
    tokens = {lang: mint_token(SECRET, email, number, timedelta(hours=6)) for lang, (email, number) in USERS.items()}
    for language in language_order:
        yield [
            Turn("greet", rng.choice(GREETINGS[language])),
            Turn("faq", rng.choice(faq[language])),
            Turn("yes", rng.choice(YES[language])),
            Turn("faq", rng.choice(faq[language])),
            Turn("out_of_scope", rng.choice(oos[language])),
            Turn("account", rng.choice(ACCOUNT[language]), {TOKEN_METADATA_KEY: tokens[language]}),
            Turn("thanks", rng.choice(THANKS[language])),
        ]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads), from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime and stime: fields 14 and 15 of proc(5)


@dataclass
class Server:
    """A server process started by this script."""

    name: str
    command: list[str]
    health_url: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str]) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, timeout: float = 240.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise SystemExit(f"{self.name} exited with status {self.process.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(self.health_url, timeout=2):  # noqa: S310 (loopback URL we built)
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.25)  # polling a readiness probe
        raise SystemExit(f"{self.name} was not ready within {timeout:.0f} s (log: {self.log_path})")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


@contextmanager
def servers(var_dir: Path, database_url: str, lock_store: str) -> Iterator[tuple[Server, Server, str]]:
    """One action server and one Rasa server, as ``make run`` starts them, on ``database_url``."""
    action_port, rasa_port = free_port(), free_port()
    endpoints: dict[str, Any] = {
        "action_endpoint": {"url": f"http://127.0.0.1:{action_port}/webhook"},
        "tracker_store": {"type": "bot.tracker_store.WindowedSQLTrackerStore"},
        "lock_store": {"type": "in_memory"},
    }
    if lock_store == "redis":  # a key prefix of its own, so that it never meets another stack's locks
        endpoints["lock_store"] = {"type": "redis", "url": "127.0.0.1", "port": 6379, "db": 1,
                                   "key_prefix": f"chatprofile{uuid.uuid4().hex[:8]}"}
    endpoints_path = var_dir / "endpoints.yml"
    endpoints_path.write_text(yaml.safe_dump(endpoints, sort_keys=False), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("BILLING_")}
    env.update(
        BILLING_VAR_DIR=str(var_dir), DATABASE_URL=database_url, BILLING_AUTH_SECRET=SECRET,
        BILLING_RASA_PORT=str(rasa_port), BILLING_ACTION_PORT=str(action_port),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        SQLALCHEMY_SILENCE_UBER_WARNING="1", TF_CPP_MIN_LOG_LEVEL="2",
    )
    rasa = str(Path(sys.executable).with_name("rasa"))
    model = ROOT / "models" / "billing.tar.gz"
    if not model.exists():
        raise SystemExit(f"no trained model at {model}: run `make train`")
    action = Server("actions", [rasa, "run", "actions", "--actions", "bot.actions", "--port", str(action_port)],
                    f"http://127.0.0.1:{action_port}/health", var_dir / "actions.log")
    server = Server("rasa", [rasa, "run", "--model", str(model), "--endpoints", str(endpoints_path), "--credentials",
                             str(ROOT / "credentials.yml"), "--interface", "127.0.0.1", "--port", str(rasa_port),
                             "--cors", "*"],
                    f"http://127.0.0.1:{rasa_port}/", var_dir / "rasa.log")
    try:
        for each in (action, server):
            each.start(env)
            each.wait_ready()
        yield server, action, f"http://127.0.0.1:{rasa_port}/webhooks/rest/webhook"
    finally:
        server.stop()
        action.stop()


@dataclass
class Load:
    """What the load generator saw."""

    latencies_ms: list[float] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    empty_replies: int = 0
    seconds: float = 0.0


async def run_load(url: str, scripts: Iterator[list[Turn]], messages: int, concurrency: int) -> Load:
    """Send ``messages`` messages from ``concurrency`` conversations at once, each back to back."""
    load = Load()
    budget = itertools.count()
    timeout = aiohttp.ClientTimeout(total=120)

    async def converse(http: aiohttp.ClientSession) -> None:
        for script in scripts:
            sender = f"profile-{uuid.uuid4().hex[:12]}"
            for turn in script:
                if next(budget) >= messages:
                    return
                body: dict[str, Any] = {"sender": sender, "message": turn.text}
                if turn.metadata:
                    body["metadata"] = turn.metadata
                began = time.perf_counter()
                try:
                    async with http.post(url, json=body) as response:
                        replies = await response.json(content_type=None)
                        status = response.status
                except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                    load.errors[type(error).__name__] += 1
                    continue
                load.latencies_ms.append((time.perf_counter() - began) * 1000)
                load.kinds[turn.kind] += 1
                if status != 200:
                    load.errors[f"HTTP {status}"] += 1
                elif not replies:
                    load.empty_replies += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        began = time.perf_counter()
        await asyncio.gather(*(converse(http) for _ in range(concurrency)))
        load.seconds = time.perf_counter() - began
    return load


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))] if ordered else 0.0


@contextmanager
def sampled(py_spy: str | None, pids: dict[str, int], out: Path) -> Iterator[dict[str, Path]]:
    """py-spy recording each process during the block (nothing when ``py_spy`` is None)."""
    recorders: list[subprocess.Popen[bytes]] = []
    outputs: dict[str, Path] = {}
    if py_spy:
        for name, pid in pids.items():
            outputs[name] = out / f"{name}.stacks.txt"
            recorders.append(subprocess.Popen(
                [py_spy, "record", "--pid", str(pid), "--rate", "250", "--nonblocking", "--gil", "--format", "raw",
                 "--output", str(outputs[name])], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)  # py-spy attaches
    try:
        yield outputs
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)
        for recorder in recorders:
            recorder.wait(timeout=60)


def _frame_key(frame: str) -> str:
    """``function (path/to/file.py:123)`` → ``function (package/file.py)``: lines of one function merged."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", str(ROOT) + "/", "lib/python3.10/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def summarise_stacks(path: Path, cpu_ms_per_message: float, top: int) -> list[str]:
    """The functions holding the most samples (inclusive, and own time), as ms per message."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_key(frame) for frame in stack.split(";")]
        # py-spy puts the thread first: drop it; count each function once per stack.
        frames = [f for f in frames if not f.startswith("thread (") and not f.startswith("process ")]
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        if frames:
            own[frames[-1]] += count
    if not total:
        return ["  (no samples)"]
    scale = cpu_ms_per_message / total
    lines = [f"  {total} samples; inclusive (ms per message, share):"]
    shown = 0
    for frame, count in inclusive.most_common():
        if count / total > 0.97:
            continue  # the event loop and server frames every sample goes through
        lines.append(f"    {count * scale:6.2f} ms  {100 * count / total:5.1f} %  {frame}")
        shown += 1
        if shown >= top:
            break
    lines.append("  own time (ms per message, share):")
    for frame, count in own.most_common(top):
        lines.append(f"    {count * scale:6.2f} ms  {100 * count / total:5.1f} %  {frame}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000, help="messages measured, in all")
    parser.add_argument("--conversations", type=int, default=50, help="conversations at once")
    parser.add_argument("--warmup", type=int, default=6, help="conversations before the measure")
    parser.add_argument("--lock-store", choices=("redis", "memory"), default="redis")
    parser.add_argument("--py-spy", help="path of a py-spy executable: sample both servers during the load")
    parser.add_argument("--top", type=int, default=30, help="functions listed per server with --py-spy")
    parser.add_argument("--out", type=Path, help="where logs and py-spy stacks are kept (default: a temporary dir)")
    args = parser.parse_args()

    with ExitStack() as cleanup:
        work = args.out or Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="chat-profile-")))
        work.mkdir(parents=True, exist_ok=True)
        database_url = cleanup.enter_context(postgres_database())
        upgrade(database_url)
        engine = make_engine(database_url)
        seed(make_session_factory(engine), date.today())
        engine.dispose()
        began = time.monotonic()
        rasa, action, url = cleanup.enter_context(servers(work, database_url, args.lock_store))
        print(f"servers ready in {time.monotonic() - began:.1f} s (PostgreSQL, {args.lock_store} lock store; "
              f"logs in {work})", flush=True)

        scripts = conversations(itertools.cycle(["en", "fr"]))
        warm = asyncio.run(run_load(url, scripts, args.warmup * 7, 2))
        if warm.errors or len(warm.latencies_ms) < args.warmup * 7:
            raise SystemExit(f"the warm-up failed: {dict(warm.errors)} (logs in {work})")

        pids = {"rasa": rasa.pid, "actions": action.pid}
        with sampled(args.py_spy, pids, work) as stacks:
            cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            load_avg_before = os.getloadavg()[0]
            client_before = time.process_time()
            load = asyncio.run(run_load(url, scripts, args.messages, args.conversations))
            client_cpu = time.process_time() - client_before
            cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
            load_avg = os.getloadavg()[0]
        answered = len(load.latencies_ms)
        custom = sum(load.kinds[kind] for kind in CUSTOM_ACTION_KINDS)
        rasa_ms = 1000 * cpu["rasa"] / max(answered, 1)
        action_ms = 1000 * cpu["actions"] / max(answered, 1)
        action_per_custom_ms = 1000 * cpu["actions"] / max(custom, 1)
        rate = answered / load.seconds if load.seconds else 0.0
        p50, p95, p99 = (percentile(load.latencies_ms, q) for q in (0.5, 0.95, 0.99))
        errors = sum(load.errors.values())
        print(f"{answered} messages from {args.conversations} conversations at once in {load.seconds:.1f} s "
              f"({', '.join(f'{kind} {n}' for kind, n in sorted(load.kinds.items()))})")
        print(f"  Rasa server     CPU {rasa_ms:6.2f} ms per message")
        print(f"  action server   CPU {action_ms:6.2f} ms per message, {action_per_custom_ms:.2f} ms per message that "
              f"ran a custom action ({custom})")
        print(f"  load generator  CPU {1000 * client_cpu / max(answered, 1):6.2f} ms per message (same machine); "
              f"load average {load_avg_before:.2f} before, {load_avg:.2f} after")
        print(f"  throughput {rate:.1f} messages/s; latency p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms, "
              f"max {max(load.latencies_ms, default=0):.0f} ms")
        print(f"  errors {errors} {dict(load.errors) if errors else ''}, empty replies {load.empty_replies}")
        for name, path in stacks.items():
            if path.exists():
                per_message = rasa_ms if name == "rasa" else action_ms
                print(f"py-spy, {name} server ({path}):")
                print("\n".join(summarise_stacks(path, per_message, args.top)))
        print(f"rasa_cpu_ms_per_msg={rasa_ms:.2f} action_cpu_ms_per_msg={action_ms:.2f} "
              f"action_cpu_ms_per_custom_msg={action_per_custom_ms:.2f} msgs_per_s={rate:.1f} p50_ms={p50:.0f} "
              f"p95_ms={p95:.0f} errors={errors}")

    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
