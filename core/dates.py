"""Calendar arithmetic the billing cycle needs: months forward and back (invoices are monthly)."""

from __future__ import annotations

import calendar
from datetime import date


def add_months(day: date, months: int) -> date:
    """``day`` moved by ``months`` (negative: back), clamped to the end of shorter months (Jan 31 + 1 → Feb 28)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def first_of_month(day: date, months: int = 0) -> date:
    """The 1st of ``day``'s month, moved by ``months``."""
    return add_months(day.replace(day=1), months)
