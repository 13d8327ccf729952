"""One settings object for every process of the project.

Defaults live in code; the environment overrides them. Every variable has the ``BILLING_`` prefix except
``DATABASE_URL``, the conventional name that hosting platforms set. Nothing secret has a default here.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ConfigurationError
from core.files import create_atomic, write_atomic

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PREFIX = "BILLING_"
SECRET_FILE = "auth_secret"
CONSOLE_SECRET_FILE = "console_secret"
logger = logging.getLogger(__name__)


def _default_var_dir() -> Path:
    return PROJECT_ROOT / "var"


def _boolean(value: str) -> bool:
    if value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if value.strip().lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _generated_secret(path: Path, setting: str) -> str:
    """A secret kept in ``path``, generated on first use (see ``Settings.signing_secret``)."""
    fix = (f"set {setting} (32+ characters), or delete the file to generate a new secret "
           "(what was signed with the old one stops being valid)")
    create_atomic(path, secrets.token_urlsafe(48), mode=0o600)
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"{path}: the secret cannot be read ({error}); {fix}") from error
    if not secret:
        logger.warning("%s is empty (an interrupted first start): generating a new secret", path)
        write_atomic(path, secrets.token_urlsafe(48), mode=0o600)
        secret = path.read_text(encoding="utf-8").strip()
    if len(secret) < 32:
        raise ConfigurationError(f"{path}: the secret is shorter than 32 characters; {fix}")
    return secret


@dataclass(frozen=True)
class Settings:
    """Run-time configuration shared by the Rasa server, the action server and the tools.

    Attributes:
        var_dir: where run-time state lives (the SQLite database, logs, generated secrets).
        database_url: SQLAlchemy URL of the one shared store (tracker store, handoff requests, feedback...).
        rasa_host / rasa_port: where the Rasa server listens (REST and socket.io channels).
        action_host / action_port: where the action server listens.
        tracker_window: how many of a conversation's most recent events the Rasa server loads per message.
        knowledge_dir: the folder of FAQ articles.
        model_path: the trained Rasa model the server loads.
        auth_secret: the key that signs the Billing Portal's identity tokens (``BILLING_AUTH_SECRET``; when unset, a
            development secret generated on first use and kept in ``var/auth_secret``).
        token_ttl_minutes: how long a minted identity token stays valid.
        portal_url: the Billing Portal's address, for links to invoice PDFs and CDR exports.
        mailroom_config: a YAML file naming the IMAP mailboxes and the SMTP server (``mailroom/config.py``);
            without one the mailroom watches the local Maildir ``var/mail/inbox`` and writes to ``var/mail/outbox``.
        ca_address / us_address: the two teams' billing inboxes.
        mail_size_limit_mb: above this size a mail becomes a ticket without its attachments.
        ack_per_sender_hour / ack_per_sender_day / ack_global_hour: acknowledgement rate limits, so that two
            auto-responders can never loop.
        bounce_suppression_days: how long an address that hard-bounced gets no acknowledgement.
        mail_batch: how many messages the mailroom fetches, stores in one transaction, then flags, at a time.
        mail_workers: how many processes read a backlog of mail in parallel (0: read in the mailroom's process).
        console_host / console_port: where the agent console (and the support site's chat) listens.
        console_secret: the key that signs the console's session cookies (``BILLING_CONSOLE_SECRET``; when unset,
            one generated on first use and kept in ``var/console_secret``); every replica needs the same one.
        console_workers / console_threads: the console's processes, and threads in each (a live page holds one).
        secure_cookies: send cookies over HTTPS only (set it behind TLS; off for http://127.0.0.1).
        trusted_proxies: how many proxies in front (HAProxy) add X-Forwarded-For, to find the client's address.
        display_timezone: the zone dates are shown in to agents.
        business_hours_file: when agents answer chats (time zone, weekly hours, holidays); the default is
            ``core/data/business_hours.yml`` (America/Toronto, Monday to Friday 8:00 to 20:00).
        chat_claim_seconds: how long a handed-off chat waits for an agent before the customer is offered an email
            ticket instead.
        widget_origins: the web origins whose pages may embed the chat widget ("*": any; or a comma-separated list).
        redis_url: the Redis server of ``make cluster`` (``REDIS_URL``): the Rasa servers' shared lock store.
        rasa_replicas / action_replicas / console_replicas / mailroom_replicas: how many processes of each service
            ``make cluster`` runs behind HAProxy (the mailroom's workers share its mailboxes, one owner each).
        haproxy_stats_port: where ``make cluster``'s HAProxy shows the state of every server.
    """

    var_dir: Path = field(default_factory=_default_var_dir)
    database_url: str = ""
    rasa_host: str = "127.0.0.1"
    rasa_port: int = 5005
    action_host: str = "127.0.0.1"
    action_port: int = 5055
    tracker_window: int = 60
    knowledge_dir: Path = PROJECT_ROOT / "knowledge"
    model_path: Path = PROJECT_ROOT / "models" / "billing.tar.gz"
    auth_secret: str = field(default="", repr=False)
    token_ttl_minutes: int = 60
    portal_url: str = "https://billing.net2phone.ca"
    mailroom_config: Path | None = None
    ca_address: str = "billing@net2phone.ca"
    us_address: str = "billing@net2phone.com"
    mail_size_limit_mb: int = 10
    ack_per_sender_hour: int = 3
    ack_per_sender_day: int = 10
    ack_global_hour: int = 500
    bounce_suppression_days: int = 7
    mail_batch: int = 200
    mail_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    console_host: str = "127.0.0.1"
    console_port: int = 5080
    console_secret: str = field(default="", repr=False)
    console_workers: int = 1
    console_threads: int = 200
    secure_cookies: bool = False
    trusted_proxies: int = 0
    display_timezone: str = "America/Toronto"
    business_hours_file: Path = PROJECT_ROOT / "core" / "data" / "business_hours.yml"
    chat_claim_seconds: int = 300
    widget_origins: str = "*"
    redis_url: str = "redis://127.0.0.1:6379/0"
    rasa_replicas: int = 2
    action_replicas: int = 2
    console_replicas: int = 2
    mailroom_replicas: int = 2
    haproxy_stats_port: int = 8404

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.var_dir / 'billing.db'}")
        for name in ("rasa_port", "action_port", "console_port", "haproxy_stats_port"):
            port = getattr(self, name)
            if not 0 < port < 65536:
                raise ConfigurationError(f"{PREFIX}{name.upper()}={port}: a port is a number from 1 to 65535")
        if self.auth_secret and len(self.auth_secret) < 32:
            raise ConfigurationError(f"{PREFIX}AUTH_SECRET: at least 32 characters are needed to sign tokens safely")
        if self.mail_batch < 1:
            raise ConfigurationError(f"{PREFIX}MAIL_BATCH={self.mail_batch}: at least one message per batch")
        if self.mail_workers < 0:
            raise ConfigurationError(f"{PREFIX}MAIL_WORKERS={self.mail_workers}: 0 (none) or more reader processes")
        if self.console_secret and len(self.console_secret) < 32:
            raise ConfigurationError(f"{PREFIX}CONSOLE_SECRET: at least 32 characters are needed to sign sessions safely")
        if self.console_workers < 1 or self.console_threads < 1:
            raise ConfigurationError(f"{PREFIX}CONSOLE_WORKERS and {PREFIX}CONSOLE_THREADS: at least 1 each")
        if self.chat_claim_seconds < 10:
            raise ConfigurationError(f"{PREFIX}CHAT_CLAIM_SECONDS={self.chat_claim_seconds}: at least 10 seconds")
        for name in ("rasa_replicas", "action_replicas", "console_replicas", "mailroom_replicas"):
            if not 1 <= getattr(self, name) <= 16:
                raise ConfigurationError(f"{PREFIX}{name.upper()}={getattr(self, name)}: from 1 to 16 processes")
        if self.tracker_window < 20:
            raise ConfigurationError(
                f"{PREFIX}TRACKER_WINDOW={self.tracker_window}: at least 20 events are needed to keep the rules' context"
            )

    def signing_secret(self) -> str:
        """The identity-token key: ``auth_secret`` if set, else the development secret under ``var_dir``
        (created the first time it is needed, readable by its owner only, complete or not at all).

        An empty development secret can only be the trace of an older version killed while creating it (no
        token was ever signed with it): it is created again. Any other unusable one was written by someone, so
        it is refused with what to do rather than silently replaced."""
        if self.auth_secret:
            return self.auth_secret
        return _generated_secret(self.var_dir / SECRET_FILE, f"{PREFIX}AUTH_SECRET")

    def session_secret(self) -> str:
        """The console's cookie-signing key: ``console_secret`` if set, else one generated under ``var_dir`` on
        first use (as ``signing_secret``; a damaged one is refused the same way)."""
        if self.console_secret:
            return self.console_secret
        return _generated_secret(self.var_dir / CONSOLE_SECRET_FILE, f"{PREFIX}CONSOLE_SECRET")

    @property
    def mail_dir(self) -> Path:
        """The local Maildir and outbox folders of the embedded mailroom."""
        return self.var_dir / "mail"

    def team_address(self, team: str) -> str:
        """The billing inbox of a team ("CA" or "US")."""
        return self.ca_address if team == "CA" else self.us_address

    @property
    def rasa_url(self) -> str:
        """Where the Rasa server answers (its REST channel is ``/webhooks/rest/webhook``)."""
        return f"http://{self.rasa_host}:{self.rasa_port}"

    @property
    def action_endpoint(self) -> str:
        """The URL the Rasa server calls to run custom actions."""
        return f"http://{self.action_host}:{self.action_port}/webhook"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build the settings from defaults overridden by ``environ`` (the process environment by default)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name, kind in (
            ("var_dir", Path),
            ("database_url", str),
            ("rasa_host", str),
            ("rasa_port", int),
            ("action_host", str),
            ("action_port", int),
            ("tracker_window", int),
            ("knowledge_dir", Path),
            ("model_path", Path),
            ("auth_secret", str),
            ("token_ttl_minutes", int),
            ("portal_url", str),
            ("mailroom_config", Path),
            ("ca_address", str),
            ("us_address", str),
            ("mail_size_limit_mb", int),
            ("ack_per_sender_hour", int),
            ("ack_per_sender_day", int),
            ("ack_global_hour", int),
            ("bounce_suppression_days", int),
            ("mail_batch", int),
            ("mail_workers", int),
            ("console_host", str),
            ("console_port", int),
            ("console_secret", str),
            ("console_workers", int),
            ("console_threads", int),
            ("secure_cookies", _boolean),
            ("trusted_proxies", int),
            ("display_timezone", str),
            ("business_hours_file", Path),
            ("chat_claim_seconds", int),
            ("widget_origins", str),
            ("rasa_replicas", int),
            ("action_replicas", int),
            ("console_replicas", int),
            ("mailroom_replicas", int),
            ("haproxy_stats_port", int),
        ):
            raw = env.get(PREFIX + name.upper())
            if raw is None or raw == "":
                continue
            try:
                values[name] = kind(raw)
            except ValueError as error:
                raise ConfigurationError(f"{PREFIX}{name.upper()}={raw!r}: {error}") from error
        if env.get("DATABASE_URL"):
            values["database_url"] = env["DATABASE_URL"]
        if env.get("REDIS_URL"):
            values["redis_url"] = env["REDIS_URL"]
        return cls(**values)  # type: ignore[arg-type]
