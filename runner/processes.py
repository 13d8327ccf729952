"""Child processes of ``make run``: start them, wait until each answers, stop them all together.

Each service runs in its own process group with its output in ``var/log/<name>.log``, so that Ctrl-C reaches
the supervisor alone and the supervisor stops the children in order.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import socket
import sys
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.files import write_atomic


class LaunchError(Exception):
    """Raised when a service cannot start; the message says what to do."""


@dataclass
class Service:
    """One long-running child process.

    Attributes:
        name: short name, also the log file's name.
        command: the argv to run.
        health_url: a URL that answers 200 once the service is ready (None: see ``ready_line``).
        host / port: where it listens (None for a service that listens nowhere).
        ready_line: for a service without a URL, the log line that says it is ready.
        startup_timeout: seconds to wait for readiness.
        env: variables of its own, over the environment it is started with.
    """

    name: str
    command: Sequence[str]
    health_url: str | None
    host: str | None = None
    port: int | None = None
    ready_line: str | None = None
    startup_timeout: float = 180.0
    env: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_path: Path | None = None
    log_offset: int = 0  # where this start's output begins in the log (it is appended to across restarts)


def ensure_port_free(host: str, port: int, setting: str) -> None:
    """Raise ``LaunchError`` if something already listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise LaunchError(
                f"port {port} on {host} is already in use ({error.strerror}). Stop whatever uses it "
                f"(another `make run`?) or choose another port: {setting}=<port> make run"
            ) from error


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback URL we built)
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _tail(path: Path | None, lines: int = 25) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _output_since_start(service: Service) -> str:
    if service.log_path is None or not service.log_path.exists():
        return ""
    with service.log_path.open("rb") as log:
        log.seek(service.log_offset)
        return log.read().decode("utf-8", errors="replace")


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM us if the supervisor dies (no orphaned servers)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def start(service: Service, env: Mapping[str, str], cwd: Path, log_dir: Path) -> None:
    """Start ``service`` in its own process group, output to ``log_dir/<name>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    service.log_path = log_dir / f"{service.name}.log"
    log = service.log_path.open("ab")
    service.log_offset = log.tell()
    try:
        service.process = subprocess.Popen(
            list(service.command), cwd=cwd, env={**env, **service.env}, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent,
        )
    finally:
        log.close()


def write_pid_file(service: Service, directory: Path) -> Path:
    """Record the service's process id in ``directory/<name>.pid`` (for tools that measure it)."""
    assert service.process is not None, "start() the service first"
    return write_atomic(directory / f"{service.name}.pid", f"{service.process.pid}\n")


def is_ready(service: Service) -> bool:
    """Whether the started ``service`` says it is ready: its health URL answers, or its ready line was written."""
    if service.health_url is not None and _answers(service.health_url):
        return True
    return service.ready_line is not None and service.ready_line in _output_since_start(service)


def wait_until_ready(service: Service, clock: Callable[[], float] = time.monotonic) -> None:
    """Poll the service's health URL until it answers; raise ``LaunchError`` if it dies or times out."""
    assert service.process is not None, "start() the service first"
    deadline = clock() + service.startup_timeout
    while clock() < deadline:
        if service.process.poll() is not None:
            raise LaunchError(
                f"{service.name} exited with status {service.process.returncode} while starting. "
                f"Last lines of {service.log_path}:\n{_tail(service.log_path)}"
            )
        if is_ready(service):
            return
        time.sleep(0.25)  # polling interval of a readiness probe, not a timing assumption
    raise LaunchError(
        f"{service.name} was not ready ({service.health_url or service.ready_line}) within "
        f"{service.startup_timeout:.0f} s. "
        f"Last lines of {service.log_path}:\n{_tail(service.log_path)}"
    )


def stop(services: Sequence[Service], grace: float = 10.0) -> None:
    """Stop services in reverse order: SIGTERM to each process group, SIGKILL after ``grace`` seconds.

    A second Ctrl-C while stopping is ignored, so that no child is left running.
    """
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    for service in reversed(services):
        process = service.process
        if process is None or process.poll() is not None:
            continue
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass
