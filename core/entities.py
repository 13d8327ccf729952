"""Entities in customers' words, both languages: which invoice they mean.

"INV-202603-1042", "my March invoice", "ma facture de mars 2025", "la facture du mois passé", "last month's
bill", "l'avant-dernière facture". Months resolve against ``today``: a month without a year is its most recent
occurrence (in November 2026, "March" is March 2026 and "December" December 2025).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from email_validator import EmailNotValidError, validate_email

from core.dates import first_of_month
from core.text import fold_accents

INVOICE_NUMBER = re.compile(r"(?i)\binv[\s\-_#]*(\d{6})[\s\-_]*(\d{4})\b")

# Month names and abbreviations, English and French side by side (accent-folded, lower case).
MONTHS: dict[str, int] = {
    "january": 1, "jan": 1, "janvier": 1, "janv": 1,
    "february": 2, "feb": 2, "fevrier": 2, "fev": 2, "fevr": 2,
    "march": 3, "mar": 3, "mars": 3,
    "april": 4, "apr": 4, "avril": 4, "avr": 4,
    "may": 5, "mai": 5,
    "june": 6, "jun": 6, "juin": 6,
    "july": 7, "jul": 7, "juillet": 7, "juil": 7,
    "august": 8, "aug": 8, "aout": 8,
    "september": 9, "sep": 9, "sept": 9, "septembre": 9,
    "october": 10, "oct": 10, "octobre": 10,
    "november": 11, "nov": 11, "novembre": 11,
    "december": 12, "dec": 12, "decembre": 12,
}
_MONTH = re.compile(r"\b(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\b\.?(?:\s*,?\s*(20\d\d))?")
# "may" and "mar" are also English words: a month only when a year follows or an invoice word is near.
_AMBIGUOUS = {"may", "mar"}
_MODAL_MAY = re.compile(r"\s+(i|we|you|it|he|she|they|be|have|not|also|need|ask|get|see|know)\b")
_INVOICE_WORDS = re.compile(r"\b(invoice|bill|statement|facture|releve|compte|cdr|call|appels)s?\b")
# Relative references, months back from this month; "the invoice before last" counts invoices, not months.
_RELATIVE_MONTH = [
    (re.compile(r"\b(this month|current month|ce mois[- ]ci|du mois courant|mois en cours)\b"), 0),
    (re.compile(r"\b(last month|previous month|past month|mois (passe|dernier|precedent))\b"), 1),
    (re.compile(r"\b(month before last|two months ago|il y a deux mois|il y a 2 mois)\b"), 2),
]
_PREVIOUS_INVOICE = re.compile(
    r"\b(second to last|second last|before last|one before|previous (invoice|bill)|avant[- ]derniere|precedente)\b"
)


@dataclass(frozen=True)
class InvoiceReference:
    """Which invoice a message names: by ``number``, by ``month`` (a date on the 1st), or ``back`` invoices
    before the latest (1 = the one before last). All None: the message names none (the latest is meant)."""

    number: str | None = None
    month: date | None = None
    back: int | None = None


def find_invoice_reference(text: str, today: date) -> InvoiceReference:
    """The invoice ``text`` refers to, resolved against ``today``."""
    number = INVOICE_NUMBER.search(text)
    if number:
        return InvoiceReference(number=f"INV-{number.group(1)}-{number.group(2)}")
    folded = fold_accents(text.lower())
    for pattern, months in _RELATIVE_MONTH:
        if pattern.search(folded):
            return InvoiceReference(month=first_of_month(today, -months))
    for match in _MONTH.finditer(folded):
        name, year = match.group(1), match.group(2)
        if name in _AMBIGUOUS and not year:
            if not _INVOICE_WORDS.search(folded) or (name == "may" and _MODAL_MAY.match(folded, match.end(1))):
                continue
        month = MONTHS[name]
        if year:
            return InvoiceReference(month=date(int(year), month, 1))
        resolved_year = today.year if month <= today.month else today.year - 1
        return InvoiceReference(month=date(resolved_year, month, 1))
    if _PREVIOUS_INVOICE.search(folded):
        return InvoiceReference(back=1)
    return InvoiceReference()


# --- User-change and language requests: what is asked, for whom. ----------------------------------------------
# Anything shaped like an address; email-validator then says whether it is one (syntax only: no network).
_EMAIL_CANDIDATE = re.compile(r"[^\s<>()\[\],;:\"']+@[^\s<>()\[\],;:\"']+")
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
    for candidate in _EMAIL_CANDIDATE.findall(text or ""):
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
