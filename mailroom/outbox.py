"""Sending the outbox: acknowledgements and forwards committed with their tickets, sent afterwards.

At most once: a row is marked ``sending`` (committed) before the SMTP transaction and ``sent`` after it, so a crash
in between never sends it twice (the row is left ``sending`` and logged for an agent). A server that refuses
temporarily (network, 4xx) gets the row retried later with a growing delay; a permanent refusal (5xx) marks it
``failed``. An address suppressed after a hard bounce gets nothing.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from datetime import datetime, timedelta, timezone
from email.utils import parseaddr
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db.engine import unit_of_work
from core.db.models import MailSuppression, OutboxMail
from mailroom.config import SmtpConfig

logger = logging.getLogger(__name__)
MAX_DELAY = timedelta(hours=1)
MAX_ATTEMPTS = 20


class PermanentRefusal(Exception):
    """Raised by a transport when the server refuses a message for good (SMTP 5xx)."""


class Transport(Protocol):
    def send(self, sender: str, recipient: str, raw: bytes) -> None: ...


class SmtpTransport:
    """Sends through an SMTP server (implicit TLS, STARTTLS, or plain on loopback)."""

    def __init__(self, config: SmtpConfig, timeout: float = 30.0) -> None:
        self._config = config
        self._timeout = timeout

    def send(self, sender: str, recipient: str, raw: bytes) -> None:
        config = self._config
        context = ssl.create_default_context(cafile=config.ca_file)
        try:
            if config.security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(config.host, config.port, timeout=self._timeout,
                                                        context=context)
            else:
                client = smtplib.SMTP(config.host, config.port, timeout=self._timeout)
            with client:
                if config.security == "starttls":
                    client.starttls(context=context)
                if config.username and config.password:
                    client.login(config.username, config.password)
                client.sendmail(sender, [recipient], raw)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            if all(code >= 500 for code in codes):
                raise PermanentRefusal(f"recipient refused: {error.recipients}") from error
            raise
        except smtplib.SMTPResponseException as error:
            if error.smtp_code >= 500:
                raise PermanentRefusal(f"{error.smtp_code} {error.smtp_error!r}") from error
            raise


class FolderTransport:
    """Writes each message as an .eml file into a folder (the embedded mode's outbox)."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def send(self, sender: str, recipient: str, raw: bytes) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        safe = "".join(ch if ch.isalnum() or ch in "@._-" else "_" for ch in recipient)
        temporary = self._folder / f".{stamp}-{safe}.tmp"
        temporary.write_bytes(raw)
        temporary.rename(self._folder / f"{stamp}-{safe}.eml")  # readers never see half a file


def _delay(attempts: int) -> timedelta:
    return min(timedelta(seconds=30 * 2 ** max(attempts - 1, 0)), MAX_DELAY)


def _claim(factory: sessionmaker[Session], now: datetime, limit: int) -> list[int]:
    """Mark up to ``limit`` due rows ``sending`` and return their ids (one worker gets each row)."""
    with unit_of_work(factory) as session:
        query = (
            select(OutboxMail).where(OutboxMail.status == "pending", OutboxMail.next_attempt_at <= now)
            .order_by(OutboxMail.id).limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = list(session.execute(query).scalars())
        for row in rows:
            row.status = "sending"
        return [int(row.id) for row in rows]


def send_pending(factory: sessionmaker[Session], transport: Transport, limit: int = 100) -> int:
    """Send what is due; returns how many were sent."""
    now = datetime.now(timezone.utc)
    sent = 0
    for row_id in _claim(factory, now, limit):
        with unit_of_work(factory) as session:
            row = session.get(OutboxMail, row_id)
            assert row is not None
            recipient = row.recipient.lower()
            suppressed = session.execute(
                select(MailSuppression).where(MailSuppression.email == recipient, MailSuppression.until > now)
            ).scalars().first()
            if suppressed is not None and row.kind == "ack":
                row.status, row.last_error = "suppressed", f"{recipient}: {suppressed.reason}"
                continue
            sender = parseaddr(row.sender)[1]
            raw = row.raw.encode("utf-8")
        try:
            transport.send(sender, recipient, raw)
        except PermanentRefusal as error:
            _finish(factory, row_id, "failed", str(error))
            logger.warning("outbox %s to %s refused for good: %s", row_id, recipient, error)
        except (OSError, smtplib.SMTPException) as error:
            _retry(factory, row_id, f"{type(error).__name__}: {error}")
            logger.warning("outbox %s to %s will be retried: %s", row_id, recipient, error)
        else:
            _finish(factory, row_id, "sent", None)
            sent += 1
    return sent


def _finish(factory: sessionmaker[Session], row_id: int, status: str, error: str | None) -> None:
    with unit_of_work(factory) as session:
        row = session.get(OutboxMail, row_id)
        assert row is not None
        row.status, row.last_error = status, error
        row.attempts += 1
        if status == "sent":
            row.sent_at = datetime.now(timezone.utc)


def _retry(factory: sessionmaker[Session], row_id: int, error: str) -> None:
    with unit_of_work(factory) as session:
        row = session.get(OutboxMail, row_id)
        assert row is not None
        row.attempts += 1
        row.last_error = error[:2000]
        row.status = "failed" if row.attempts >= MAX_ATTEMPTS else "pending"
        row.next_attempt_at = datetime.now(timezone.utc) + _delay(row.attempts)
