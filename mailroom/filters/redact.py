"""Card numbers (and security codes, expiry dates near them) out of everything the mailroom keeps or logs.

Runs right after parsing: nothing later (storage, logs, acknowledgements) ever sees the numbers.
"""

from __future__ import annotations

from core.redaction import redact_card_data
from mailroom.context import TriageContext
from mailroom.mail import Mail


class RedactCardData:
    name = "redact"

    def run(self, mail: Mail, context: TriageContext) -> None:
        for field_name in ("subject", "body", "quoted", "signature"):
            redacted = redact_card_data(getattr(mail, field_name))
            if redacted.cards:
                setattr(mail, field_name, redacted.text)
                mail.card_numbers += redacted.cards
        if mail.card_numbers:
            mail.reasons.append(f"{mail.card_numbers} card number(s) removed before storing")
