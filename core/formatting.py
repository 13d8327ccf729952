"""Money and dates the way Canadian customers read them, in their language, through Babel (CLDR data).

English: "$1,234.56", "March 3, 2026", "March 2026". French: "1 234,56 $", "3 mars 2026", "mars 2026".
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from babel.dates import format_date
from babel.numbers import format_currency

LOCALES = {"en": "en_CA", "fr": "fr_CA"}


def _locale(language: str) -> str:
    try:
        return LOCALES[language]
    except KeyError:
        raise ValueError(f"unsupported language {language!r}; expected one of {sorted(LOCALES)}") from None


def format_money(amount: Decimal, language: str, currency: str = "CAD") -> str:
    """``Decimal("1234.56")`` → "$1,234.56" (en) or "1 234,56 $" (fr)."""
    return str(format_currency(amount, currency, locale=_locale(language)))


def format_day(day: date, language: str) -> str:
    """A date in full: "March 3, 2026" (en) or "3 mars 2026" (fr), "1er décembre 2026" for the first of a month
    (French writes the first day as an ordinal, which CLDR's pattern does not)."""
    text = str(format_date(day, format="long", locale=_locale(language)))
    if language == "fr" and day.day == 1 and text.startswith("1 "):
        text = "1er " + text[2:]
    return text


def format_month(day: date, language: str) -> str:
    """The month of ``day``: "March 2026" (en) or "mars 2026" (fr)."""
    return str(format_date(day, format="MMMM y", locale=_locale(language)))
