"""The mailroom's effects on a real store (SQLite and PostgreSQL): one ticket per mail, replies threaded,
automated mail without tickets, bounces joined to their ticket, acknowledgements within their limits, quarantine,
and the outbox through a real SMTP server that may be down."""

from __future__ import annotations

from collections.abc import Iterator

import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from email import message_from_string, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.db.models import InboundMail, MailSuppression, OutboxMail, Ticket, TicketAttachment, TicketMessage
from core.settings import Settings
from mailroom.config import SmtpConfig
from mailroom.context import TriageContext
from mailroom.maildir import MaildirSource
from mailroom.outbox import FolderTransport, SmtpTransport, send_pending
from mailroom.pipeline import report
from mailroom.readers import PARALLEL_FROM, Readers, ToRead
from mailroom.service import Processor, process_maildir
from mailroom.mail import SourceKey
from tests.mailroom.conftest import DATA, EXPECTED
from tests.mailroom.helpers import copy_of, counts, make_mail, outbox
from tests.mailroom.servers import SmtpServer


@pytest.fixture
def processor(sessions: sessionmaker[Session], base_context: TriageContext,
              mail_settings: Settings) -> Iterator[Processor]:
    processor = Processor(mail_settings, sessions, base_context)
    yield processor
    processor.close()


def key() -> SourceKey:
    return SourceKey(f"test-{uuid.uuid4().hex[:8]}", 7, 1)


def customer() -> str:
    return f"client-{uuid.uuid4().hex[:8]}@example.ca"


def test_a_mail_becomes_one_ticket_whatever_happens_twice(processor: Processor, sessions: sessionmaker[Session]) -> None:
    raw = make_mail(customer(), "Carte refusée", "Bonjour, ma carte de crédit est refusée quand je l'ajoute au portail.")
    first = key()
    before = counts(sessions)
    assert processor.handle(raw, first, "CA").outcome == "ticket"
    assert processor.handle(raw, first, "CA").outcome == "already"  # a restart: same mailbox, UIDVALIDITY, UID
    assert processor.handle(raw, replace(first, uid=2), "CA").outcome == "duplicate"  # same Message-ID, new UID
    after = counts(sessions)
    assert (after["tickets"] - before["tickets"], after["acks"] - before["acks"]) == (1, 1)


def test_replies_join_their_ticket_by_headers_or_subject(processor: Processor, sessions: sessionmaker[Session]) -> None:
    sender = customer()
    processor.handle(make_mail(sender, "Invoice copy", "Could I get a copy of my March invoice?"), key(), "CA")
    ack = [row for row in outbox(sessions) if row.recipient == sender][0]
    reference = sa.select(Ticket.reference).where(Ticket.id == ack.ticket_id)
    with sessions() as session:
        reference_value = session.execute(reference).scalar_one()
    reply = make_mail(sender, f"Re: [{reference_value}] Invoice copy", "Thanks, and the April one too?",
                      In_Reply_To=ack.message_id)
    assert processor.handle(reply, key(), "CA").outcome == "threaded"
    for subject in (f"RE : [{reference_value}] Invoice copy", f"TR : Réf. : {reference_value} facture"):
        assert processor.handle(make_mail(sender, subject, "Et celle de mai?"), key(), "CA").outcome == "threaded"
    assert len([row for row in outbox(sessions) if row.recipient == sender]) == 1  # no acknowledgement of replies


def test_our_own_acknowledgement_coming_back_makes_no_ticket_but_a_forged_marker_does(
    processor: Processor, sessions: sessionmaker[Session]
) -> None:
    processor.handle(make_mail(customer(), "Crédit", "Je ne vois pas mon crédit dans l'historique."), key(), "CA")
    ack = outbox(sessions)[-1]
    assert processor.handle(ack.raw.encode(), key(), "CA").outcome == "own_mail"
    forged = make_mail(customer(), "Question", "What cards do you take?", X_Billing_Loop=ack.raw.split("X-Billing-Loop: ")[1].split("\n")[0])
    assert processor.handle(forged, key(), "CA").outcome == "ticket"


def dsn(original_message_id: str, recipient: str, status: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.ca (Mail Delivery System)\n"
        "To: billing@net2phone.ca\nSubject: Undelivered Mail Returned to Sender\n"
        f"Message-ID: <{uuid.uuid4().hex}@mx.example.ca>\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nThis is the mail system: your message could not be delivered.\n"
        f"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.ca\n\n"
        f"Final-Recipient: rfc822; {recipient}\nAction: failed\nStatus: {status}\n"
        f"--B\nContent-Type: text/rfc822-headers\n\nMessage-ID: {original_message_id}\nSubject: Re: your message\n"
        "--B--\n"
    ).encode()


