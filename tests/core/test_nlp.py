"""The understanding layer (core.nlp): entities of customers' words in English and French, and who a mail is
from."""

from __future__ import annotations

from datetime import date

import pytest

from core.entities import InvoiceReference, find_invoice_reference
from core.nlp import analyse, find_sender

TODAY = date(2026, 11, 15)


def values(text: str, language: str, *labels: str) -> list[str | None]:
    return [e.value for e in analyse(text, language).of(*labels)]


@pytest.mark.parametrize(
    ("text", "language", "reference"),
    [
        ("Where is the PDF for inv 202607-0318?", "en", InvoiceReference(number="INV-202607-0318")),
        ("facture no INV202511 0007 svp", "fr", InvoiceReference(number="INV-202511-0007")),
        ("the bill from sept. please", "en", InvoiceReference(month=date(2026, 9, 1))),
        ("ma facture de févr. 2025", "fr", InvoiceReference(month=date(2025, 2, 1))),
        ("la facture de décembre", "fr", InvoiceReference(month=date(2025, 12, 1))),
        ("ma facture daout est trop haute", "fr", InvoiceReference(month=date(2026, 8, 1))),
        ("can u resend last months bill pls", "en", InvoiceReference(month=date(2026, 10, 1))),
        ("le relevé d'il y a deux mois", "fr", InvoiceReference(month=date(2026, 9, 1))),
        ("the invoice before the last one", "en", InvoiceReference(back=1)),
        ("l'avant-dernière facture", "fr", InvoiceReference(back=1)),
        ("May I pay my invoice by cheque?", "en", InvoiceReference()),
        ("Thanks, Jan. We march on with the invoice.", "en", InvoiceReference()),
        ("My card expires in June, how do I replace it before the next bill?", "en", InvoiceReference()),
        ("Mme Avril de la comptabilité a payé la facture", "fr", InvoiceReference()),
        ("Notre bureau de Sept-Îles a reçu la facture", "fr", InvoiceReference()),
    ],
)
def test_the_invoice_a_message_means(text: str, language: str, reference: InvoiceReference) -> None:
    assert find_invoice_reference(text, TODAY, language) == reference


def test_a_huge_text_is_read_from_its_start_without_error() -> None:
    found = analyse("facture INV-202610-0231 " + "x" * 2_000_000, "fr")
    assert [e.value for e in found.of("INVOICE_NUMBER")] == ["INV-202610-0231"]


def test_months_are_said_not_resolved_until_a_date_is_known() -> None:
    assert values("my March invoice and the one of March 2025", "en", "MONTH") == ["--03", "2025-03"]
    assert values("la facture du mois passé", "fr", "RELATIVE_MONTH") == ["-1"]


@pytest.mark.parametrize(
    ("text", "language", "amounts"),
    [
        ("I was charged $1,234.56 and then 79.95", "en", ["1234.56", "79.95"]),
        ("un montant de 1 234,56 $ au lieu de 45$", "fr", ["1234.56", "45"]),
        ("CAD 89.10 or US$ 120 or 250 USD", "en", ["89.10", "120", "250"]),
        ("89,10 $ CA pour 12 lignes, 2,50 % de plus", "fr", ["89.10"]),
        ("we have 14 users and 40 minutes of calls", "en", []),
    ],
)
def test_money_amounts_in_both_writing_styles(text: str, language: str, amounts: list[str]) -> None:
    assert values(text, language, "MONEY") == amounts


def test_places_codes_and_phones_with_their_country() -> None:
    english = analyse("455 Main St, Burlington, VT 05401-4417, call (802) 555-0142. Our Laval, QC office too.", "en")
    assert [(e.text, e.country, e.region) for e in english.of("PLACE")] == [
        ("Burlington", "US", None), ("VT", "US", "VT"), ("Laval", "CA", None), ("QC", "CA", "QC")]
    assert [e.value for e in english.of("ZIP_CODE")] == ["05401"]
    assert [(e.value, e.country) for e in english.of("PHONE")] == [("+18025550142", "US")]
    french = analyse("Notre bureau de Vancouver (C.-B.), 125 rue Principale, Rimouski (Québec) g5l1a1, en Floride", "fr")
    assert [(e.text, e.country) for e in french.of("PLACE")] == [
        ("Vancouver", "CA"), ("C.-B.", "CA"), ("Rimouski", "CA"), ("Québec", "CA"), ("Floride", "US")]
    assert [(e.value, e.region) for e in french.of("POSTAL_CODE")] == [("G5L 1A1", "QC")]


def test_a_name_two_countries_share_counts_only_with_its_province_or_state() -> None:
    assert analyse("Our London office pays by card", "en").of("PLACE") == []
    assert [e.country for e in analyse("London, ON N6A 3K7", "en").of("PLACE")] == ["CA", "CA"]
    assert analyse("Auto Pay is ON and CA$ amounts look fine", "en").of("PLACE") == []


def test_french_people_and_organisations_come_from_the_french_model() -> None:
    found = analyse("Bonjour, Nathalie Pelletier de la Pharmacie Pelletier à Rimouski vous écrit.", "fr", statistical=True)
    assert "Nathalie Pelletier" in [e.text for e in found.of("PERSON")]


@pytest.mark.parametrize(
    ("display_name", "signature", "language", "person", "company"),
    [
        ("Accounts Payable", "Thanks,\nJohn Smith\nOffice Manager\nMaple Leaf Dental\n123 King St W\n(416) 555-0142",
         "en", "John Smith", "Maple Leaf Dental"),
        ("", "Cordialement,\n\nHélène Côté\nDirectrice administrative\nCPE Les Lucioles\n418 555-0190", "fr",
         "Hélène Côté", "CPE Les Lucioles"),
        ("Tom Nguyen", "Thanks!\nTom Nguyen\nOwner, Bright Path Tutoring Inc.\nBurnaby BC", "en", "Tom Nguyen",
         "Bright Path Tutoring Inc."),
        ("billing@acme.example", "", "en", None, None),
        ("Westbrook Property Management", "", "en", None, None),
    ],
)
def test_who_a_mail_is_from(display_name: str, signature: str, language: str, person: str | None,
                            company: str | None) -> None:
    sender = find_sender(display_name, signature, language)
    assert (sender.person, sender.company) == (person, company)
