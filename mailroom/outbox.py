"""Sending the outbox (``core.outbox``) through SMTP, or into a folder in the embedded mode.

Rows are claimed one at a time with a lease naming this process; see ``core.outbox`` for what a crash can and
cannot do. In short: at most the one message in the SMTP transaction when a sender dies is in doubt, and it is
sent again with the same Message-ID (a forward to the other team is never lost; a duplicate acknowledgement with
the same Message-ID is the lesser harm). A server that refuses temporarily (network, 4xx) gets the row retried
later with a growing delay; a permanent refusal (5xx) marks it ``failed``, logged with its ticket.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.utils import parseaddr
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from core.files import create_atomic, remove_stale_temporaries
from core.outbox import (
    Claim,
    claim_next,
    give_back,
    mark_failed,
    mark_for_retry,
    mark_sent,
    release_lapsed,
    sender_identity,
)
from mailroom.config import SmtpConfig
from mailroom.faults import crash_point


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
    """Writes each message as an .eml file into a folder (the embedded mode's outbox).

    The file is named after the message's own content, and created atomically and only once: a message sent
    again after a crash (the one in doubt) lands on its own file instead of making a second one."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        remove_stale_temporaries(folder)

    def send(self, sender: str, recipient: str, raw: bytes) -> None:
        safe = "".join(ch if ch.isalnum() or ch in "@._-" else "_" for ch in recipient)[:100]
        digest = hashlib.sha256(raw).hexdigest()[:16]
        create_atomic(self._folder / f"{safe}-{digest}.eml", raw, mode=0o644)


def send_pending(factory: sessionmaker[Session], transport: Transport, owner: str | None = None,
                 limit: int = 100) -> int:
    """Send up to ``limit`` due mails, claiming them one at a time as ``owner`` (this process by default); claims
    that lapsed are given back first. Returns how many were sent."""
    owner = owner or sender_identity()
    release_lapsed(factory)
    sent = 0
    for _ in range(limit):
        claim = claim_next(factory, owner)
        if claim is None:
            break
        try:
            sent += _send_one(factory, transport, owner, claim)
        except BaseException as error:  # not the server's answer (a bug, a stop): the claim is not left hanging
            give_back(factory, claim, owner, f"{type(error).__name__}: {error}")
            raise
    return sent


def _send_one(factory: sessionmaker[Session], transport: Transport, owner: str, claim: Claim) -> int:
    crash_point("after_claim")
    try:
        transport.send(parseaddr(claim.sender)[1], claim.recipient, claim.raw)
    except PermanentRefusal as error:
        mark_failed(factory, claim, owner, str(error))
        return 0
    except (OSError, smtplib.SMTPException) as error:
        mark_for_retry(factory, claim, owner, f"{type(error).__name__}: {error}")
        return 0
    crash_point("after_send")
    mark_sent(factory, claim, owner)
    return 1
