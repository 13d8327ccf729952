"""What the understanding layer adds to the triage, both languages: a full address decides a misroute alone, a
polite French request is no thank-you note, a question in the subject counts, and the ticket knows who wrote it."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.db.models import Ticket
from core.settings import Settings
from mailroom.cli import triage_file
from mailroom.context import TriageContext
from mailroom.mail import SourceKey
from mailroom.service import Processor
from tests.mailroom.helpers import make_mail

US_INBOX = "billing@net2phone.com"


def triage(context: TriageContext, settings: Settings, sender: str, subject: str, body: str,
           to: str = "billing@net2phone.ca") -> dict[str, Any]:
    return triage_file(make_mail(sender, subject, body, to=to), context, settings)


def test_a_full_us_address_alone_sends_a_mail_to_the_us_team(base_context: TriageContext,
                                                               mail_settings: Settings) -> None:
    got = triage(base_context, mail_settings, "Dana <dana@hollowcreek.example.com>", "Copy of my invoice",
                 "Hello,\nCould you send me a copy of my October invoice?\n\nDana Smith\nHollow Creek Farms LLC\n"
                 "1820 Peachtree Rd NE\nAtlanta, GA 30309")
    assert got["misroute"] == "to_us" and got["team"] == "US", got["reasons"]
    assert any("US address" in reason and "30309" in reason for reason in got["reasons"])


def test_a_postal_code_with_its_province_alone_sends_a_french_mail_to_the_canadian_team(
    base_context: TriageContext, mail_settings: Settings
) -> None:
    got = triage(base_context, mail_settings, "Luc <luc@atelierpepin.example.com>", "Copie de facture",
                 "Bonjour,\nPouvez-vous m'envoyer la facture d'octobre?\n\nLuc Pepin\nAtelier Pepin\n"
                 "88 rue Saint-Jean, Gatineau QC J8Y 6T3", to=US_INBOX)
    assert got["misroute"] == "to_ca" and got["team"] == "CA", got["reasons"]


def test_the_sender_s_own_address_in_the_signature_decides_when_nothing_points_home(
    base_context: TriageContext, mail_settings: Settings
) -> None:
    ours = triage(base_context, mail_settings, "Kate <kate@gmail.example.com>", "Export is empty",
                  "Hi, the call detail export for February downloads empty. Can you send it?\n\nThanks,\nKate Moran\n"
                  "Office Manager, Larkin Realty\nScottsdale, AZ")
    assert ours["misroute"] == "to_us", ours["reasons"]
    assert any("signature is US" in reason for reason in ours["reasons"])
    french = triage(base_context, mail_settings, "Rémi <remi@gmail.example.com>", "Relevé d'appels",
                    "Bonjour, je voudrais le détail des appels de mars.\n\nMerci,\nRémi Cormier\nDieppe, N.-B.",
                    to=US_INBOX)
    assert french["misroute"] == "to_ca", french["reasons"]
    # One strong item (an area code) decides only when nothing at all points to the inbox's own country.
    phone = triage(base_context, mail_settings, "Mike <mike@gmail.example.com>", "Copy of my bill",
                   "Hi can you send me a copy of last month's bill. thanks\n\nMike\n305-555-0147")
    assert phone["misroute"] == "to_us", phone["reasons"]
    canadian_too = triage(base_context, mail_settings, "Mike <mike@tremblay.example.ca>", "Copy of my bill",
                          "Hi can you send me a copy of last month's bill. thanks\n\nMike\n305-555-0147")
    assert canadian_too["misroute"] in ("none", "unsure"), canadian_too["reasons"]  # never forwarded
    lowercase_taxes = triage(base_context, mail_settings, "Lyne <lyne@videotron.example.com>", "credit",
                             "allo, on devait avoir un credit de 50$ + tps/tvq pour la panne. je le vois pas", to=US_INBOX)
    assert lowercase_taxes["misroute"] == "to_ca", lowercase_taxes["reasons"]
    # "sales tax" alone is said in Canada too: never enough on its own.
    sales_tax = triage(base_context, mail_settings, "Jo <jo@gmail.example.com>", "Tax on my bill",
                       "Why is there sales tax on my invoice this month?")
    assert sales_tax["misroute"] != "to_us", sales_tax["reasons"]


def test_a_canadian_gst_registration_number_is_a_canadian_business(base_context: TriageContext,
                                                                   mail_settings: Settings) -> None:
    got = triage(base_context, mail_settings, "AP <ap@walsh.example.com>", "Our tax number on invoices",
                 "Hello, please add our GST/HST registration number 12345 6789 RT0001 to our invoices.", to=US_INBOX)
    assert got["misroute"] == "to_ca", got["reasons"]


def test_the_account_named_as_canadian_keeps_a_us_writer_s_mail_from_being_forwarded(
    base_context: TriageContext, mail_settings: Settings
) -> None:
    """The account decides the team, not where its writer sits: a US controller's full address in the signature
    against "the Canadian account" is for an agent to decide, never forwarded."""
    english = triage(base_context, mail_settings, "Greg <greg@outfitters.example.com>", "Invoice copies",
                     "Hello, I keep the books of our Canadian subsidiary too. Could you send me the PDFs of the "
                     "last three invoices for the Canadian account?\n\nGreg Hill\nController\n"
                     "2001 Western Ave, Seattle, WA 98121")
    assert english["misroute"] in ("none", "unsure"), english["reasons"]
    assert any("names a Canadian account" in reason for reason in english["reasons"])
    french = triage(base_context, mail_settings, "Lise <lise@groupe.example.com>", "Copies de factures",
                    "Bonjour, je m'occupe aussi de notre filiale canadienne. Pouvez-vous m'envoyer les factures du "
                    "compte canadien?\n\nLise Morin\n55 Main St, Burlington, VT 05401")
    assert french["misroute"] in ("none", "unsure"), french["reasons"]
    # Named the other way, to the Canadian inbox, with nothing Canadian: the US team's.
    american = triage(base_context, mail_settings, "Sam <sam@gmail.example.com>", "Question about our bill",
                      "Hi, why did the bill of our US account go up this month?")
    assert american["misroute"] == "to_us", american["reasons"]


def test_a_card_zip_code_does_not_send_a_canadian_customer_away(base_context: TriageContext,
                                                                mail_settings: Settings) -> None:
    got = triage(base_context, mail_settings, "Paul <paul@garageroy.ca>", "Carte refusée",
                 "Bonjour, notre maison mère aux États-Unis paie avec sa Visa, ZIP 05478, et le portail la refuse.\n"
                 "Paul Roy, Garage Roy, Sherbrooke, tél. 819 555-0101")
    assert got["misroute"] == "none", got["reasons"]


def test_merci_de_with_a_verb_is_a_request_and_a_question_in_the_subject_is_one_too(
    base_context: TriageContext, mail_settings: Settings
) -> None:
    polite = triage(base_context, mail_settings, "Sylvie <sylvie@gagnon.example.ca>", "Paiement",
                    "Merci de faire le paiement de la facture avec la carte au dossier.")
    assert polite["queue"] == "payments", polite["reasons"]
    thanks = triage(base_context, mail_settings, "Sylvie <sylvie@gagnon.example.ca>", "Facture reçue",
                    "Merci de votre aide, tout est beau!")
    assert thanks["queue"] == "general" and any("thank-you" in reason for reason in thanks["reasons"])
    asked = triage(base_context, mail_settings, "Julie <julie@fortin.example.ca>",
                   "Je ne trouve pas Gérer les utilisateurs dans le portail, c'est où?", "Merci\n\nJulie")
    assert asked["queue"] == "users", asked["reasons"]


def test_the_triage_reports_who_wrote_and_what_the_mail_names(base_context: TriageContext,
                                                                mail_settings: Settings) -> None:
    got = triage(base_context, mail_settings, "Accounts Payable <ap@mapleleafdental.example.ca>", "Invoice question",
                 "Hi, invoice INV-202610-0231 shows $219.80 but we expected 189.50. Can you check?\n\n"
                 "Thanks,\nJohn Smith\nOffice Manager\nMaple Leaf Dental\nToronto, ON")
    assert got["customer"] == {"name": "John Smith", "company": "Maple Leaf Dental"}
    found = {(e["label"], e["value"]) for e in got["entities"]}
    assert {("invoice_number", "INV-202610-0231"), ("money", "219.80"), ("money", "189.50")} <= found


def test_the_ticket_keeps_the_person_and_the_company(sessions: sessionmaker[Session], base_context: TriageContext,
                                                     mail_settings: Settings) -> None:
    processor = Processor(mail_settings, sessions, base_context)
    try:
        address = f"compta-{uuid.uuid4().hex[:8]}@lucioles.example.ca"
        raw = make_mail(f"Comptabilité <{address}>", "Relevé d'appels",
                        "Bonjour, pouvez-vous m'envoyer le détail des appels de juin?\n\nCordialement,\n\n"
                        "Hélène Côté\nDirectrice administrative\nCPE Les Lucioles <script>x</script>\n418 555-0190")
        result = processor.handle(raw, SourceKey(f"test-{uuid.uuid4().hex[:8]}", 7, 1), "CA")
        assert result.outcome == "ticket"
        with sessions() as session:
            ticket = session.execute(sa.select(Ticket).where(Ticket.customer_email == address)).scalar_one()
            assert (ticket.customer_name, ticket.customer_company) == ("Hélène Côté", "CPE Les Lucioles <script>x</script>")
    finally:
        processor.close()
