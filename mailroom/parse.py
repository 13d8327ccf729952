"""Parse one raw message robustly: any charset, RFC 2047 headers, HTML-only mail as text, quoted replies and
signatures set apart, attachments recorded, a size limit.

The standard ``email`` package does the MIME work with its ``compat32`` policy, which keeps header values as they
came (seven times faster than ``policy.default``, whose header objects we would not use); ``decode_header_value``
turns them into text: RFC 2047 encoded words, raw UTF-8 or Windows-1252 bytes. Real mail is often broken (unknown
or wrong charsets, missing boundaries, bad headers): every accessor here falls back instead of raising, and only
a message with no usable headers at all is refused (``MalformedMail``).
"""

from __future__ import annotations

import base64
import quopri
import re
from email import policy
from email.errors import StartBoundaryNotFoundDefect
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.policy import Compat32
from email.utils import getaddresses, parseaddr

from inscriptis import get_text

from core.settings import Settings
from mailroom.errors import MalformedMail
from mailroom.mail import Attachment, Mail

DEFAULT_SIZE_LIMIT = 10 * 1024 * 1024
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
# Where the customer's own text ends: the first line that starts a quoted earlier message (English and French
# clients: Gmail, Apple Mail, Thunderbird, Outlook in both languages).
_REPLY_HEADERS = re.compile(
    r"(?im)^(?:"
    r"on .{0,200}\bwrote:\s*$"
    r"|le .{0,200}\ba [ée]crit\s*:\s*$"
    r"|-{2,}\s*original message\s*-{2,}"
    r"|-{2,}\s*message d'origine\s*-{2,}"
    r"|_{10,}\s*$"
    r"|(?:from|de)\s*:\s.+\n(?:.+\n){0,3}?(?:sent|envoy[ée])\s*:\s.+"
    r")"
)
# A closing line ("Thanks,", "Cordialement,") near the end starts the signature: name, title, address, phone.
_CLOSING = re.compile(
    r"(?im)^\s*(thanks?( you)?( so much| again| in advance)?|many thanks|best( regards)?|kind regards|regards|"
    r"warm regards|sincerely|cheers|merci( beaucoup| encore| [àa] l'avance)?|cordialement|salutations|"
    r"bonne (journ[ée]e|fin de journ[ée]e|soir[ée]e)|bien [àa] vous|meilleures salutations|au plaisir)\s*[,.!]?\s*$"
)
CLOSING_WITHIN_LAST_LINES = 12
# A looser closing, for what the request says only: a short line that thanks or greets and ends with a comma
# ("Merci beaucoup et bonne journée,", "Thanks for your help,"); a request ends with a period or a question mark.
_LOOSE_CLOSING = re.compile(
    r"(?im)^\s*(thanks?|thank you|many thanks|merci|regards|best|cordialement|salutations|bonne|au plaisir)\b"
    r"[^\n?]{0,60},\s*$"
)
# A legal notice under the signature: "CONFIDENTIALITY NOTICE: This e-mail ... intended only for the addressee".
_DISCLAIMER = re.compile(
    r"(?is)\b(confidential\w*|privileged|confidentiel\w*|privil[ée]gi\w*)\b.{0,300}"
    r"\b(intended|addressee|recipient|destinataire|erreur|error|prohibited|interdit\w*)\b"
)
_SIGNATURE = re.compile(
    r"(?im)^(?:-- ?$|sent from my \w+|envoy[ée] de mon \w+|get outlook for \w+|obtenir outlook pour \w+)"
)


