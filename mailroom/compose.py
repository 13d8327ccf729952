"""The mail the mailroom writes: acknowledgements to customers and forwards to the other team.

Texts are in both languages side by side; the customer's language chooses. Every mail carries our loop marker,
``Auto-Submitted: auto-replied`` (or auto-generated for forwards) and ``X-Auto-Response-Suppress: All``, so that
mail systems (ours included) never answer it automatically.

Every mail is one text/plain part in UTF-8, quoted-printable, with headers we write ourselves (non-ASCII names
and subjects as RFC 2047 encoded words, folded below 78 characters): what ``EmailMessage`` would write, at a
twentieth of the cost, which matters when a backlog of mail is acknowledged. ``tests/mailroom`` parses what we
write with the standard library and checks every header and the text.
"""

from __future__ import annotations

import binascii
import re
import secrets
from dataclasses import dataclass
from email.utils import formatdate, quote

from core.db.models import Ticket
from mailroom.context import LOOP_HEADER, TriageContext
from mailroom.filters.thread import strip_prefixes
from mailroom.mail import Mail

TEAM_NAMES = {"CA": {"en": "net2phone Canada Billing", "fr": "Facturation net2phone Canada"},
              "US": {"en": "net2phone USA Billing", "fr": "Facturation net2phone États-Unis"}}
TEXTS: dict[str, dict[str, str]] = {
    "greeting": {"en": "Hello{name},", "fr": "Bonjour{name},"},
    "received": {
        "en": "Thank you for writing to the {team}. We have received your message and opened ticket {reference}; "
              "an agent will reply to you. Please keep {reference} in the subject of any reply.",
        "fr": "Merci d'avoir écrit à l'équipe de {team}. Nous avons bien reçu votre message et ouvert le dossier "
              "{reference} ; un agent vous répondra. Veuillez conserver {reference} dans l'objet de vos réponses.",
    },
    "misrouted": {
        "en": "Your message concerns an account served by the {right_team}, so we have forwarded it to "
              "{right_address}, who will answer you. For next time, please write directly to {right_address}.",
        "fr": "Votre message concerne un compte servi par l'équipe de {right_team} : nous l'avons donc transmis à "
              "{right_address}, qui vous répondra. La prochaine fois, écrivez directement à {right_address}.",
    },
    "faq": {
        "en": "This may already answer your question ({title}):",
        "fr": "Ceci répond peut-être déjà à votre question ({title}) :",
    },
    "too_large": {
        "en": "Your message was larger than {limit} MB, so we kept its text but not its attachments. If we need "
              "them, the agent will tell you how to send them.",
        "fr": "Votre message dépassait {limit} Mo : nous en avons gardé le texte, mais pas les pièces jointes. "
              "Si nous en avons besoin, l'agent vous dira comment nous les faire parvenir.",
    },
    "card": {
        "en": "For your security, we removed the card number from your message. Please never send card details "
              "by email: payments are made in the Billing Portal.",
        "fr": "Pour votre sécurité, nous avons retiré le numéro de carte de votre message. N'envoyez jamais vos "
              "données de carte par courriel : les paiements se font dans le portail de facturation.",
    },
    "signature_CA": {"en": "net2phone Canada Billing\n{address} · 1-877-498-3772, option 4",
                     "fr": "Facturation net2phone Canada\n{address} · 1-877-498-3772, option 4"},
    "signature_US": {"en": "net2phone USA Billing\n{address}", "fr": "Facturation net2phone États-Unis\n{address}"},
    "subject_prefix": {"en": "Re:", "fr": "RE :"},
}
TEAM_LABELS = {"CA": {"en": "net2phone Canada billing team", "fr": "facturation de net2phone Canada"},
               "US": {"en": "net2phone USA billing team", "fr": "facturation de net2phone États-Unis"}}


CRLF = "\r\n"
_ENCODED_WORD_BYTES = 42  # 56 characters in base64: with "=?utf-8?b?" and "?=", 68 per word and line
_ATOM_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')


def encoded_words(text: str) -> str:
    """``text`` as it may appear in a header: as it is when ASCII, else RFC 2047 base64 words, one per folded
    line, split between words where possible (some parsers add a space between adjacent encoded words of a name)."""
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


def _address(name: str, address: str) -> str:
    """A mailbox header value: ``address`` alone, or with its display name (quoted or encoded as needed)."""
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
    for word in value.split(" "):
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


def _text(key: str, language: str, **values: str) -> str:
    return TEXTS[key][language if language in ("en", "fr") else "en"].format(**values)


