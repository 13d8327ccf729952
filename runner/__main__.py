"""``make run``: start the action server, the Rasa server, the mailroom and the agent console, print where they
listen, restart one that dies, stop them all on Ctrl-C.

Configuration comes from the environment (``core.settings``): ``DATABASE_URL``, ``BILLING_RASA_PORT``,
``BILLING_ACTION_PORT``... Logs go to ``var/log/``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import NoReturn

import yaml

from core.errors import ConfigurationError
from core.files import write_atomic
from core.settings import PROJECT_ROOT, Settings
from runner.processes import (
    LaunchError,
    Service,
    ensure_port_free,
    first_exited,
    start,
    stop,
    wait_until_ready,
    write_pid_file,
)

def _stop_requested(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def write_endpoints(settings: Settings) -> Path:
    """``endpoints.yml`` with the configured action server URL, written under ``var/``."""
    endpoints = yaml.safe_load((PROJECT_ROOT / "endpoints.yml").read_text(encoding="utf-8"))
    endpoints["action_endpoint"] = {"url": settings.action_endpoint}
    return write_atomic(settings.var_dir / "endpoints.yml", yaml.safe_dump(endpoints, sort_keys=False))


def mailroom_where(settings: Settings) -> str:
    """What the mailroom watches, in words."""
    if settings.mailroom_config is not None:
        return f"the mailboxes of {settings.mailroom_config} (log: {settings.var_dir / 'log' / 'mailroom.log'})"
    return (f"drop .eml files into {settings.mail_dir / 'inbox' / 'new'}; acknowledgements appear in "
            f"{settings.mail_dir / 'outbox'}")


def services_for(settings: Settings, endpoints: Path) -> list[Service]:
    """The processes to run, in start order."""
    rasa = str(Path(sys.executable).with_name("rasa"))
    return [
        Service(
            name="actions",
            command=[rasa, "run", "actions", "--actions", "bot.actions", "--port", str(settings.action_port)],
            health_url=f"http://{settings.action_host}:{settings.action_port}/health",
            host=settings.action_host,
            port=settings.action_port,
        ),
        Service(
            name="rasa",
            command=[
                rasa, "run", "--model", str(settings.model_path), "--endpoints", str(endpoints),
                "--credentials", str(PROJECT_ROOT / "credentials.yml"), "--interface", settings.rasa_host,
                "--port", str(settings.rasa_port), "--cors", "*",
            ],
            health_url=f"http://{settings.rasa_host}:{settings.rasa_port}/",
            host=settings.rasa_host,
            port=settings.rasa_port,
        ),
        Service(
            name="mailroom",
            command=[sys.executable, "-m", "mailroom", "daemon"],
            health_url=None,
            ready_line="mailroom watching",
        ),
        Service(
            name="console",
            command=[sys.executable, "-m", "console", "serve"],
            health_url=f"http://{settings.console_host}:{settings.console_port}/healthz",
            host=settings.console_host,
            port=settings.console_port,
        ),
    ]


RESTARTS_ALLOWED = 5  # restarts of one service within RESTART_WINDOW before the runner gives up (a crash loop)
RESTART_WINDOW = 300.0


def supervise(services: list[Service], env: dict[str, str], log_dir: Path, run_dir: Path) -> NoReturn:
    """Restart a service that stops on its own, as systemd's ``Restart=on-failure`` would; raise ``LaunchError``
    when one keeps stopping (``RESTARTS_ALLOWED`` times within ``RESTART_WINDOW`` seconds): that needs a person."""
    restarts: dict[str, list[float]] = {service.name: [] for service in services}
    while True:
        time.sleep(0.5)  # supervision loop: notice a child that died
        dead = first_exited(services)
        if dead is None:
            continue
        assert dead.process is not None
        now = time.monotonic()
        recent = [moment for moment in restarts[dead.name] if now - moment < RESTART_WINDOW] + [now]
        restarts[dead.name] = recent
        status = dead.process.returncode
        if len(recent) > RESTARTS_ALLOWED:
            raise LaunchError(f"{dead.name} stopped {len(recent)} times in {RESTART_WINDOW / 60:.0f} minutes "
                              f"(last exit status {status}); see {dead.log_path}")
        print(f"{dead.name} stopped unexpectedly (exit status {status}); restarting it (log: {dead.log_path})",
              flush=True)
        start(dead, env, PROJECT_ROOT, log_dir)
        write_pid_file(dead, run_dir)
        try:
            wait_until_ready(dead)
        except LaunchError as error:  # it died again while starting: the next turn counts it, and may give up
            print(f"{dead.name} did not start again: {str(error).splitlines()[0]}", flush=True)
            continue
        print(f"{dead.name} is running again", flush=True)


def main() -> int:
    try:
        settings = Settings.from_env()
        settings.signing_secret()  # created on the first start; an unusable one is refused here, with what to do
    except ConfigurationError as error:
        print(f"make run: {error}", file=sys.stderr)
        return 2
    if not settings.model_path.exists():
        print(f"make run: no trained model at {settings.model_path}; run `make train`.", file=sys.stderr)
        return 2
    services = services_for(settings, write_endpoints(settings))
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), SQLALCHEMY_SILENCE_UBER_WARNING="1")
    # Ctrl-C and `kill` both stop everything cleanly, even if a parent shell started us with SIGINT ignored.
    signal.signal(signal.SIGTERM, _stop_requested)
    signal.signal(signal.SIGINT, _stop_requested)
    log_dir = settings.var_dir / "log"
    try:
        ensure_port_free(settings.action_host, settings.action_port, "BILLING_ACTION_PORT")
        ensure_port_free(settings.rasa_host, settings.rasa_port, "BILLING_RASA_PORT")
        ensure_port_free(settings.console_host, settings.console_port, "BILLING_CONSOLE_PORT")
        began = time.monotonic()
        for service in services:
            print(f"starting {service.name} (log: {log_dir / service.name}.log)...", flush=True)
            start(service, env, PROJECT_ROOT, log_dir)
            write_pid_file(service, settings.var_dir / "run")
            wait_until_ready(service)
        rest = f"http://{settings.rasa_host}:{settings.rasa_port}/webhooks/rest/webhook"
        print(
            f"\nready in {time.monotonic() - began:.0f} s\n"
            f"  Rasa server     http://{settings.rasa_host}:{settings.rasa_port}  (REST {rest}, socket.io /socket.io)\n"
            f"  action server   http://{settings.action_host}:{settings.action_port}/webhook\n"
            f"  database        {settings.database_url}\n"
            f"  mailroom        {mailroom_where(settings)}\n"
            f"  agent console   http://{settings.console_host}:{settings.console_port}/  "
            f"(sign-ins of the demo agents: make -s demo-agents)\n"
            f"  support page    http://{settings.console_host}:{settings.console_port}/support  "
            f"(the chat widget; ?lang=fr in French)\n"
            f"try:  curl -s {rest} -d '{{\"sender\":\"me\",\"message\":\"quelles cartes acceptez-vous\"}}'\n"
            f"Ctrl-C stops everything.",
            flush=True,
        )
        supervise(services, env, log_dir, settings.var_dir / "run")
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
        stop(services)
        print("stopped.", flush=True)
        return 0
    except LaunchError as error:
        stop(services)
        print(f"make run: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
