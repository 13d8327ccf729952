"""Which invoice, user change or language level a customer's words name, in both languages."""

from __future__ import annotations

from datetime import date

import pytest

from core.entities import InvoiceReference, find_invoice_reference, find_language_level, find_user_change

TODAY = date(2026, 11, 25)


@pytest.mark.parametrize(
    ("text", "reference"),
    [
        ("show my last invoice", InvoiceReference()),
        ("montre-moi ma dernière facture", InvoiceReference()),
        ("PDF of INV-202603-1042 please", InvoiceReference(number="INV-202603-1042")),
        ("facture inv 202603 1042", InvoiceReference(number="INV-202603-1042")),
        ("my March invoice", InvoiceReference(month=date(2026, 3, 1))),
        ("ma facture de mars", InvoiceReference(month=date(2026, 3, 1))),
        ("ma facture de décembre", InvoiceReference(month=date(2025, 12, 1))),
        ("facture de dec. 2024", InvoiceReference(month=date(2024, 12, 1))),
        ("the September 2025 bill", InvoiceReference(month=date(2025, 9, 1))),
        ("la facture du mois passé", InvoiceReference(month=date(2026, 10, 1))),
        ("last month's invoice", InvoiceReference(month=date(2026, 10, 1))),
        ("ma facture du mois dernier", InvoiceReference(month=date(2026, 10, 1))),
        ("l'avant-dernière facture", InvoiceReference(back=1)),
        ("the invoice before last", InvoiceReference(back=1)),
        ("my may invoice", InvoiceReference(month=date(2026, 5, 1))),
        ("may I see my invoice", InvoiceReference()),
    ],
)
def test_invoice_references(text: str, reference: InvoiceReference) -> None:
    assert find_invoice_reference(text, TODAY) == reference


@pytest.mark.parametrize(
    ("text", "change", "email", "role"),
    [
        ("please add jean@acme.ca as a user", "add_user", "jean@acme.ca", None),
        ("ajoute Sophie.Roy@Exemple.ca comme utilisatrice régulière", "add_user", "sophie.roy@exemple.ca", "regular"),
        ("remove tom@acme.ca from the portal", "remove_user", "tom@acme.ca", None),
        ("enlève l'accès de marc@x.ca, il a quitté", "remove_user", "marc@x.ca", None),
        ("make Marie an admin", "change_role", None, "admin"),
        ("change julie@x.ca from admin to regular user", "change_role", "julie@x.ca", "regular"),
        ("passer luc@x.ca en administrateur", "change_role", "luc@x.ca", "admin"),
        ("gestionnaire de bureau", None, None, "office_manager"),
    ],
)
def test_user_changes(text: str, change: str | None, email: str | None, role: str | None) -> None:
    found = find_user_change(text)
    assert (found.change, found.email, found.role) == (change, email, role)


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("please enable French for our whole account", "account"),
        ("mettez nos factures en français", "account"),
        ("I want my own portal in French", "user"),
        ("seulement pour moi", "user"),
        ("french please", None),
    ],
)
def test_language_levels(text: str, level: str | None) -> None:
    assert find_language_level(text) == level