class _RawHeaders(Compat32):
    """``compat32`` without its one transformation: header values come back exactly as parsed (with the raw bytes
    of 8-bit headers as surrogate escapes), for ``decode_header_value``."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


_POLICY = _RawHeaders()


def bytes_to_text(raw: bytes, declared: str = "") -> str:
    """Text from bytes in a charset that may be declared wrongly or not at all: the declared one, else UTF-8 (also
    when only a character or two is damaged, as in a truncated name), else the declared one with replacement
    characters, else Windows-1252, else Latin-1 (which reads anything)."""
    for charset in (declared, "utf-8"):
        try:
            return raw.decode(charset) if charset else raw.decode("utf-8")
        except LookupError:
            continue
        except UnicodeDecodeError:
            if raw.isascii():  # a 7-bit charset (ISO-2022-JP) with a character it lacks: keep the rest
                return raw.decode(charset, errors="replace")
    utf8 = raw.decode("utf-8", errors="replace")
    if utf8.count("\ufffd") * 50 <= len(utf8):
        return utf8
    if declared.lower() not in ("", "us-ascii", "ascii"):
        try:
            return raw.decode(declared, errors="replace")
        except LookupError:
            pass
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _has_raw_bytes(value: str) -> bool:
    return any("\udc80" <= character <= "\udcff" for character in value)


def _raw_text(value: str) -> str:
    """Text from a value parsed with surrogate escapes (raw 8-bit bytes in a header)."""
    return bytes_to_text(value.encode("ascii", "surrogateescape")) if _has_raw_bytes(value) else value


_ENCODED_WORDS = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=(?:\s*(?==\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=))?")


def _word_bytes(encoding: str, payload: str) -> bytes:
    data = payload.encode("ascii", "surrogateescape")
    if encoding in "bB":
        data = data.rstrip(b"=")  # mailers get the padding wrong both ways: redo it
        return base64.b64decode(data + b"=" * (-len(data) % 4), validate=True)
    return quopri.decodestring(data, header=True)


def decode_header_value(value: str) -> str:
    """A header value as one line of text: RFC 2047 encoded words decoded (adjacent words of one charset
    together, since mailers split multi-byte characters between them; a broken word stays as written), raw 8-bit
    bytes read as text, folding undone."""
    value = str(value)
    if "=?" not in value:
        return " ".join(_raw_text(value).split())
    pieces: list[str] = []
    pending: list[bytes] = []
    pending_charset = ""
    position = 0

    def flush() -> None:
        if pending:
            pieces.append(bytes_to_text(b"".join(pending), pending_charset.split("*")[0]))  # "*": RFC 2231 language
            pending.clear()

    for match in _ENCODED_WORDS.finditer(value):
        charset, encoding, payload = match.groups()
        between = value[position : match.start()]
        if between or charset.lower() != pending_charset.lower():
            flush()
            pieces.append(_raw_text(between))
        try:
            pending.append(_word_bytes(encoding, payload))
            pending_charset = charset
        except ValueError:  # hopeless base64: the word stays as written
            flush()
            pieces.append(_raw_text(match.group(0)))
        position = match.end()
    flush()
    pieces.append(_raw_text(value[position:]))
    return " ".join("".join(pieces).split())


def _header(message: Message, name: str) -> str:
    """A header's decoded value, or "" when absent."""
    value = message.get(name)
    return "" if value is None else decode_header_value(value)


def header_values(message: Message, name: str) -> list[str]:
    """Every value of a header, decoded (empty list when absent)."""
    return [decode_header_value(value) for value in message.get_all(name) or []]


