"""The triage pipeline: small stages, each with one ``run(mail, context)``, in two ordered tuples: ``READING``
(what the mail itself says, no store needed) then ``DECIDING`` (what the store adds).

The order is data; each comment says why a stage sits where it does. ``triage`` only decides: storing the ticket
and queueing mail to send are ``mailroom.store``'s job, so the same pipeline serves the daemon and
``make -s triage``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from mailroom.context import TriageContext
from mailroom.filters.acknowledge import DecideAcknowledgement
from mailroom.filters.auto_reply import DetectAutoReply
from mailroom.filters.bounce import DetectBounce
from mailroom.filters.bulk import DetectBulk
from mailroom.filters.misroute import DetectMisroute, WeighPlaces
from mailroom.filters.no_reply import DetectNoReplySender, RefuseAnonymousMail
from mailroom.filters.redact import RedactCardData
from mailroom.filters.thread import ThreadIntoTicket
from mailroom.filters.trust import TrustOwnMarker
from mailroom.filters.understand import ClassifyTopic, DetectLanguage, LinkAccount, ReadEntities, SetPriority
from mailroom.mail import Mail
from mailroom.parse import parse_mail
from mailroom.view import StoreView


class Stage(Protocol):
    name: str

    def run(self, mail: Mail, context: TriageContext) -> None: ...


# What the mail itself says: no store needed (the offline triage runs these too).
READING: tuple[Stage, ...] = (
    RedactCardData(),  # first: no stage, log line or row below ever sees a card number
    TrustOwnMarker(),  # before the automation checks: our own mail is known by an unforgeable marker
    DetectBounce(),  # before auto-replies: a delivery report is a bounce even if it also looks automatic
    DetectAutoReply(),
    DetectBulk(),
    DetectNoReplySender(),
    RefuseAnonymousMail(),  # after every automation check: only mail that would become a ticket needs a sender
    DetectLanguage(),
    ReadEntities(),  # after the language (it picks the spaCy pipeline)
    ClassifyTopic(),
    SetPriority(),  # after the topic (queue) and the redaction (card count)
    WeighPlaces(),  # after the entities (places, codes, phones) and the language (French is weak evidence)
)
# What the store adds: the ticket a reply or bounce joins, the sender's account, the rate limits.
DECIDING: tuple[Stage, ...] = (
    ThreadIntoTicket(),  # after bounces: a bounce joins the ticket of the mail that bounced
    LinkAccount(),  # before the misroute: the sender's known account is evidence
    DetectMisroute(),  # after the account: the mail's evidence and the account's
    DecideAcknowledgement(),  # last: every other verdict is known
)
STAGES: tuple[Stage, ...] = READING + DECIDING


def read(mail: Mail, context: TriageContext, size_limit: int) -> Mail:
    """Parse ``mail`` and run the stages that need no store; raises ``PermanentMailError`` for a mail that
    cannot be read."""
    parse_mail(mail, size_limit)
    for stage in READING:
        stage.run(mail, context)
    return mail


def decide(mail: Mail, context: TriageContext) -> Mail:
    """Run the stages that consult the store (``context.session``; without one they decide from the mail)."""
    for stage in DECIDING:
        stage.run(mail, context)
    return mail


def triage(mail: Mail, context: TriageContext, size_limit: int) -> Mail:
    """Every stage on one mail: ``read``, then ``decide`` with the store's view of it (when there is a store)."""
    read(mail, context, size_limit)
    if context.session is not None and context.view is None:
        context = replace(context, view=StoreView.load(context.session, [mail], context.now))
    return decide(mail, context)


def report(mail: Mail) -> dict[str, Any]:
    """What ``make -s triage`` prints for one mail."""
    return {
        "language": mail.language,
        "queue": mail.queue if mail.needs_ticket else None,
        "priority": mail.priority if mail.needs_ticket else None,
        "automated": mail.automated if not mail.own_mail else (mail.automated or "auto_reply"),
        "misroute": mail.misroute,
        "misroute_confidence": mail.misroute_confidence,
        "reasons": mail.reasons,
        "acknowledge": mail.acknowledge,
        "text": mail.body or mail.quoted,
        "subject": mail.subject,
        "topic": mail.topic,
        "team": mail.right_team,
        "ticket": mail.ticket_reference,
        "card_numbers": mail.card_numbers,
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size} for a in mail.attachments
        ],
        "attachments_dropped": mail.attachments_dropped,
        "customer": {"name": mail.sender.person or mail.from_name or None, "company": mail.sender.company},
        "entities": [
            {"label": e.label.lower(), "text": e.text, "value": e.value or e.region, "country": e.country}
            for e in mail.entities
            if e.label not in ("MISC", "LOCATION", "PERSON", "ORG")  # who wrote it is "customer"
        ],
    }
