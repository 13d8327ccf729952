"""Card numbers, and the security codes and expiry dates beside them, never survive redaction."""

from __future__ import annotations

import logging

import pytest

from core.redaction import CardRedactingFilter, contains_card_number, redact_card_data

CARDS = [
    "4111111111111111",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "4111.1111.1111.1111",
    "3782 822463 10005",  # AMEX, 15 digits
    "6011 1111 1111 1117",
    "5555 5555 5555 4444",
    "4222222222222",  # 13 digits
]


@pytest.mark.parametrize("card", CARDS)
@pytest.mark.parametrize(
    "template",
    ["my card is {card} thanks", "ma carte : {card}.", "{card}", "Visa({card})", "carte no {card}, merci"],
)
def test_every_card_number_is_removed_whatever_its_separators(card: str, template: str) -> None:
    redacted = redact_card_data(template.format(card=card))
    digits = card.replace(" ", "").replace("-", "").replace(".", "")
    assert redacted.cards == 1
    assert digits not in redacted.text.replace(" ", "").replace("-", "").replace(".", "")
    assert f"••••{digits[-4:]}" in redacted.text


@pytest.mark.parametrize(
    ("text", "removed"),
    [
        ("card 4111 1111 1111 1111 exp 12/27 cvv 123", ["12/27", "123"]),
        ("carte 5555 5555 5555 4444, date d'expiration 03/2028, code de sécurité 987", ["03/2028", "987"]),
        # The code's name a few words before it, as people write it (found in demo mail written by others).
        ("Visa 4111 1111 1111 1111\nexp 09/28\ncode au dos 737", ["09/28", "737"]),
        ("card 4111111111111111 and the CVV on the back is 123.", ["123"]),
        ("4111 1111 1111 1111, cryptogramme : 456", ["456"]),
        ("CVC: 4321 for amex 3782 822463 10005 valid thru 11/26", ["4321", "11/26"]),
    ],
)
def test_security_codes_and_expiry_dates_near_a_card_are_removed(text: str, removed: list[str]) -> None:
    redacted = redact_card_data(text).text
    for secret in removed:
        assert secret not in redacted


@pytest.mark.parametrize(
    "text",
    [
        "call 1-877-498-3772 option 4",
        "invoice INV-202603-1042 of 12/05",
        "account 4111111111111112 is not a card (Luhn fails)",
        "order 1234567890123",
        "le code 123 de la porte",
    ],
)
def test_text_without_a_card_number_is_left_alone(text: str) -> None:
    assert redact_card_data(text).text == text
    assert not contains_card_number(text)


def test_the_log_filter_removes_card_numbers_from_records() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "message %s received", ("pay with 4111111111111111",), None)
    assert CardRedactingFilter().filter(record)
    assert "4111111111111111" not in record.getMessage() and "••••1111" in record.getMessage()
