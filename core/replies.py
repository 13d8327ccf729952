"""The mail an agent's action sends: a reply in the customer's thread, and for a misroute an agent confirmed, the
forward to the right team and the notice that tells the customer.

A reply comes From the team's address, goes to the customer, carries ``In-Reply-To`` and ``References`` of their
last message (their mail client threads it) and keeps the ticket reference in the subject (ours threads their
answer); it is signed with the agent's name and the team's signature, in the language the agent chose (the
ticket's by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
from core.references import strip_prefixes, ticket_reference_in
from core.settings import Settings

MISROUTED = {
    "en": "Your message concerns an account served by the {right_team}, so we have forwarded it to "
          "{right_address}, who will answer you. For next time, please write directly to {right_address}.",
    "fr": "Votre message concerne un compte servi par l'équipe de {right_team} : nous l'avons donc transmis à "
          "{right_address}, qui vous répondra. La prochaine fois, écrivez directement à {right_address}.",
}
GREETING = {"en": "Hello{name},", "fr": "Bonjour{name},"}


@dataclass(frozen=True)
class Thread:
    """Where a reply goes in the customer's thread: the Message-ID of their last message and what it referred to."""

    last_message_id: str | None
    in_reply_to: str | None

    @property
    def references(self) -> str:
        return " ".join(i for i in (self.in_reply_to, self.last_message_id) if i)


def misrouted_paragraph(right_team: str, language: str, settings: Settings) -> str:
    """The words that tell a customer which team serves them, and its address."""
    language = language_or_default(language)
    return MISROUTED[language].format(right_team=TEAM_LABELS[right_team][language],
                                      right_address=settings.team_address(right_team))


def reply_subject(ticket: Any, language: str) -> str:
    """"Re: [BL-7K3Q9D] <their subject>" (the reference once, whatever the subject held already)."""
    subject = strip_prefixes(str(ticket.subject))
    if ticket_reference_in(subject) != ticket.reference:
        subject = f"[{ticket.reference}] {subject}"
    return f"{REPLY_PREFIX[language_or_default(language)]} {subject}".strip()


def agent_reply(ticket: Any, thread: Thread, agent_name: str, text: str, language: str, settings: Settings,
                secret: str) -> Outgoing:
    """An agent's reply to the customer of ``ticket``, in ``language``."""
    language = language_or_default(language)
    sender = settings.team_address(str(ticket.team))
    message_id = new_message_id("reply", str(ticket.reference), sender.split("@")[1])
    headers = {
        "From": format_address(TEAM_NAMES[str(ticket.team)][language], sender),
        "To": format_address(str(ticket.customer_name or ""), str(ticket.customer_email)),
        "Subject": encoded_words(reply_subject(ticket, language)),
    }
    if thread.last_message_id:
        headers["In-Reply-To"] = thread.last_message_id
        headers["References"] = thread.references
    body = f"{text.strip()}\n\n{agent_name}\n{signature(str(ticket.team), language, sender)}\n"
    return Outgoing(message_id, headers["From"], str(ticket.customer_email),
                    compose(secret, message_id, None, headers, body), body)


def misroute_notice(ticket: Any, right_team: str, thread: Thread, settings: Settings, secret: str) -> Outgoing:
    """The customer is told that their mail went to the team that serves them (a misroute an agent confirmed)."""
    language = language_or_default(str(ticket.language))
    sender = settings.team_address(str(ticket.team))
    message_id = new_message_id("notice", str(ticket.reference), sender.split("@")[1])
    headers = {
        "From": format_address(TEAM_NAMES[str(ticket.team)][language], sender),
        "To": format_address(str(ticket.customer_name or ""), str(ticket.customer_email)),
        "Subject": encoded_words(reply_subject(ticket, language)),
    }
    if thread.last_message_id:
        headers["In-Reply-To"] = thread.last_message_id
        headers["References"] = thread.references
    name = f" {str(ticket.customer_name).split()[0]}" if str(ticket.customer_name or "").strip() else ""
    body = (f"{GREETING[language].format(name=name)}\n\n{misrouted_paragraph(right_team, language, settings)}\n\n"
            f"{signature(str(ticket.team), language, sender)}\n")
    return Outgoing(message_id, headers["From"], str(ticket.customer_email),
                    compose(secret, message_id, "auto-replied", headers, body), body)


def misroute_forward(ticket: Any, right_team: str, reasons: list[str], customer_text: str, agent_name: str,
                     settings: Settings, secret: str) -> Outgoing:
    """The customer's mail, forwarded to the team it belongs to with the evidence (confirmed by an agent)."""
    sender = settings.team_address(str(ticket.team))
    recipient = settings.team_address(right_team)
    message_id = new_message_id("fwd", str(ticket.reference), sender.split("@")[1])
    headers = {
        "From": format_address("net2phone billing mailroom", sender),
        "To": recipient,
        "Reply-To": format_address(str(ticket.customer_name or ""), str(ticket.customer_email)),
        "Subject": encoded_words(f"[Misrouted {ticket.reference}] {strip_prefixes(str(ticket.subject))}"),
    }
    note = (
        f"This mail reached {sender} but belongs to your team: {agent_name} confirmed it. The customer has been "
        f"told to write to {recipient}.\n" + "".join(f"- {reason}\n" for reason in reasons)
        + f"\nFrom: {ticket.customer_name or ''} <{ticket.customer_email}>\nSubject: {ticket.subject}\n"
        + f"\n{customer_text}\n"
    )
    return Outgoing(message_id, headers["From"], recipient, compose(secret, message_id, "auto-generated", headers, note),
                    note)
