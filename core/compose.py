"""Writing the mail we send (the mailroom's acknowledgements and forwards, the agents' replies): the wire format,
the teams' names and signatures, and the loop marker by which our own mail is recognised when it comes back.

Every mail is one text/plain part in UTF-8, quoted-printable, with headers we write ourselves (non-ASCII names
and subjects as RFC 2047 encoded words, folded below 78 characters): what ``EmailMessage`` would write, at a
twentieth of the cost, which matters when a backlog of mail is acknowledged. Header values never carry a line
break of their own: a customer's subject or an agent's name with CR/LF in it cannot add a header. Every mail
carries ``Auto-Submitted`` and ``X-Auto-Response-Suppress: All``, so that mail systems (ours included) never
answer it automatically, and ``X-Billing-Loop``, a keyed hash of its Message-ID. ``tests/mailroom`` and
``tests/console`` parse what we write with the standard library and check every header and the text.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from email.utils import formatdate, quote

from core.language import DEFAULT_LANGUAGE, SUPPORTED_LANGUAGES

LOOP_HEADER = "X-Billing-Loop"
TEAM_NAMES = {"CA": {"en": "net2phone Canada Billing", "fr": "Facturation net2phone Canada"},
              "US": {"en": "net2phone USA Billing", "fr": "Facturation net2phone États-Unis"}}
TEAM_LABELS = {"CA": {"en": "net2phone Canada billing team", "fr": "facturation de net2phone Canada"},
               "US": {"en": "net2phone USA billing team", "fr": "facturation de net2phone États-Unis"}}
SIGNATURES = {"CA": {"en": "net2phone Canada Billing\n{address} · 1-877-498-3772, option 4",
                     "fr": "Facturation net2phone Canada\n{address} · 1-877-498-3772, option 4"},
              "US": {"en": "net2phone USA Billing\n{address}", "fr": "Facturation net2phone États-Unis\n{address}"}}
REPLY_PREFIX = {"en": "Re:", "fr": "RE :"}

CRLF = "\r\n"
_ENCODED_WORD_BYTES = 42  # 56 characters in base64: with "=?utf-8?b?" and "?=", 68 per word and line
_ATOM_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')
_LINE_BREAKS = re.compile(r"[\r\n\x00\x85\u2028\u2029]+")


def language_or_default(language: str | None) -> str:
    """``language`` if we write in it, else the default."""
    return language if language in SUPPORTED_LANGUAGES else DEFAULT_LANGUAGE


def one_line(text: str) -> str:
    """A header value's text on one line: any line break (CR, LF, NUL, Unicode separators) becomes a space, so
    that no value can end its header and start another."""
    return _LINE_BREAKS.sub(" ", text).strip()


def encoded_words(text: str) -> str:
    """``text`` as it may appear in a header: as it is when ASCII, else RFC 2047 base64 words, one per folded
    line, split between words where possible (some parsers add a space between adjacent encoded words of a name)."""
    text = one_line(text)
    if text.isascii():
        return text
    chunks: list[bytes] = [b""]
    for piece in re.findall(r"\s*\S+|\s+$", text):
        encoded = piece.encode("utf-8")
        if len(chunks[-1]) + len(encoded) <= _ENCODED_WORD_BYTES:
            chunks[-1] += encoded
            continue
        chunks.append(b"")
        for character in piece:  # a piece longer than a word: split between its characters
            encoded = character.encode("utf-8")
            if len(chunks[-1]) + len(encoded) > _ENCODED_WORD_BYTES:
                chunks.append(b"")
            chunks[-1] += encoded
    words = [f"=?utf-8?b?{binascii.b2a_base64(chunk, newline=False).decode('ascii')}?=" for chunk in chunks if chunk]
    return (CRLF + " ").join(words)


def format_address(name: str, address: str) -> str:
    """A mailbox header value: ``address`` alone, or with its display name (quoted or encoded as needed)."""
    name, address = one_line(name), one_line(address)
    if not name:
        return address
    if not name.isascii():
        return f"{encoded_words(name)} <{address}>"
    return f'"{quote(name)}" <{address}>' if _ATOM_SPECIALS.search(name) else f"{name} <{address}>"


def _fold(name: str, value: str) -> str:
    """``Name: value``, folded at spaces so that lines stay below 78 characters where the value allows (encoded
    words come folded already)."""
    if CRLF in value:
        return f"{name}: {value}"
    line, lines = f"{name}:", []
    for word in one_line(value).split(" "):
        if len(line) + 1 + len(word) > 76 and line.strip() and not line.endswith(":"):
            lines.append(line)
            line = ""
        line += " " + word
    return CRLF.join([*lines, line])


def _quoted_printable(text: str) -> str:
    body = "\n".join(line.rstrip(" \t") for line in text.split("\n")).replace("\n", CRLF)
    return binascii.b2a_qp(body.encode("utf-8"), istext=True).decode("ascii")


@dataclass(frozen=True)
class Outgoing:
    """A composed mail, ready for the outbox: its Message-ID, envelope addresses and wire text."""

    message_id: str
    sender: str
    recipient: str
    raw: str
    text: str = ""  # the body as written, for the ticket's thread


def new_message_id(kind: str, reference: str, domain: str) -> str:
    """``<ack-BL-7K3Q9D-3f2a1c@billing.net2phone.ca>``: the kind and ticket visible, unguessable."""
    return f"<{kind}-{reference}-{secrets.token_hex(6)}@{domain}>"


def loop_marker(secret: str, message_id: str) -> str:
    """The value of ``X-Billing-Loop`` on a mail we send: a keyed hash of its Message-ID (unforgeable)."""
    digest = hmac.new(secret.encode(), message_id.encode(), hashlib.sha256).hexdigest()[:32]
    return f"net2phone-billing; {digest}"


def is_own_marker(secret: str, value: str, message_id: str | None) -> bool:
    """True when a loop marker was made by us for this Message-ID."""
    return bool(message_id) and hmac.compare_digest(value.strip(), loop_marker(secret, str(message_id)))


def compose(secret: str, message_id: str, auto: str | None, headers: dict[str, str], body: str) -> str:
    """The wire text of a mail: ``headers`` (values already encoded where needed), ours, and the body.

    ``auto``: the ``Auto-Submitted`` value ("auto-replied", "auto-generated"), None for a person's mail (an agent's
    reply), which mail systems may answer as they answer any person."""
    lines = [
        *(_fold(name, value) for name, value in headers.items()),
        f"Message-ID: {message_id}",
        f"Date: {formatdate(localtime=False)}",
        *([f"Auto-Submitted: {auto}", "X-Auto-Response-Suppress: All"] if auto else []),
        f"{LOOP_HEADER}: {loop_marker(secret, message_id)}",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
    ]
    return CRLF.join(lines) + CRLF + CRLF + _quoted_printable(body)


def signature(team: str, language: str, address: str) -> str:
    """The team's signature under a mail, in the customer's language."""
    return SIGNATURES[team][language_or_default(language)].format(address=address)
