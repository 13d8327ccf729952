"""Language, topic (queue), priority and account of a customer's mail."""

from __future__ import annotations

import re

from core.nlp import analyse, find_sender, last_block
from core.text import fold_accents
from mailroom.context import TriageContext
from mailroom.mail import Mail
from mailroom.parse import request_words

# Payment trouble comes first: money not received, service at risk (English and French, accent-folded).
URGENT = re.compile(
    r"\b(declined|refused|rejected|bounced|past due|overdue|late fee|suspend\w*|disconnect\w*|cut off|collections?|"
    r"refus\w*|rejet\w*|en souffrance|en retard|retard de paiement|suspen\w*|coup\w* (le|mon|notre) service|"
    r"recouvrement|debranch\w*)\b"
)


class DetectLanguage:
    name = "language"

    def run(self, mail: Mail, context: TriageContext) -> None:
        text = f"{mail.subject}\n{mail.body}" if mail.body else f"{mail.subject}\n{mail.quoted[:2000]}"
        guess = context.detector.detect(text[:5000])
        mail.language = guess.language
        mail.reasons.append(f"language {guess.language} ({guess.confidence:.2f})")


class ReadEntities:
    """The understanding layer's reading of the mail's own words (not what it quotes; our own addresses left out),
    and who wrote it: the person and company (``core.nlp``)."""

    name = "entities"

    def run(self, mail: Mail, context: TriageContext) -> None:
        if not mail.needs_ticket:
            return
        signature = mail.signature or last_block(mail.body)
        text = "\n".join(part for part in (mail.subject, mail.body, mail.signature) if part)
        for address in context.own_addresses:
            text, signature = text.replace(address, " "), signature.replace(address, " ")
        mail.own_words, mail.entities = text, analyse(text, mail.language).entities
        # Where the sender's own contact block starts in those words (their phone, their address).
        mail.signature_start = text.rfind(signature) if signature else len(text)
        mail.sender = find_sender(mail.from_name, signature, mail.language)


class ClassifyTopic:
    name = "topic"

    def run(self, mail: Mail, context: TriageContext) -> None:
        if not mail.needs_ticket:
            return
        text = request_words(mail.body) or mail.body or mail.quoted[:2000]  # not the signature's words
        decision = context.topics.classify(mail.subject, text, mail.language)
        mail.queue, mail.topic, mail.topic_confidence = decision.queue, decision.article_id, decision.confidence
        mail.reasons.append(decision.reason)


class SetPriority:
    name = "priority"

    def run(self, mail: Mail, context: TriageContext) -> None:
        if not mail.needs_ticket:
            return
        text = fold_accents(f"{mail.subject}\n{mail.body}".lower())
        if mail.card_numbers:
            mail.priority = "urgent"
            mail.reasons.append("priority urgent: card details sent by mail")
        elif mail.queue == "payments" and URGENT.search(text):
            mail.priority = "urgent"
            mail.reasons.append("priority urgent: a declined or past-due payment")
        elif URGENT.search(text):
            mail.priority = "high"
            mail.reasons.append("priority high: payment trouble mentioned")


class LinkAccount:
    name = "account"

    def run(self, mail: Mail, context: TriageContext) -> None:
        account = context.view.accounts.get(mail.from_address.lower()) if context.view is not None else None
        if account is not None:
            mail.account_id, mail.account_region, mail.account_number = account.id, account.region, account.number
            mail.reasons.append(f"sender known: account {account.number} ({account.region})")