def _addresses(message: Message, *names: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name in names:
        for value in message.get_all(name) or []:
            # Split the addresses before decoding: a decoded display name may contain commas or angle brackets.
            try:
                found = getaddresses([" ".join(_raw_text(value).split())])
            except (ValueError, IndexError, RecursionError):  # hopeless syntax (group nesting): nothing usable
                continue
            pairs.extend((decode_header_value(n), a.strip().lower()) for n, a in found if "@" in a)
    return pairs


def recipients_of(raw: bytes) -> list[str]:
    """The addresses a raw message was sent to, from its headers alone (To, Cc, Delivered-To, X-Original-To)."""
    headers = BytesHeaderParser(policy=_POLICY).parsebytes(_without_leading_junk(raw[:65536]))
    return [address for _, address in _addresses(headers, "To", "Cc", "Delivered-To", "X-Original-To")]


def team_of_recipients(recipients: list[str], settings: Settings) -> str:
    """Which inbox a message reached, from its recipients: the USA team's address, else the Canadian one's."""
    return "US" if settings.us_address.lower() in {r.lower() for r in recipients} else "CA"


def message_ids(value: str) -> list[str]:
    """The ``<id@host>`` tokens of a Message-ID, In-Reply-To or References header."""
    return _MESSAGE_ID.findall(value or "")


def decode_part(part: Message) -> str:
    """A text part's content as str, whatever its declared charset (wrong or unknown ones fall back)."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    return bytes_to_text(payload, part.get_content_charset() or "")


def html_to_text(html: str) -> str:
    """Readable text of an HTML body (inscriptis keeps paragraphs, lists and tables legible)."""
    try:
        return str(get_text(html))
    except Exception:  # inscriptis parses with lxml; hopeless markup falls back to stripping tags
        return re.sub(r"<[^>]+>", " ", html)


def split_reply(text: str) -> tuple[str, str, str]:
    """(the customer's new text, the quoted earlier messages, the signature)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    quoted = ""
    cut = _REPLY_HEADERS.search(text)
    lines = text.split("\n")
    first_quote_line = next((i for i, line in enumerate(lines) if line.startswith(">")), None)
    if first_quote_line is not None:
        position = sum(len(line) + 1 for line in lines[:first_quote_line])
        if cut is None or position < cut.start():
            # An attribution line right above the quote belongs to it.
            previous = text.rfind("\n", 0, max(position - 1, 0))
            attribution = text[previous + 1 : position].strip()
            if attribution.endswith(":"):
                position = previous + 1
            cut = None
            quoted, text = text[position:], text[:position]
    if cut is not None:
        quoted, text = text[cut.start() :], text[: cut.start()]
    signature = ""
    sig = _SIGNATURE.search(text)
    if sig is not None and sig.start() > 0:
        signature, text = text[sig.start() :], text[: sig.start()]
    closings = list(_CLOSING.finditer(text))
    if closings:
        closing = closings[-1]
        lines_after = text[closing.end() :].strip().count("\n") + 1
        if closing.start() > 0 and lines_after <= CLOSING_WITHIN_LAST_LINES:
            signature = text[closing.start() :] + ("\n" + signature if signature else "")
            text = text[: closing.start()]
    return _tidy(text), _tidy(quoted), _tidy(signature)


def request_words(body: str) -> str:
    """The customer's new text without what follows a closing line or a legal notice (name, title, address,
    disclaimers, whose words are no request): what the queue is chosen on. The ticket keeps the whole text."""
    paragraphs = body.split("\n\n")
    for index in range(1, len(paragraphs)):
        if _DISCLAIMER.search(paragraphs[index]):
            body = "\n\n".join(paragraphs[:index])
            break
    closings = [m for m in _LOOSE_CLOSING.finditer(body) if m.start() > 0]
    if closings and body[closings[-1].end():].strip().count("\n") + 1 <= CLOSING_WITHIN_LAST_LINES:
        body = body[: closings[-1].start()]
    return body.strip()


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.split("\n")]
    tidy = "\n".join(lines).strip()
    return re.sub(r"\n{3,}", "\n\n", tidy)


def _body_and_attachments(message: Message) -> tuple[str, bool, list[Attachment]]:
    plain: str | None = None
    html: str | None = None
    attachments: list[Attachment] = []
    parts = message.walk() if message.is_multipart() else iter([message])
    for part in parts:
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        filename = None
        try:
            found = part.get_filename()
            filename = decode_header_value(found) if found else None
        except (ValueError, LookupError, UnicodeError):  # an RFC 2231 parameter in a charset Python lacks
            filename = None
        is_body_text = content_type in ("text/plain", "text/html") and disposition != "attachment" and not filename
        if is_body_text:
            text = decode_part(part)
            if content_type == "text/plain" and plain is None:
                plain = text
            elif content_type == "text/html" and html is None:
                html = text
            continue
        if content_type.startswith("multipart/"):
            continue
        payload = part.get_payload(decode=True)
        size = len(payload) if isinstance(payload, bytes) else len(str(part.get_payload() or ""))
        attachments.append(Attachment(filename=filename, content_type=content_type, size=size))
    if plain is not None and plain.strip():
        return plain, False, attachments
    if html is not None:
        return html_to_text(html), True, attachments
    return plain or "", False, attachments


_MBOX_SEPARATOR = re.compile(rb"From [^:\r\n]*\r?\n")


def _without_leading_junk(raw: bytes) -> bytes:
    """The message without what some clients and exports put before the headers: a UTF-8 byte-order mark, blank
    lines, an mbox ``From `` separator line."""
    raw = raw.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    separator = _MBOX_SEPARATOR.match(raw)
    return raw[separator.end() :] if separator else raw


def parse_mail(mail: Mail, size_limit: int = DEFAULT_SIZE_LIMIT) -> None:
    """Fill the parsed fields of ``mail`` from ``mail.raw``.

    Raises:
        MalformedMail: when the bytes have no header at all.
    """
    mail.size = len(mail.raw)
    try:
        raw = _without_leading_junk(mail.raw)
        message = BytesParser(policy=_POLICY).parsebytes(raw)
        if any(isinstance(defect, StartBoundaryNotFoundDefect) for defect in message.defects):
            # A boundary parameter compat32 cannot read (folded inside its quotes, text after it on the line):
            # the standard policy's stricter header parser finds the parts.
            message = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as error:  # the parser itself failed: the bytes are not a message
        raise MalformedMail(f"cannot be parsed as an email: {type(error).__name__}: {error}") from error
    mail.message = message
    mail.subject = _header(message, "Subject")
    senders = _addresses(message, "From") or _addresses(message, "Sender", "Return-Path")
    if senders:
        mail.from_name, mail.from_address = senders[0]
    else:
        mail.from_address = parseaddr(_header(message, "From"))[1].lower()
    reply_to = _addresses(message, "Reply-To")
    mail.reply_to = reply_to[0][1] if reply_to else None
    mail.recipients = [a for _, a in _addresses(message, "To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")]
    ids = message_ids(_header(message, "Message-ID"))
    mail.message_id = ids[0] if ids else None
    reply_ids = message_ids(_header(message, "In-Reply-To"))
    mail.in_reply_to = reply_ids[0] if reply_ids else None
    mail.references = message_ids(_header(message, "References"))
    try:
        text, html_only, attachments = _body_and_attachments(message)
    except Exception as error:  # a structure the walker cannot follow: keep the headers, say why
        text, html_only, attachments = "", False, []
        mail.reasons.append(f"body could not be read ({type(error).__name__}); ticket made from the headers")
    mail.html_only = html_only
    if mail.size > size_limit:
        mail.attachments_dropped = bool(attachments)
        mail.reasons.append(
            f"message of {mail.size / 1_048_576:.1f} MB exceeds the {size_limit / 1_048_576:.0f} MB limit: "
            "attachments not kept"
        )
        attachments = []
    mail.attachments = attachments
    mail.body, mail.quoted, mail.signature = split_reply(text)
    if not message.keys():
        raise MalformedMail("no header at all: not an email message")
