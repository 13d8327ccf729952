"""Whether the customer gets an automatic acknowledgement, decided last, when every other verdict is known.

Never to automated mail, our own mail, no-reply or system addresses, senders who asked for none, or replies to an
existing ticket; never beyond the rate limits (per sender per hour and per day, and overall per hour, as Zammad
does, so that two auto-responders can never loop); never to an address that hard-bounced recently.
"""

from __future__ import annotations

from mailroom.context import TriageContext
from mailroom.mail import Mail


class DecideAcknowledgement:
    name = "acknowledge"

    def run(self, mail: Mail, context: TriageContext) -> None:
        mail.acknowledge = False
        if not mail.needs_ticket or mail.no_reply_sender or mail.ack_suppressed_by_sender:
            return
        if mail.ticket_id is not None or mail.ticket_reference is not None:
            mail.reasons.append("no acknowledgement: a reply to an existing ticket")
            return
        recipient = (mail.reply_to or mail.from_address).lower()
        view = context.view
        if view is not None:
            if recipient in view.suppressed:
                mail.reasons.append(f"no acknowledgement: {recipient} is suppressed ({view.suppressed[recipient]})")
                return
            limit = view.rate_limit(recipient, context.settings)
            if limit is not None:
                mail.reasons.append(f"no acknowledgement: {limit}")
                return
        mail.acknowledge = True