def test_a_hard_bounce_joins_its_ticket_and_stops_acknowledgements(
    processor: Processor, sessions: sessionmaker[Session]
) -> None:
    sender = customer()
    processor.handle(make_mail(sender, "Auto Pay", "When will Auto Pay charge my new card?"), key(), "CA")
    ack = outbox(sessions)[-1]
    assert processor.handle(dsn(ack.message_id, sender, "5.1.1"), key(), "CA").outcome == "bounce"
    with sessions() as session:
        assert session.get(MailSuppression, sender) is not None
        joined = session.execute(sa.select(InboundMail.ticket_id).order_by(InboundMail.id.desc()).limit(1)).scalar_one()
    assert joined == ack.ticket_id
    processor.handle(make_mail(sender, "Again", "Another question about my invoice PDF."), key(), "CA")
    assert len([row for row in outbox(sessions) if row.recipient == sender]) == 1


@pytest.mark.parametrize("name", ["059-en-auto-reply-outlook-oof.eml", "061-fr-absent-du-bureau-gmail.eml",
                                  "066-en-bulk-newsletter-mailchimp.eml", "064-en-bounce-exchange-ndr-us.eml"])
def test_automated_mail_makes_no_ticket_and_gets_no_answer(
    processor: Processor, sessions: sessionmaker[Session], name: str
) -> None:
    before = counts(sessions)
    assert processor.handle(copy_of((DATA / name).read_bytes()), key(), None).outcome in {"auto_reply", "bulk", "bounce"}
    after = counts(sessions)
    assert (after["tickets"], after["acks"]) == (before["tickets"], before["acks"])


def test_acknowledgements_are_rate_limited_per_sender(processor: Processor, sessions: sessionmaker[Session],
                                                      mail_settings: Settings) -> None:
    sender = customer()
    for number in range(mail_settings.ack_per_sender_hour + 2):
        processor.handle(make_mail(sender, f"Question {number}", "Where do I find my call detail records?"), key(), "CA")
    assert len([row for row in outbox(sessions) if row.recipient == sender]) == mail_settings.ack_per_sender_hour


def test_a_confident_misroute_is_forwarded_and_the_customer_told(processor: Processor, sessions: sessionmaker[Session]) -> None:
    raw = copy_of((DATA / "039-en-misroute-texas-sales-tax.eml").read_bytes())
    assert processor.handle(raw, key(), None).outcome == "ticket"
    forward, ack = outbox(sessions)[-2:]
    assert (forward.kind, forward.recipient) == ("forward", "billing@net2phone.com")
    assert ack.kind == "ack" and "billing@net2phone.com" in message_from_string(ack.raw, policy=policy.default).get_content()


def test_a_malformed_message_is_quarantined_and_the_rest_goes_on(
    tmp_path: Path, processor: Processor, sessions: sessionmaker[Session]
) -> None:
    source = MaildirSource(tmp_path / "inbox", name=f"maildir-{uuid.uuid4().hex[:6]}")
    (source.root / "new" / "1.eml").write_bytes(make_mail(customer(), "One", "What cards do you accept?"))
    (source.root / "new" / "2.eml").write_bytes(b"\x00\x01 not a mail at all \xff\xfe")
    (source.root / "new" / "3.eml").write_bytes(make_mail(customer(), "Three", "Comment ajouter un utilisateur?"))
    assert process_maildir(source, processor) == 3
    assert [p.name for p in (source.root / "quarantine").iterdir()] == ["2.eml"]
    assert len(list((source.root / "cur").iterdir())) == 2 and not list((source.root / "new").iterdir())
    with sessions() as session:
        rows = session.execute(sa.select(InboundMail.outcome, InboundMail.reason).where(InboundMail.mailbox == source.name)).all()
    assert sorted(outcome for outcome, _ in rows) == ["quarantined", "ticket", "ticket"]
    assert any(outcome == "quarantined" and reason for outcome, reason in rows)


def test_the_outbox_waits_for_a_smtp_server_that_is_down(processor: Processor, sessions: sessionmaker[Session]) -> None:
    smtp = SmtpServer.start()
    smtp.stop()
    sender = customer()
    processor.handle(make_mail(sender, "Facture en PDF", "Bonjour, où sont mes factures PDF de l'an passé?"), key(), "CA")
    transport = SmtpTransport(SmtpConfig(host="127.0.0.1", port=smtp.port, security="plain"), timeout=5)
    assert send_pending(sessions, transport) == 0
    [row] = [r for r in outbox(sessions) if r.recipient == sender]
    retry_at = row.next_attempt_at if row.next_attempt_at.tzinfo else row.next_attempt_at.replace(tzinfo=timezone.utc)
    assert (row.status, row.attempts) == ("pending", 1) and retry_at > datetime.now(timezone.utc) + timedelta(seconds=10)
    smtp.resume()
    try:
        with sessions() as session:
            session.execute(sa.update(OutboxMail).where(OutboxMail.id == row.id).values(next_attempt_at=datetime.now(timezone.utc)))
            session.commit()
        assert send_pending(sessions, transport) >= 1
        [(mail_from, recipients, message)] = [m for m in smtp.recorder.wait_for(1) if sender in m[1]]
    finally:
        smtp.stop()
    assert message["Auto-Submitted"] == "auto-replied" and message["X-Auto-Response-Suppress"] == "All"
    assert message["In-Reply-To"] and "BL-" in message["Subject"]
    assert "Nous avons bien reçu votre message" in message.get_content()


