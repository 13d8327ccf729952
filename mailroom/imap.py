"""One IMAP mailbox (imapclient): TLS, STARTTLS or plain, password or XOAUTH2, IDLE with a polling fallback.

Messages are read with ``BODY.PEEK[]`` (nothing is marked read by looking) and flagged with the keyword
``$BillingTriaged`` only after their ticket is committed; unhandled messages are the ones without it, so a
restart picks up exactly what was not finished. Every server or network failure becomes a
``TransientMailError``: the caller reconnects with backoff and loses nothing.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import imapclient
from imapclient.exceptions import IMAPClientError

from mailroom.config import MailboxConfig
from mailroom.errors import TransientMailError

TRIAGED = b"$BillingTriaged"
QUARANTINED = b"$BillingQuarantined"
IDLE_SECONDS = 25 * 60  # servers drop IDLE after 30 minutes (RFC 2177): renew before
TRANSIENT = (IMAPClientError, OSError, socket.timeout, ssl.SSLError, EOFError)


@contextmanager
def transient_errors(what: str) -> Iterator[None]:
    """Turn connection and protocol failures into ``TransientMailError``."""
    try:
        yield
    except TRANSIENT as error:
        raise TransientMailError(f"{what}: {type(error).__name__}: {error}") from error


class ImapMailbox:
    """A connection to one configured mailbox."""

    def __init__(self, config: MailboxConfig, ssl_context: ssl.SSLContext | None = None, timeout: float = 60,
                 idling: threading.Event | None = None) -> None:
        self.config = config
        self._ssl_context = ssl_context or ssl.create_default_context()
        self._timeout = timeout
        self._client: imapclient.IMAPClient | None = None
        self.uidvalidity = 0
        self.idling = idling or threading.Event()  # set while the server is asked to announce new mail (IDLE)

    @property
    def client(self) -> imapclient.IMAPClient:
        if self._client is None:
            raise TransientMailError(f"{self.config.name}: not connected")
        return self._client

    def connect(self) -> None:
        """Connect, secure, log in and select the folder; remembers its UIDVALIDITY."""
        config = self.config
        with transient_errors(f"{config.name}: connecting to {config.host}:{config.port}"):
            client = imapclient.IMAPClient(config.host, port=config.port, ssl=config.security == "tls",
                                           ssl_context=self._ssl_context, timeout=self._timeout)
            self._client = client  # so that close() releases it even if the login below fails
            if config.security == "starttls":
                client.starttls(self._ssl_context)
            if config.oauth2_token:
                client.oauth2_login(config.username, config.oauth2_token)
            else:
                client.login(config.username, config.password or "")
            selected = client.select_folder(config.folder)
            self.uidvalidity = int(selected[b"UIDVALIDITY"])

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.logout()
            except TRANSIENT:
                # The connection is already broken: release the socket without the LOGOUT exchange.
                try:
                    client.shutdown()
                except TRANSIENT:
                    pass

    def unhandled(self) -> list[int]:
        """UIDs of the messages not yet triaged, oldest first."""
        with transient_errors(f"{self.config.name}: search"):
            return sorted(int(uid) for uid in self.client.search(["NOT", "KEYWORD", TRIAGED.decode()]))

    def fetch(self, uids: list[int]) -> dict[int, bytes]:
        """The raw messages of ``uids`` (peeked: not marked seen)."""
        with transient_errors(f"{self.config.name}: fetch"):
            data: dict[Any, Any] = self.client.fetch(uids, ["BODY.PEEK[]"])
        return {int(uid): bytes(items.get(b"BODY[]") or b"") for uid, items in data.items()}

    def mark_triaged(self, uids: list[int], quarantined: list[int] | None = None) -> None:
        """Flag messages whose effects are committed (and the quarantined ones too, so they are not re-read)."""
        with transient_errors(f"{self.config.name}: store flags"):
            if uids:
                self.client.add_flags(uids, [TRIAGED])
            if quarantined:
                self.client.add_flags(quarantined, [TRIAGED, QUARANTINED])

    def unflag(self, uids: list[int]) -> None:
        """Make messages unhandled again (a person asked for a quarantined one to be read anew)."""
        with transient_errors(f"{self.config.name}: remove flags"):
            if uids:
                self.client.remove_flags(uids, [TRIAGED, QUARANTINED])

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for new mail: IDLE when the server offers it, else just wait (polling).
        Returns True when the server announced something."""
        with transient_errors(f"{self.config.name}: idle"):
            if b"IDLE" not in self.client.capabilities():
                return False
            self.client.idle()
            self.idling.set()
            try:
                responses = self.client.idle_check(timeout=seconds)
            finally:
                self.idling.clear()
                self.client.idle_done()
            return bool(responses)
