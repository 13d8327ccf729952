"""Senders that cannot or must not get an answer: no-reply addresses, our own and the other team's addresses."""

from __future__ import annotations

import re

from mailroom.context import TriageContext
from mailroom.errors import MalformedMail
from mailroom.mail import Mail

NO_REPLY = re.compile(r"^(no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply|ne[-_.]?pas[-_.]?repondre|nepasrepondre)[^@]*@", re.I)


class DetectNoReplySender:
    name = "no_reply"

    def run(self, mail: Mail, context: TriageContext) -> None:
        sender = (mail.reply_to or mail.from_address or "").lower()
        if not sender:
            mail.no_reply_sender = True
            mail.reasons.append("no sender address: nobody to acknowledge")
        elif NO_REPLY.match(sender):
            mail.no_reply_sender = True
            mail.reasons.append(f"no-reply sender {sender}")
        elif sender in context.own_addresses:
            mail.no_reply_sender = True
            mail.reasons.append(f"sent from our own system address {sender}")


class RefuseAnonymousMail:
    """A customer mail with neither a sender nor a subject (a bare MIME fragment) has nothing a ticket could be
    opened about or answered to: it is quarantined for an agent to look at. Automated mail without them (a bounce
    with ``Return-Path: <>``) needs no ticket and passes."""

    name = "anonymous"

    def run(self, mail: Mail, context: TriageContext) -> None:
        if mail.needs_ticket and not (mail.from_address or mail.subject):
            raise MalformedMail("neither a sender nor a subject: nothing to open a ticket for")
