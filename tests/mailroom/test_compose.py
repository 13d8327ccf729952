"""What the mailroom writes, read back with the standard library: headers, encoded names and subjects, text."""

from __future__ import annotations

from email import message_from_string, policy

import pytest

from core.db.models import Ticket
from mailroom.compose import acknowledgement, forward
from mailroom.context import TriageContext
from mailroom.mail import Mail
from mailroom.pipeline import triage
from tests.mailroom.helpers import make_mail

NAME = 'Françoise "Frank" Lévesque-Tremblay, Compagnie Générale des Téléphones du Québec'
SUBJECT = "Facture de novembre : " + "prélèvement préautorisé refusé deux fois " * 4


@pytest.mark.parametrize(("name", "subject", "body", "greeting"), [
    (NAME, SUBJECT, "Bonjour, mon paiement a été refusé. Pouvez-vous vérifier?", "Bonjour Françoise,"),
    ("Derek O'Brien", "Invoice copy", "Hello, could I get a copy of my March invoice please?", "Hello Derek,"),
])
def test_an_acknowledgement_reads_back_as_written(base_context: TriageContext, name: str, subject: str, body: str,
                                                  greeting: str) -> None:
    raw = make_mail(f"{name} <client@example.ca>".replace('"', "'"), subject, body)
    mail = triage(Mail(raw=raw, team="CA", mailbox="ca"), base_context, 10 * 1024 * 1024)
    mail.from_name = name
    mail.references = [f"<earlier-{n}@example.ca>" for n in range(14)]
    outgoing = acknowledgement(mail, Ticket(reference="BL-7K3Q9D"), base_context)
    lines = outgoing.raw.split("\r\n")
    assert "\n" not in outgoing.raw.replace("\r\n", "") and all(len(line) <= 998 for line in lines)
    assert all(len(line) <= 78 for line in lines if not line.startswith("In-Reply-To:"))
    message = message_from_string(outgoing.raw, policy=policy.default)
    assert " ".join(message["To"].addresses[0].display_name.split()) == name
    assert message["To"].addresses[0].addr_spec == outgoing.recipient == "client@example.ca"
    assert str(message["Subject"]).endswith(f"[BL-7K3Q9D] {' '.join(subject.split())}")
    assert message["In-Reply-To"] == mail.message_id
    assert message["References"].split()[-1] == mail.message_id and len(message["References"].split()) == 11
    assert message["Message-ID"] == outgoing.message_id
    assert message["Auto-Submitted"] == "auto-replied" and message["X-Auto-Response-Suppress"] == "All"
    assert base_context.is_own_marker(message["X-Billing-Loop"], outgoing.message_id)
    text = message.get_content()
    assert text.startswith(greeting) and "BL-7K3Q9D" in text


def test_a_forward_names_the_customer_to_reply_to(base_context: TriageContext) -> None:
    raw = make_mail("Acme, Inc. <ap@acme.example>", "Sales tax", "Our Texas office was charged twice.")
    mail = triage(Mail(raw=raw, team="CA", mailbox="ca"), base_context, 10 * 1024 * 1024)
    mail.from_name = "Acme, Inc."
    outgoing = forward(mail, Ticket(reference="BL-7K3Q9D"), base_context, ["US state and ZIP code TX 75001"])
    message = message_from_string(outgoing.raw, policy=policy.default)
    assert message["Reply-To"].addresses[0].display_name == "Acme, Inc."
    assert message["To"] == "billing@net2phone.com" and message["Auto-Submitted"] == "auto-generated"
    assert "US state and ZIP code TX 75001" in message.get_content()
