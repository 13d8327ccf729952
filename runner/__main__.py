"""``make run``: start the action server and the Rasa server, print where they listen, stop both on Ctrl-C.

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

import yaml

from core.errors import ConfigurationError
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
    path = settings.var_dir / "endpoints.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(endpoints, sort_keys=False), encoding="utf-8")
    return path


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
    ]


def main() -> int:
    try:
        settings = Settings.from_env()
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
            f"try:  curl -s {rest} -d '{{\"sender\":\"me\",\"message\":\"quelles cartes acceptez-vous\"}}'\n"
            f"Ctrl-C stops everything.",
            flush=True,
        )
        while (dead := first_exited(services)) is None:
            time.sleep(0.5)  # supervision loop: notice a child that died
        assert dead.process is not None
        raise LaunchError(f"{dead.name} stopped unexpectedly (exit status {dead.process.returncode}); see {dead.log_path}")
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
