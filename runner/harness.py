"""Start the whole stack (``python -m runner``) in a child process, for tests and benchmarks.

The stack runs exactly as ``make run`` runs it, configured through the environment (ports, database, var
directory, model), and is stopped the way a user stops it (SIGINT, as Ctrl-C does).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from core.settings import PROJECT_ROOT, Settings
from runner.processes import LaunchError


def free_port(below: int = 65536) -> int:
    """A TCP port nothing listens on right now (the kernel's choice), lower than ``below``."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port < below:
            return port


@dataclass
class Stack:
    """A running ``python -m runner`` and how to reach it.

    Attributes:
        env: the environment it was started with (``BILLING_*``, ``DATABASE_URL`` and ``REDIS_URL`` settings).
        started_in: seconds from launch until both servers answered.
    """

    env: dict[str, str]
    module: str = "runner"  # what runs it: ``runner`` (make run) or ``runner.cluster`` (make cluster)
    process: subprocess.Popen[bytes] | None = None
    started_in: float = 0.0
    output_path: Path | None = None
    settings: Settings = field(init=False)

    def __post_init__(self) -> None:
        self.settings = Settings.from_env(self.env)

    @property
    def console_url(self) -> str:
        """The agent console (and support site)."""
        return f"http://{self.settings.console_host}:{self.settings.console_port}"

    @property
    def rest_url(self) -> str:
        """The REST channel's webhook."""
        return f"http://{self.settings.rasa_host}:{self.settings.rasa_port}/webhooks/rest/webhook"

    def pid_of(self, service: str) -> int:
        """Process id of one service ("rasa" or "actions")."""
        return int((self.settings.var_dir / "run" / f"{service}.pid").read_text(encoding="utf-8"))

    def start(self, timeout: float = 240.0) -> Stack:
        """Launch and wait until the runner reports both servers ready."""
        self.settings.var_dir.mkdir(parents=True, exist_ok=True)
        self.output_path = self.settings.var_dir / "runner.out"
        began = time.monotonic()
        with self.output_path.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module], cwd=PROJECT_ROOT, env=self.env, stdout=output,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        while time.monotonic() - began < timeout:
            text = self.output_path.read_text(encoding="utf-8", errors="replace")
            if "\nready in " in text:
                self.started_in = time.monotonic() - began
                return self
            if self.process.poll() is not None:
                raise LaunchError(f"the stack exited with status {self.process.returncode}:\n{text}")
            time.sleep(0.2)  # polling the runner's output for its readiness line
        self.stop()
        raise LaunchError(f"the stack was not ready within {timeout:.0f} s")

    def stop(self) -> int | None:
        """Stop it as Ctrl-C would; returns the runner's exit status."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def stack_environment(var_dir: Path, database_url: str | None = None, **overrides: str) -> dict[str, str]:
    """An environment for a stack on free ports with its state under ``var_dir``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BILLING_")}
    env.pop("DATABASE_URL", None)
    env.update(
        BILLING_VAR_DIR=str(var_dir),
        BILLING_RASA_PORT=str(free_port()),
        BILLING_ACTION_PORT=str(free_port()),
        BILLING_CONSOLE_PORT=str(free_port()),
        SQLALCHEMY_SILENCE_UBER_WARNING="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        RASA_TELEMETRY_ENABLED="false",
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    env.update(overrides)
    return env


def send(url: str, sender: str, message: str, metadata: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Post one message to the REST channel and return the bot's replies."""
    body: dict[str, Any] = {"sender": sender, "message": message}
    if metadata is not None:
        body["metadata"] = dict(metadata)
    request = urllib.request.Request(
        url, data=json.dumps(body).encode("utf-8"), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (loopback test server)
        replies: list[dict[str, Any]] = json.loads(response.read())
    return replies
