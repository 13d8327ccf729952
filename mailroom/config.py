"""Which mailboxes to watch and how to send: a YAML file named by ``BILLING_MAILROOM_CONFIG``.

```yaml
mailboxes:
  - name: ca                      # a short name, unique
    team: CA                      # whose inbox: CA (billing@net2phone.ca) or US (billing@net2phone.com)
    host: imap.example.com
    port: 993
    security: tls                 # tls (implicit), starttls, or plain (loopback only)
    username: billing@net2phone.ca
    password_env: BILLING_IMAP_CA_PASSWORD      # the secret stays in the environment
    # oauth2_token_env: BILLING_IMAP_CA_TOKEN   # XOAUTH2 instead of a password
    folder: INBOX
    # ca_file: /path/to/ca.pem    # a private certificate authority (tests)
smtp:
  host: smtp.example.com
  port: 587
  security: starttls
  username: billing@net2phone.ca
  password_env: BILLING_SMTP_PASSWORD
```
Without a file, the mailroom is embedded: it watches the local Maildir ``var/mail/inbox`` and writes outgoing
mail to ``var/mail/outbox`` as .eml files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.settings import Settings
from mailroom.errors import ConfigurationError

SECURITY = ("tls", "starttls", "plain")


@dataclass(frozen=True)
class MailboxConfig:
    """One IMAP mailbox."""

    name: str
    team: str
    host: str
    port: int
    security: str
    username: str
    password: str | None = None
    oauth2_token: str | None = None
    folder: str = "INBOX"
    poll_seconds: float = 30.0
    ca_file: str | None = None


@dataclass(frozen=True)
class SmtpConfig:
    """The SMTP server acknowledgements and forwards go through."""

    host: str
    port: int
    security: str
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None


@dataclass(frozen=True)
class MailroomConfig:
    """Mailboxes and SMTP, or neither (embedded Maildir mode)."""

    mailboxes: tuple[MailboxConfig, ...]
    smtp: SmtpConfig | None

    @property
    def embedded(self) -> bool:
        return not self.mailboxes


def _secret(entry: dict[str, Any], key: str, where: str, environ: dict[str, str]) -> str | None:
    name = entry.get(f"{key}_env")
    if name is None:
        if key in entry:
            raise ConfigurationError(f"{where}.{key}: secrets are not written in the file; use {key}_env")
        return None
    if name not in environ:
        raise ConfigurationError(f"{where}.{key}_env: the environment variable {name} is not set")
    return environ[name]


def _security(entry: dict[str, Any], where: str) -> str:
    security = str(entry.get("security", "tls"))
    if security not in SECURITY:
        raise ConfigurationError(f"{where}.security: {security!r} is not one of {', '.join(SECURITY)}")
    return security


def load_config(settings: Settings, environ: dict[str, str] | None = None) -> MailroomConfig:
    """The configuration named by ``settings.mailroom_config`` (embedded mode without one)."""
    env = dict(os.environ if environ is None else environ)
    path: Path | None = settings.mailroom_config
    if path is None:
        return MailroomConfig((), None)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise ConfigurationError(f"{path}: cannot be read ({error.strerror})") from error
    except yaml.YAMLError as error:
        raise ConfigurationError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from error
    mailboxes = []
    for index, entry in enumerate(data.get("mailboxes") or []):
        where = f"{path}: mailboxes[{index}]"
        try:
            team = str(entry["team"]).upper()
            if team not in ("CA", "US"):
                raise ConfigurationError(f"{where}.team: {team!r} is not CA or US")
            mailbox = MailboxConfig(
                name=str(entry["name"]), team=team, host=str(entry["host"]), port=int(entry.get("port", 993)),
                security=_security(entry, where), username=str(entry["username"]),
                password=_secret(entry, "password", where, env), oauth2_token=_secret(entry, "oauth2_token", where, env),
                folder=str(entry.get("folder", "INBOX")), poll_seconds=float(entry.get("poll_seconds", 30)),
                ca_file=entry.get("ca_file"),
            )
        except KeyError as error:
            raise ConfigurationError(f"{where}.{error.args[0]}: missing") from error
        if mailbox.password is None and mailbox.oauth2_token is None:
            raise ConfigurationError(f"{where}: needs password_env or oauth2_token_env")
        mailboxes.append(mailbox)
    names = [m.name for m in mailboxes]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"{path}: mailboxes: names must be unique ({names})")
    smtp = None
    if data.get("smtp"):
        entry = data["smtp"]
        try:
            smtp = SmtpConfig(host=str(entry["host"]), port=int(entry.get("port", 587)),
                              security=_security(entry, f"{path}: smtp"), username=entry.get("username"),
                              password=_secret(entry, "password", f"{path}: smtp", env), ca_file=entry.get("ca_file"))
        except KeyError as error:
            raise ConfigurationError(f"{path}: smtp.{error.args[0]}: missing") from error
    return MailroomConfig(tuple(mailboxes), smtp)
