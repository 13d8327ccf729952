"""Money and dates in each language with Canadian conventions (Babel)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from core.formatting import format_day, format_money, format_month


@pytest.mark.parametrize(
    ("language", "money", "day", "first", "month"),
    [
        ("en", "$1,234.56", "March 3, 2026", "December 1, 2026", "March 2026"),
        ("fr", "1\u00a0234,56\u00a0$", "3 mars 2026", "1er décembre 2026", "mars 2026"),
    ],
)
def test_canadian_conventions(language: str, money: str, day: str, first: str, month: str) -> None:
    assert format_money(Decimal("1234.56"), language) == money
    assert format_day(date(2026, 3, 3), language) == day
    assert format_day(date(2026, 12, 1), language) == first
    assert format_month(date(2026, 3, 17), language) == month


def test_an_unsupported_language_is_an_error() -> None:
    with pytest.raises(ValueError, match="unsupported language 'de'"):
        format_money(Decimal("1"), "de")
