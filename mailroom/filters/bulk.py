"""Bulk and list mail: newsletters, mailing lists, marketing (``Precedence: bulk|list|junk``, ``List-*``)."""

from __future__ import annotations

from mailroom.context import TriageContext
from mailroom.mail import BULK, Mail
from mailroom.parse import header_values

LIST_HEADERS = ("List-Id", "List-Unsubscribe", "List-Post", "List-Help", "List-Subscribe", "List-Owner")
BULK_PRECEDENCE = {"bulk", "list", "junk"}
BULK_MAILERS = ("X-Campaign", "X-Mailchimp-Campaign", "X-MC-User", "X-SG-EID", "X-Mailgun-Campaign-Id", "Feedback-ID")


class DetectBulk:
    name = "bulk"

    def run(self, mail: Mail, context: TriageContext) -> None:
        message = mail.message
        if message is None or mail.automated:
            return
        signs = [f"Precedence: {v}" for v in header_values(message, "Precedence") if v.strip().lower() in BULK_PRECEDENCE]
        signs += [name for name in LIST_HEADERS if header_values(message, name)]
        signs += [name for name in BULK_MAILERS if header_values(message, name)]
        if signs:
            mail.automated = BULK
            mail.reasons.append("bulk mail: " + ", ".join(signs))
