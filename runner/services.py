"""The commands of the project's services, shared by ``make run`` (one of each) and ``make cluster`` (replicas
on ports of their own)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from core.files import write_atomic
from core.settings import PROJECT_ROOT, Settings
from runner.processes import Service


def write_endpoints(settings: Settings, directory: Path, lock_store: dict[str, Any] | None = None) -> Path:
    """The Rasa servers' ``endpoints.yml`` (the project's, with the configured action server URL and, when given,
    another lock store), written into ``directory``."""
    endpoints = yaml.safe_load((PROJECT_ROOT / "endpoints.yml").read_text(encoding="utf-8"))
    endpoints["action_endpoint"] = {**endpoints.get("action_endpoint", {}), "url": settings.action_endpoint}
    if lock_store is not None:
        endpoints["lock_store"] = lock_store
    return write_atomic(directory / "endpoints.yml", yaml.safe_dump(endpoints, sort_keys=False))


def _rasa() -> str:
    return str(Path(sys.executable).with_name("rasa"))


def action_server(settings: Settings, name: str, port: int) -> Service:
    """Rasa's action server running ``bot.actions`` on ``port``."""
    return Service(name=name, command=[_rasa(), "run", "actions", "--actions", "bot.actions", "--port", str(port)],
                   health_url=f"http://{settings.action_host}:{port}/health", host=settings.action_host, port=port)


def rasa_server(settings: Settings, endpoints: Path, name: str, port: int) -> Service:
    """The Rasa server with the trained model, its REST and socket.io channels on ``port``."""
    return Service(
        name=name,
        command=[_rasa(), "run", "--model", str(settings.model_path), "--endpoints", str(endpoints),
                 "--credentials", str(PROJECT_ROOT / "credentials.yml"), "--interface", settings.rasa_host,
                 "--port", str(port), "--cors", "*"],
        health_url=f"http://{settings.rasa_host}:{port}/", host=settings.rasa_host, port=port,
        env={"SANIC_ACCESS_LOG": "false"},  # a line per request formatted for nobody (HAProxy can log requests)
    )


def mailroom_worker(name: str) -> Service:
    """The mailroom's daemon (it says "mailroom watching" when ready, standing by or working a mailbox)."""
    return Service(name=name, command=[sys.executable, "-m", "mailroom", "daemon"], health_url=None,
                   ready_line="mailroom watching")


def console_server(settings: Settings, name: str, port: int, trusted_proxies: int | None = None) -> Service:
    """The agent console and the support site's chat (gunicorn) on ``port``; ``trusted_proxies``: how many
    proxies in front add X-Forwarded-For (HAProxy in a cluster)."""
    env = {"BILLING_CONSOLE_PORT": str(port)}
    if trusted_proxies is not None:
        env["BILLING_TRUSTED_PROXIES"] = str(trusted_proxies)
    return Service(name=name, command=[sys.executable, "-m", "console", "serve"],
                   health_url=f"http://{settings.console_host}:{port}/healthz", host=settings.console_host,
                   port=port, env=env)
