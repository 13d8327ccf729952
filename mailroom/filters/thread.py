"""Replies join their ticket: In-Reply-To and References against the messages of our tickets and the mail we
sent, then the ticket reference in the subject (whatever the reply and forward prefixes, English or French,
with or without the French space before the colon). A bounce joins the ticket whose acknowledgement bounced."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mailroom.mail import Mail

if TYPE_CHECKING:  # the context imports the store view, which imports this module's patterns
    from mailroom.context import TriageContext

TICKET_REFERENCE = re.compile(r"\[?#?\b(BL-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6})\b\]?")
# "Re:", "RE :", "Réf. :", "TR :", "Fwd:", "FW :", "AW:", "Re[2]:", "Réponse :", "Transféré :", repeated.
SUBJECT_PREFIX = re.compile(
    r"^\s*(?:re|r[ée]f\.?|r[ée]p(?:onse)?|tr|transf[ée]r[ée]|fwd?|fw|aw|sv|wg|vs|antw)(?:\s*\[\d+\])?\s*[:：]\s*",
    re.IGNORECASE,
)


def strip_prefixes(subject: str) -> str:
    """The subject without its reply and forward prefixes."""
    previous = None
    while previous != subject:
        previous, subject = subject, SUBJECT_PREFIX.sub("", subject, count=1)
    return subject.strip()


class ThreadIntoTicket:
    name = "thread"

    def run(self, mail: Mail, context: TriageContext) -> None:
        reference = TICKET_REFERENCE.search(strip_prefixes(mail.subject))
        view = context.view
        if view is None:
            if reference:
                mail.ticket_reference = reference.group(1)
                mail.reasons.append(f"subject names ticket {mail.ticket_reference}")
            return
        for message_id in [i for i in [mail.bounce_of, mail.in_reply_to, *reversed(mail.references)] if i]:
            ticket = view.tickets_by_message_id.get(message_id)
            if ticket is not None:
                self._join(mail, ticket.id, ticket.reference, f"replies to {message_id}")
                return
        if reference and reference.group(1) in view.tickets_by_reference:
            ticket = view.tickets_by_reference[reference.group(1)]
            self._join(mail, ticket.id, ticket.reference, f"subject names ticket {ticket.reference}")
        elif reference:
            # A reply naming a ticket this store does not hold (another installation's, a typo): it opens a
            # ticket of its own, but the customer already has a reference and gets no second acknowledgement.
            mail.ticket_reference = reference.group(1)
            mail.reasons.append(f"subject names ticket {mail.ticket_reference}, which is not in the store")

    @staticmethod
    def _join(mail: Mail, ticket_id: int, reference: str, why: str) -> None:
        mail.ticket_id, mail.ticket_reference = ticket_id, reference
        mail.reasons.append(f"joins ticket {reference}: {why}")
