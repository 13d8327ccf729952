"""Supervising the services of ``make run`` and ``make cluster``: a service that stops on its own is started
again, as systemd's ``Restart=on-failure`` would; one that keeps stopping needs a person."""

from __future__ import annotations

import time
from pathlib import Path
from typing import NoReturn

from core.settings import PROJECT_ROOT
from runner.processes import LaunchError, Service, first_exited, start, wait_until_ready, write_pid_file

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


