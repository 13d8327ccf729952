"""Supervising the services of ``make run`` and ``make cluster``: a service that stops on its own is started
again, as systemd's ``Restart=on-failure`` would; one that keeps stopping needs a person.

Restarts do not wait for each other: while one Rasa server loads its model again (most of a minute), a console
replica or HAProxy that dies is started again at once, as systemd supervises each unit on its own."""

from __future__ import annotations

import time
from pathlib import Path
from typing import NoReturn

from core.settings import PROJECT_ROOT
from runner.processes import LaunchError, Service, is_ready, start, write_pid_file

RESTARTS_ALLOWED = 5  # restarts of one service within RESTART_WINDOW before the runner gives up (a crash loop)
RESTART_WINDOW = 300.0


def supervise(services: list[Service], env: dict[str, str], log_dir: Path, run_dir: Path) -> NoReturn:
    """Restart a service that stops on its own, as systemd's ``Restart=on-failure`` would; raise ``LaunchError``
    when one keeps stopping (``RESTARTS_ALLOWED`` times within ``RESTART_WINDOW`` seconds): that needs a person.
    Each restarted service is watched until it is ready while the others go on being supervised."""
    restarts: dict[str, list[float]] = {service.name: [] for service in services}
    starting: dict[str, float] = {}  # restarted services not ready yet, with their readiness deadlines
    while True:
        time.sleep(0.5)  # supervision loop: notice a child that died or became ready
        now = time.monotonic()
        for service in services:
            assert service.process is not None
            status = service.process.poll()
            if status is None:
                if service.name in starting and is_ready(service):
                    del starting[service.name]
                    print(f"{service.name} is running again", flush=True)
                elif service.name in starting and now > starting[service.name]:
                    del starting[service.name]
                    print(f"{service.name} did not start again: not ready within {service.startup_timeout:.0f} s; "
                          f"see {service.log_path}", flush=True)
                continue
            if starting.pop(service.name, None) is not None:
                print(f"{service.name} did not start again: it exited with status {status} while starting",
                      flush=True)
            recent = [moment for moment in restarts[service.name] if now - moment < RESTART_WINDOW] + [now]
            restarts[service.name] = recent
            if len(recent) > RESTARTS_ALLOWED:
                raise LaunchError(f"{service.name} stopped {len(recent)} times in {RESTART_WINDOW / 60:.0f} minutes "
                                  f"(last exit status {status}); see {service.log_path}")
            print(f"{service.name} stopped unexpectedly (exit status {status}); restarting it "
                  f"(log: {service.log_path})", flush=True)
            start(service, env, PROJECT_ROOT, log_dir)
            write_pid_file(service, run_dir)
            starting[service.name] = now + service.startup_timeout
