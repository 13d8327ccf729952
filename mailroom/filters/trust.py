"""Trust first: our loop marker is honoured only when its keyed hash matches, otherwise it is stripped.

A customer could copy ``X-Billing-Loop`` into a mail to make us ignore it; the marker is an HMAC of the
Message-ID with our secret, so only mail we sent carries a valid one. Our own mail coming back (an acknowledgement
bounced or reflected by an auto-responder) is recognised here and creates no ticket.
"""

from __future__ import annotations

from core.compose import LOOP_HEADER
from mailroom.context import TriageContext
from mailroom.mail import Mail
from mailroom.parse import header_values


class TrustOwnMarker:
    name = "trust"

    def run(self, mail: Mail, context: TriageContext) -> None:
        if mail.message is None:
            return
        markers = header_values(mail.message, LOOP_HEADER)
        if not markers:
            return
        if any(context.is_own_marker(value, mail.message_id) for value in markers):
            mail.own_mail = True
            mail.reasons.append("our own mail came back (valid loop marker)")
            return
        del mail.message[LOOP_HEADER]
        mail.reasons.append("an unverifiable loop marker was removed")
