"""Replies join their ticket: In-Reply-To and References against the messages of our tickets and the mail we
sent, then the ticket reference in the subject (whatever the reply and forward prefixes, English or French,
with or without the French space before the colon). A bounce joins the ticket whose acknowledgement bounced."""

from __future__ import annotations

from core.references import ticket_reference_in
from mailroom.context import TriageContext
from mailroom.mail import Mail


class ThreadIntoTicket:
    name = "thread"

    def run(self, mail: Mail, context: TriageContext) -> None:
        reference = ticket_reference_in(mail.subject)
        view = context.view
        if view is None:
            if reference:
                mail.ticket_reference = reference
                mail.reasons.append(f"subject names ticket {mail.ticket_reference}")
            return
        for message_id in [i for i in [mail.bounce_of, mail.in_reply_to, *reversed(mail.references)] if i]:
            ticket = view.tickets_by_message_id.get(message_id)
            if ticket is not None:
                self._join(mail, ticket.id, ticket.reference, f"replies to {message_id}")
                return
        if reference and reference in view.tickets_by_reference:
            ticket = view.tickets_by_reference[reference]
            self._join(mail, ticket.id, ticket.reference, f"subject names ticket {ticket.reference}")
        elif reference:
            # A reply naming a ticket this store does not hold (another installation's, a typo): it opens a
            # ticket of its own, but the customer already has a reference and gets no second acknowledgement.
            mail.ticket_reference = reference
            mail.reasons.append(f"subject names ticket {mail.ticket_reference}, which is not in the store")

    @staticmethod
    def _join(mail: Mail, ticket_id: int, reference: str, why: str) -> None:
        mail.ticket_id, mail.ticket_reference = ticket_id, reference
        mail.reasons.append(f"joins ticket {reference}: {why}")
