"""Words that replies compose from data (statuses, card brands, tax names, roles), both languages side by side.

Whole sentences live in the Rasa domain's responses; these are the values that fill their blanks.
"""

from __future__ import annotations

WORDS: dict[str, dict[str, str]] = {
    # invoice statuses (core.accounts.InvoiceStatus)
    "paid": {"en": "paid", "fr": "payée"},
    "unpaid": {"en": "not yet paid", "fr": "à payer"},
    "past_due": {"en": "past due", "fr": "en souffrance"},
    # payment methods
    "visa": {"en": "Visa", "fr": "Visa"},
    "mastercard": {"en": "Mastercard", "fr": "Mastercard"},
    "amex": {"en": "American Express", "fr": "American Express"},
    "discover": {"en": "Discover", "fr": "Discover"},
    "visa_debit": {"en": "Visa Debit", "fr": "Visa Débit"},
    "mastercard_debit": {"en": "Mastercard Debit", "fr": "Mastercard Débit"},
    # decline reasons
    "expired_card": {"en": "the card has expired", "fr": "la carte est expirée"},
    "postal_code_mismatch": {"en": "the postal code does not match", "fr": "le code postal ne correspond pas"},
    "insufficient_funds": {"en": "insufficient funds", "fr": "fonds insuffisants"},
    "declined_by_bank": {"en": "declined by the bank", "fr": "refusé par la banque"},
    # taxes
    "gst": {"en": "GST", "fr": "TPS"},
    "hst": {"en": "HST", "fr": "TVH"},
    "qst": {"en": "QST", "fr": "TVQ"},
    "pst": {"en": "PST", "fr": "TVP"},
    # portal roles
    "office_manager": {"en": "Office Manager", "fr": "gestionnaire de bureau"},
    "admin": {"en": "admin", "fr": "administrateur"},
    "regular": {"en": "regular user", "fr": "utilisateur régulier"},
    # list joining
    "and": {"en": "and", "fr": "et"},
}


def word(key: str, language: str) -> str:
    """The word for ``key`` in ``language``; an unknown key comes back as is (never an error in a reply)."""
    return WORDS.get(key, {}).get(language, key)


def join_words(items: list[str], language: str) -> str:
    """"a, b and c" / "a, b et c"."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word('and', language)} {items[-1]}"
