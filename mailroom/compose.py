"""The mail the mailroom writes: acknowledgements to customers and forwards to the other team.

Texts are in both languages side by side; the customer's language chooses. The wire format, the teams' names
and the loop marker are the core's (``core.compose``), shared with the agents' replies.
"""

from __future__ import annotations

from core.compose import (
    REPLY_PREFIX,
    TEAM_LABELS,
    TEAM_NAMES,
    Outgoing,
    compose,
    encoded_words,
    format_address,
    language_or_default,
    new_message_id,
    signature,
)
from core.db.models import Ticket
from core.references import strip_prefixes
from core.replies import GREETING, misrouted_paragraph
from mailroom.context import TriageContext
from mailroom.mail import Mail

TEXTS: dict[str, dict[str, str]] = {
    "received": {
        "en": "Thank you for writing to the {team}. We have received your message and opened ticket {reference}; "
              "an agent will reply to you. Please keep {reference} in the subject of any reply.",
        "fr": "Merci d'avoir écrit à l'équipe de {team}. Nous avons bien reçu votre message et ouvert le dossier "
              "{reference} ; un agent vous répondra. Veuillez conserver {reference} dans l'objet de vos réponses.",
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
}


def _text(key: str, language: str, **values: str) -> str:
    return TEXTS[key][language_or_default(language)].format(**values)


def acknowledgement(mail: Mail, ticket: Ticket, context: TriageContext) -> Outgoing:
    """The acknowledgement of a new ticket, in the customer's language, from the inbox they wrote to."""
    language = language_or_default(mail.language)
    sender = context.settings.team_address(mail.team)
    recipient = (mail.reply_to or mail.from_address).lower()
    message_id = new_message_id("ack", str(ticket.reference), sender.split("@")[1])
    subject = strip_prefixes(mail.subject) or {"en": "your message", "fr": "votre message"}[language]
    headers = {
        "From": format_address(TEAM_NAMES[mail.team][language], sender),
        "To": format_address(mail.from_name, recipient),
        "Subject": encoded_words(f"{REPLY_PREFIX[language]} [{ticket.reference}] {subject}"),
    }
    if mail.message_id:
        headers["In-Reply-To"] = mail.message_id
        headers["References"] = " ".join([*mail.references[-10:], mail.message_id])
    name = f" {mail.from_name.split()[0]}" if mail.from_name.strip() else ""
    paragraphs = [
        GREETING[language].format(name=name),
        _text("received", language, team=TEAM_LABELS[mail.team][language], reference=str(ticket.reference)),
    ]
    if mail.misroute in ("to_us", "to_ca"):
        paragraphs.append(misrouted_paragraph(mail.right_team, language, context.settings))
    article = context.articles.get(mail.topic or "")
    if article is not None and mail.misroute not in ("to_us", "to_ca") and mail.team == "CA":
        paragraphs.append(f"{_text('faq', language, title=article.title[language])}\n{article.answer[language]}")
    if mail.attachments_dropped:
        paragraphs.append(_text("too_large", language, limit=str(context.settings.mail_size_limit_mb)))
    if mail.card_numbers:
        paragraphs.append(_text("card", language))
    paragraphs.append(signature(mail.team, language, sender))
    body = "\n\n".join(paragraphs) + "\n"
    return Outgoing(message_id, headers["From"], recipient,
                    compose(context.secret, message_id, "auto-replied", headers, body), body)


def forward(mail: Mail, ticket: Ticket, context: TriageContext, reasons: list[str]) -> Outgoing:
    """A misrouted mail, forwarded to the team it belongs to with a note: the evidence, and the redacted text."""
    sender = context.settings.team_address(mail.team)
    recipient = context.settings.team_address(mail.right_team)
    message_id = new_message_id("fwd", str(ticket.reference), sender.split("@")[1])
    headers = {
        "From": format_address("net2phone billing mailroom", sender),
        "To": recipient,
        "Reply-To": format_address(mail.from_name, mail.reply_to or mail.from_address),
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
    return Outgoing(message_id, headers["From"], recipient,
                    compose(context.secret, message_id, "auto-generated", headers, note), note)
