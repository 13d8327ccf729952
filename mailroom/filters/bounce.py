"""Bounces and delivery reports: multipart/report, message/delivery-status, null or MAILER-DAEMON senders.

The returned message's Message-ID (in the attached message/rfc822 or text/rfc822-headers part) ties a bounce to
the acknowledgement that bounced, hence to its ticket; a permanent failure (status 5.x.x) suppresses further
acknowledgements to that address for a while.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import HeaderParser

from mailroom.context import TriageContext
from mailroom.mail import BOUNCE, Mail
from mailroom.parse import _header, header_values, message_ids

BOUNCE_SENDERS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon|bounces?)(\+.*)?@", re.I)
BOUNCE_SUBJECTS = re.compile(
    r"(?i)(undeliverable|undelivered mail|delivery status notification|delivery (has )?failed|mail delivery "
    r"(failed|failure|subsystem)|returned mail|failure notice|could not be delivered|non remis|échec de (la )?remise|"
    r"non distribuable|message non délivré|rapport de non-remise)"
)
STATUS = re.compile(r"(?im)^status:\s*([245])\.\d{1,3}\.\d{1,3}")
FINAL_RECIPIENT = re.compile(r"(?im)^(?:final|original)-recipient:\s*(?:rfc822;)?\s*<?([^>\s]+@[^>\s]+)>?")


def _returned_message_id(message: Message) -> str | None:
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                ids = message_ids(_header(inner, "Message-ID"))
                if ids:
                    return ids[0]
        if content_type in ("text/rfc822-headers", "text/rfc822-header"):
            raw = part.get_payload(decode=True)
            text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(part.get_payload())
            ids = message_ids(HeaderParser().parsestr(text).get("Message-ID", "") or "")
            if ids:
                return ids[0]
    return None


class DetectBounce:
    name = "bounce"

    def run(self, mail: Mail, context: TriageContext) -> None:
        message = mail.message
        if message is None:
            return
        signs = []
        content_type = message.get_content_type()
        report_type = (message.get_param("report-type") or "") if content_type == "multipart/report" else ""
        if content_type == "multipart/report" and str(report_type).lower() == "disposition-notification":
            return  # a read receipt: auto_reply's business
        if content_type == "multipart/report":
            signs.append(f"multipart/report ({report_type or 'no type'})")
        if any(part.get_content_type() == "message/delivery-status" for part in message.walk()):
            signs.append("a delivery-status part")
        if BOUNCE_SENDERS.match(mail.from_address or ""):
            signs.append(f"sender {mail.from_address}")
        return_path = " ".join(header_values(message, "Return-Path"))
        if return_path.strip() in ("<>", "") and header_values(message, "Return-Path") and BOUNCE_SUBJECTS.search(mail.subject):
            signs.append("null return path")
        if header_values(message, "X-Failed-Recipients"):
            signs.append("X-Failed-Recipients")
        if not signs:
            return  # a subject alone proves nothing: a customer may write about an "undeliverable" invoice
        mail.automated = BOUNCE
        mail.bounce_of = _returned_message_id(message)
        text = mail.raw.decode("utf-8", errors="replace")
        statuses = STATUS.findall(text)
        mail.hard_bounce = "5" in statuses
        recipient = FINAL_RECIPIENT.search(text)
        failed = header_values(message, "X-Failed-Recipients")
        mail.bounced_recipient = (recipient.group(1) if recipient else (failed[0] if failed else None))
        mail.reasons.append("bounce: " + ", ".join(signs) + (" (permanent failure)" if mail.hard_bounce else ""))
