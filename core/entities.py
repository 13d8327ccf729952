"""What customers' words ask for, both languages: which invoice they mean, and what a user change is.

"INV-202603-1042", "my March invoice", "ma facture de mars 2025", "la facture du mois passé", "last month's
bill", "l'avant-dernière facture": the entities come from the understanding layer (``core.nlp``). Months resolve
against ``today``: a month without a year is its most recent occurrence (in November 2026, "March" is March 2026
and "December" December 2025).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Iterable

from email_validator import EmailNotValidError, validate_email

from core.dates import first_of_month
from core.nlp import EMAIL_CANDIDATE, Entity, analyse
from core.text import fold_accents

@dataclass(frozen=True)
class InvoiceReference:
    """Which invoice a message names: by ``number``, by ``month`` (a date on the 1st), or ``back`` invoices
    before the latest (1 = the one before last). All None: the message names none (the latest is meant)."""

    number: str | None = None
    month: date | None = None
    back: int | None = None


def invoice_reference(entities: Iterable[Entity], today: date) -> InvoiceReference:
    """The invoice a message with these entities means, months resolved against ``today``: its invoice number,
    else the first month or "the one before last" it names. A month without a year is its latest occurrence (in
    November 2026, "March" is March 2026 and "December" December 2025)."""
    ordered = sorted(entities, key=lambda entity: entity.start)
    number = next((e.value for e in ordered if e.label == "INVOICE_NUMBER" and e.value), None)
    if number:
        return InvoiceReference(number=number)
    for entity in ordered:
        if entity.label == "PREVIOUS_INVOICE":
            return InvoiceReference(back=1)
        if entity.label == "RELATIVE_MONTH" and entity.value:
            return InvoiceReference(month=first_of_month(today, int(entity.value)))
        if entity.label == "MONTH" and entity.value:
            year, month = entity.value.rsplit("-", 1)
            if not year.strip("-"):
                return InvoiceReference(month=date(today.year if int(month) <= today.month else today.year - 1, int(month), 1))
            return InvoiceReference(month=date(int(year), int(month), 1))
    return InvoiceReference()


def find_invoice_reference(text: str, today: date, language: str = "en") -> InvoiceReference:
    """The invoice ``text`` (written in ``language``) refers to, months resolved against ``today``."""
    return invoice_reference(analyse(text, language).entities, today)


# --- User-change and language requests: what is asked, for whom. ----------------------------------------------
# Keyword patterns on accent-folded lower-case text, English and French side by side.
_REMOVE = re.compile(
    r"\b(remove|delete|revoke|deactivate|disable|take away|cut off|left the company|no longer with|"
    r"enlev\w*|retir\w*|supprim\w*|desactiv\w*|revoqu\w*|couper|a quitte|ne travaille plus)\b"
)
_CHANGE_ROLE = re.compile(
    r"\b(role|permissions?|rights|access level|promote|upgrade|downgrade|make \S+ (an? )?(admin|office manager)|"
    r"droits?|acces (administrateur|admin)|promouvoir|changer? (le|son|ses) (role|acces|droits))\b"
)
_ADD = re.compile(
    r"\b(add|create|new user|invite|give \S+ access|set up a login|sign up|onboard|"
    r"ajout\w*|cre\w+ (un|une) (acces|utilisateur|login|compte)|nouvel utilisateur|nouvelle utilisatrice|invit\w*|"
    r"donn\w* (un )?acces)\b"
)
ROLE_WORDS: dict[str, re.Pattern[str]] = {
    "office_manager": re.compile(r"\b(office manager|gestionnaire( de bureau)?|directeur de bureau|directrice de bureau)\b"),
    "admin": re.compile(r"\b(admin|administrator|administrat(eur|rice))\b"),
    "regular": re.compile(r"\b(regular|normal|standard|basic|read[- ]only|regulier|reguliere|ordinaire|simple|de base)\b"),
}
_ACCOUNT_LEVEL = re.compile(
    r"\b(account|company|whole|everyone|all (the )?users|invoices?|notifications?|"
    r"compte|entreprise|compagnie|tout le monde|tous les utilisateurs|factures?|avis)\b"
)
_USER_LEVEL = re.compile(
    r"\b(me|myself|just me|only me|my (own )?(portal|interface|screen|login)|user|"
    r"moi|pour moi|juste moi|seulement moi|mon (propre )?(portail|interface|ecran|acces)|utilisateur|utilisatrice)\b"
)


@dataclass(frozen=True)
class UserChangeRequest:
    """What a message says of a user change: ``change`` is add_user, remove_user or change_role."""

    change: str | None = None
    email: str | None = None
    role: str | None = None


def find_email(text: str | None) -> str | None:
    """The first valid email address in ``text``, lower-cased ("it's Jean.Roy@Example.ca" → "jean.roy@example.ca").

    Syntax only: the domain's mail server is not looked up (no network at run time)."""
    for candidate in EMAIL_CANDIDATE.findall(text or ""):
        try:
            return str(validate_email(candidate.rstrip("."), check_deliverability=False).normalized).lower()
        except EmailNotValidError:
            continue
    return None


_CHANGE_WORD = re.compile(r"\b(change|switch|modify|chang\w*|modifi\w*|mettre|passer)\b")


def find_role(text: str) -> str | None:
    """The portal role a message names (office_manager, admin, regular), if any; the last one named wins
    ("from admin to regular user" asks for regular)."""
    folded = fold_accents(text.lower())
    found = [(m.start(), role) for role, pattern in ROLE_WORDS.items() for m in pattern.finditer(folded)]
    return max(found)[1] if found else None


def find_user_change(text: str) -> UserChangeRequest:
    """The kind of change, the user's email and the role a message names (each None when absent)."""
    folded = fold_accents(text.lower())
    change = None
    if _REMOVE.search(folded):
        change = "remove_user"
    elif _CHANGE_ROLE.search(folded) or (_CHANGE_WORD.search(folded) and find_role(text) is not None):
        change = "change_role"
    elif _ADD.search(folded):
        change = "add_user"
    return UserChangeRequest(change=change, email=find_email(text), role=find_role(text))


def find_language_level(text: str) -> str | None:
    """Whether a request for French is about the whole account or one user's interface, if the message says."""
    folded = fold_accents(text.lower())
    user, account = bool(_USER_LEVEL.search(folded)), bool(_ACCOUNT_LEVEL.search(folded))
    if user and not account:
        return "user"
    if account and not user:
        return "account"
    return None