def test_the_embedded_outbox_is_a_folder_of_eml_files(processor: Processor, sessions: sessionmaker[Session], tmp_path: Path) -> None:
    processor.handle(make_mail(customer(), "Bill To", "How do I change the Bill To name on my invoices?"), key(), "CA")
    assert send_pending(sessions, FolderTransport(tmp_path / "outbox")) >= 1
    written = list((tmp_path / "outbox").glob("*.eml"))
    assert written and all(message_from_string(p.read_text(), policy=policy.default)["Auto-Submitted"] for p in written)


def test_reader_processes_read_a_backlog_as_the_mailroom_itself_does(base_context: TriageContext,
                                                                     mail_settings: Settings) -> None:
    items = [ToRead(copy_of((DATA / name).read_bytes()), None, "ca") for name in sorted(EXPECTED)]
    items.append(ToRead(b"\x00\x01 not a mail at all", None, "ca"))
    assert len(items) >= PARALLEL_FROM
    in_process = Readers(mail_settings, base_context, workers=0).submit(items)()
    readers = Readers(mail_settings, base_context, workers=2)
    try:
        deadline = time.monotonic() + 180
        while not readers.start():
            assert time.monotonic() < deadline, "the reader processes never started"
            time.sleep(0.1)  # polling: the workers load their models (until then a batch is read in-process)
        in_workers = readers.submit(items)()
    finally:
        readers.close()
    assert [r.failure for r in in_workers] == [r.failure for r in in_process]
    assert in_process[-1].failure and not any(r.failure for r in in_process[:-1])
    for item, mine, theirs in zip(items, in_process, in_workers):
        assert theirs.mail.raw == item.raw
        assert report(theirs.mail) == report(mine.mail)
        assert theirs.mail.place_evidence == mine.mail.place_evidence


def test_a_batch_sees_what_its_earlier_mails_did(processor: Processor, sessions: sessionmaker[Session]) -> None:
    sender, mailbox = customer(), f"batch-{uuid.uuid4().hex[:6]}"
    first = make_mail(sender, "Crédit manquant", "Je ne vois pas le crédit promis sur ma facture.")
    first_id = message_from_string(first.decode(), policy=policy.default)["Message-ID"]
    follow_up = make_mail(sender, "Crédit manquant (suite)", "J'oubliais : c'était pour la panne du 3 mars.",
                          In_Reply_To=first_id)
    more = [make_mail(sender, f"Autre question {n}", "Comment exporter les appels de juin?") for n in range(4)]
    messages = [first, follow_up, first, *more]
    outcomes = processor.handle_batch([(raw, SourceKey(mailbox, 1, uid)) for uid, raw in enumerate(messages, 1)], "CA")
    # The follow-up joins the ticket opened two lines above; the same mail again is a duplicate; the sender's
    # hourly limit of acknowledgements counts the ones queued earlier in the same batch.
    assert [o.outcome for o in outcomes] == ["ticket", "threaded", "duplicate", "ticket", "ticket", "ticket", "ticket"]
    assert len([row for row in outbox(sessions) if row.recipient == sender]) == 3


def test_an_oversized_mail_becomes_a_ticket_without_its_attachments(
    sessions: sessionmaker[Session], base_context: TriageContext, mail_settings: Settings,
) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = customer(), "billing@net2phone.ca", "Relevés joints"
    message["Message-ID"] = f"<big-{uuid.uuid4().hex}@example.ca>"
    message.set_content("Bonjour, voici nos relevés bancaires : le paiement a bien été prélevé deux fois.")
    message.add_attachment(b"%PDF-1.4 " + bytes(1_300_000), maintype="application", subtype="pdf",
                           filename="relevés mars.pdf")
    processor = Processor(replace(mail_settings, mail_size_limit_mb=1), sessions, base_context)
    try:
        assert processor.handle(message.as_bytes(), key(), "CA").outcome == "ticket"
    finally:
        processor.close()
    with sessions() as session:
        stored = session.execute(sa.select(TicketMessage).where(TicketMessage.from_address == message["From"])).scalar_one()
        attachments = session.execute(sa.select(sa.func.count()).select_from(TicketAttachment)
                                      .where(TicketAttachment.message_id == stored.id)).scalar_one()
    assert stored.attachments_dropped and attachments == 0 and stored.size > 1_000_000
    assert "prélevé deux fois" in stored.text
    ack = [row for row in outbox(sessions) if row.recipient == message["From"]][0]
    text = message_from_string(ack.raw, policy=policy.default).get_content()
    assert "dépassait 1 Mo" in text, text


def test_a_reply_naming_an_unknown_ticket_opens_one_without_a_second_acknowledgement(
    processor: Processor, sessions: sessionmaker[Session],
) -> None:
    sender = customer()
    raw = make_mail(sender, "RE : [BL-ZZZZZZ] Facture de mars", "Et la facture d'avril, s'il vous plaît?")
    assert processor.handle(raw, key(), "CA").outcome == "ticket"
    assert [row for row in outbox(sessions) if row.recipient == sender] == []
