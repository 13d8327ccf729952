"""The console in English and French: the agent's choice, else the browser's; dates and money through Babel.

Translations are gettext catalogs (``console/translations/<lang>/LC_MESSAGES/messages.po``); they are compiled
to ``.mo`` under the var folder when a catalog is newer than its compiled copy (no build step to forget).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, request, session
from flask_babel import format_datetime, format_timedelta, get_locale
from flask_babel import gettext as _
from flask_login import current_user

from core.files import write_atomic
from core.formatting import format_day, format_money
from core.language import DEFAULT_LANGUAGE, SUPPORTED_LANGUAGES

SOURCES = Path(__file__).resolve().parent / "translations"


def compiled_catalogs(var_dir: Path) -> Path:
    """The folder of compiled catalogs, compiled from the sources where they changed."""
    target = var_dir / "translations"
    for source in SOURCES.glob("*/LC_MESSAGES/messages.po"):
        compiled = target / source.relative_to(SOURCES).with_suffix(".mo")
        if compiled.exists() and compiled.stat().st_mtime >= source.stat().st_mtime:
            continue
        with source.open("rb") as file:
            catalog = read_po(file)
        buffer = BytesIO()
        write_mo(buffer, catalog, use_fuzzy=False)
        write_atomic(compiled, buffer.getvalue())
    return target


def select_locale() -> str:
    """The signed-in agent's language; before sign-in, the one chosen on the page, else the browser's."""
    if current_user and current_user.is_authenticated:
        return str(current_user.ui_language)
    chosen = session.get("lang")
    if chosen in SUPPORTED_LANGUAGES:
        return str(chosen)
    return request.accept_languages.best_match(SUPPORTED_LANGUAGES) or DEFAULT_LANGUAGE


def language() -> str:
    """The page's language ("en" or "fr")."""
    return str(get_locale() or DEFAULT_LANGUAGE)[:2]


def _when(moment: datetime | None) -> str:
    return format_datetime(moment, "medium") if moment else ""


def _age(moment: datetime | None) -> str:
    """How long ago: "3 hours ago" / "il y a 3 heures"."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return str(format_timedelta(moment - datetime.now(timezone.utc), add_direction=True, threshold=1.0))


def _day(day: date | None) -> str:
    return format_day(day, language()) if day else ""


def _money(amount: Decimal | float | None, currency: str = "CAD") -> str:
    return format_money(Decimal(str(amount)), language(), currency) if amount is not None else ""


def _size(size: int) -> str:
    units = ("B", "KB", "MB") if language() == "en" else ("o", "Ko", "Mo")
    value, unit = float(size), 0
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    return f"{value:.0f} {units[unit]}" if unit == 0 else f"{value:.1f} {units[unit]}".replace(".", "," if language() == "fr" else ".")


_LABELS: dict[str, dict[str, dict[str, str]]] = {}


def labels() -> dict[str, dict[str, str]]:
    """What agents read for each stored value, in the page's language (translated once per language: every
    page and fragment rendered has them)."""
    current = language()
    if current not in _LABELS:
        _LABELS[current] = _labels()
    return _LABELS[current]


def _labels() -> dict[str, dict[str, str]]:
    return {
        "status": {"active": _("Active"), "new": _("New"), "open": _("Open"), "waiting": _("Waiting on customer"),
                   "solved": _("Solved"), "closed": _("Closed"), "all": _("All")},
        "queue": {"payments": _("Payments"), "invoices": _("Invoices"), "cdr": _("Call records"),
                  "credits": _("Credits"), "account": _("Account"), "users": _("Portal users"),
                  "general": _("General")},
        "priority": {"urgent": _("Urgent"), "high": _("High"), "normal": _("Normal")},
        "language": {"en": _("English"), "fr": _("French")},
        "channel": {"email": _("Email"), "chat": _("Chat")},
        "misroute": {"none": _("No"), "unsure": _("Perhaps the other team's"), "to_us": _("Forwarded to the USA team"),
                     "to_ca": _("Forwarded to the Canadian team")},
        "team": {"CA": _("Canada"), "US": _("USA")},
        "kind": {"mail": _("Mail"), "ack": _("Acknowledgement"), "forward": _("Forward"), "reply": _("Reply"),
                 "note": _("Internal note"), "notice": _("Notice"), "chat": _("Chat")},
        "delivery": {"pending": _("waiting to be sent"), "sending": _("sending"), "in doubt": _("in doubt"),
                     "sent": _("sent"), "failed": _("failed"), "suppressed": _("not sent (address bounced)")},
        "presence": {"viewing": _("is viewing"), "replying": _("is replying")},
    }


def install_filters(app: Flask) -> None:
    app.jinja_env.filters.update(when=_when, age=_age, day=_day, money=_money, size=_size)

    @app.context_processor
    def page_language() -> dict[str, Any]:
        return {"page_language": language(), "languages": SUPPORTED_LANGUAGES, "labels": labels()}
