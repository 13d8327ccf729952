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


from core.errors import ConfigurationError
from core.settings import PROJECT_ROOT, Settings
from runner.processes import LaunchError, Service, ensure_port_free, start, stop, wait_until_ready, write_pid_file
from runner.services import action_server, console_server, mailroom_worker, rasa_server, write_endpoints
from runner.supervise import supervise

def _stop_requested(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def mailroom_where(settings: Settings) -> str:
    """What the mailroom watches, in words."""
    if settings.mailroom_config is not None:
        return f"the mailboxes of {settings.mailroom_config} (log: {settings.var_dir / 'log' / 'mailroom.log'})"
    return (f"drop .eml files into {settings.mail_dir / 'inbox' / 'new'}; acknowledgements appear in "
            f"{settings.mail_dir / 'outbox'}")


def services_for(settings: Settings, endpoints: Path) -> list[Service]:
    """The processes to run, in start order."""
    return [
        action_server(settings, "actions", settings.action_port),
        rasa_server(settings, endpoints, "rasa", settings.rasa_port),
        mailroom_worker("mailroom"),
        console_server(settings, "console", settings.console_port),
    ]


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
    services = services_for(settings, write_endpoints(settings, settings.var_dir))
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), SQLALCHEMY_SILENCE_UBER_WARNING="1",
               RASA_TELEMETRY_ENABLED="false")
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