def new_message_id(kind: str, reference: str, domain: str) -> str:
    """``<ack-BL-7K3Q9D-3f2a1c@billing.net2phone.ca>``: the kind and ticket visible, unguessable."""
    return f"<{kind}-{reference}-{secrets.token_hex(6)}@{domain}>"


def _compose(context: TriageContext, message_id: str, auto: str, headers: dict[str, str], body: str) -> str:
    lines = [
        *(_fold(name, value) for name, value in headers.items()),
        f"Message-ID: {message_id}",
        f"Date: {formatdate(localtime=False)}",
        f"Auto-Submitted: {auto}",
        "X-Auto-Response-Suppress: All",
        f"{LOOP_HEADER}: {context.loop_marker(message_id)}",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
    ]
    return CRLF.join(lines) + CRLF + CRLF + _quoted_printable(body)


def acknowledgement(mail: Mail, ticket: Ticket, context: TriageContext) -> Outgoing:
    """The acknowledgement of a new ticket, in the customer's language, from the inbox they wrote to."""
    language = mail.language if mail.language in ("en", "fr") else "en"
    sender = context.settings.team_address(mail.team)
    recipient = (mail.reply_to or mail.from_address).lower()
    message_id = new_message_id("ack", str(ticket.reference), sender.split("@")[1])
    subject = strip_prefixes(mail.subject) or {"en": "your message", "fr": "votre message"}[language]
    headers = {
        "From": _address(TEAM_NAMES[mail.team][language], sender),
        "To": _address(mail.from_name, recipient),
        "Subject": encoded_words(f"{_text('subject_prefix', language)} [{ticket.reference}] {subject}"),
    }
    if mail.message_id:
        headers["In-Reply-To"] = mail.message_id
        headers["References"] = " ".join([*mail.references[-10:], mail.message_id])
    name = f" {mail.from_name.split()[0]}" if mail.from_name.strip() else ""
    paragraphs = [
        _text("greeting", language, name=name),
        _text("received", language, team=TEAM_LABELS[mail.team][language], reference=str(ticket.reference)),
    ]
    if mail.misroute in ("to_us", "to_ca"):
        right = mail.right_team
        paragraphs.append(_text("misrouted", language, right_team=TEAM_LABELS[right][language],
                                right_address=context.settings.team_address(right)))
    article = context.articles.get(mail.topic or "")
    if article is not None and mail.misroute not in ("to_us", "to_ca") and mail.team == "CA":
        paragraphs.append(f"{_text('faq', language, title=article.title[language])}\n{article.answer[language]}")
    if mail.attachments_dropped:
        paragraphs.append(_text("too_large", language, limit=str(context.settings.mail_size_limit_mb)))
    if mail.card_numbers:
        paragraphs.append(_text("card", language))
    paragraphs.append(_text(f"signature_{mail.team}", language, address=sender))
    raw = _compose(context, message_id, "auto-replied", headers, "\n\n".join(paragraphs) + "\n")
    return Outgoing(message_id, headers["From"], recipient, raw)


def forward(mail: Mail, ticket: Ticket, context: TriageContext, reasons: list[str]) -> Outgoing:
    """A misrouted mail, forwarded to the team it belongs to with a note: the evidence, and the redacted text."""
    sender = context.settings.team_address(mail.team)
    recipient = context.settings.team_address(mail.right_team)
    message_id = new_message_id("fwd", str(ticket.reference), sender.split("@")[1])
    headers = {
        "From": _address("net2phone billing mailroom", sender),
        "To": recipient,
        "Reply-To": _address(mail.from_name, mail.reply_to or mail.from_address),
        "Subject": encoded_words(f"[Misrouted {ticket.reference}] {strip_prefixes(mail.subject)}"),
    }
    note = (
        f"This mail reached {sender} but belongs to your team (confidence {mail.misroute_confidence:.0%}). "
        f"The customer has been told to write to {recipient}.\n"
        + "".join(f"- {reason}\n" for reason in reasons)
        + f"\nFrom: {mail.from_name} <{mail.from_address}>\nSubject: {mail.subject}\n"
        + (f"Message-ID: {mail.message_id}\n" if mail.message_id else "")
        + ("\n(Card data in the original was removed.)\n" if mail.card_numbers else "")
        + f"\n{mail.body}\n"
    )
    return Outgoing(message_id, headers["From"], recipient, _compose(context, message_id, "auto-generated", headers, note))
