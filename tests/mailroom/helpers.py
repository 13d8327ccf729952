"""Building test messages and reading what the mailroom stored."""

from __future__ import annotations

import re
import uuid
from email.message import EmailMessage
from email.utils import make_msgid

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.db.models import InboundMail, OutboxMail, Ticket


def make_mail(sender: str, subject: str, body: str, to: str = "billing@net2phone.ca",
              message_id: str | None = None, **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain="customer.example")
    message["Date"] = "Tue, 24 Nov 2026 10:00:00 -0500"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes()


_MESSAGE_ID = re.compile(rb"(?im)^message-id:[^\n]*\n(?:[ \t][^\n]*\n)*")
_FROM_ADDRESS = re.compile(rb"(?im)^(from:[^\n]*?<?)([^<>@\s]+)(@)")


def copy_of(raw: bytes, tag: str = "") -> bytes:
    """A copy of a stored test message with a Message-ID of its own (the store deduplicates by Message-ID), and,
    given a ``tag``, a sender of its own too (so per-sender acknowledgement limits treat it as a new sender)."""
    header_end = re.search(rb"\r?\n\r?\n", raw).start()  # type: ignore[union-attr]
    headers, body = raw[:header_end], raw[header_end:]
    headers = _MESSAGE_ID.sub(b"", headers + b"\n").rstrip(b"\r\n")
    if tag:
        headers = _FROM_ADDRESS.sub(lambda m: m.group(1) + m.group(2) + b"." + tag.encode() + m.group(3), headers, count=1)
    newline = b"\r\n" if b"\r\n" in headers else b"\n"
    return headers + newline + b"Message-ID: <copy-" + uuid.uuid4().hex.encode() + b"@test.example>" + body


def counts(factory: sessionmaker[Session]) -> dict[str, int]:
    with factory() as session:
        return {
            "tickets": session.execute(sa.select(sa.func.count()).select_from(Ticket)).scalar_one(),
            "acks": session.execute(
                sa.select(sa.func.count()).select_from(OutboxMail).where(OutboxMail.kind == "ack")
            ).scalar_one(),
            "forwards": session.execute(
                sa.select(sa.func.count()).select_from(OutboxMail).where(OutboxMail.kind == "forward")
            ).scalar_one(),
            "inbound": session.execute(sa.select(sa.func.count()).select_from(InboundMail)).scalar_one(),
        }


def outbox(factory: sessionmaker[Session]) -> list[OutboxMail]:
    with factory() as session:
        return list(session.execute(sa.select(OutboxMail).order_by(OutboxMail.id)).scalars())
