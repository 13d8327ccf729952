"""Card numbers out of everything stored or logged: chat messages, mail, logs.

A card number is a run of 13 to 19 digits, with any spaces, dashes or dots between them, that passes the Luhn
check (python-stdnum). It becomes ``[card ••••1234]``: the last four digits, which PCI DSS allows to keep, tell an
agent which card the customer meant. A security code (CVV/CVC) or an expiry date near a card number is removed
too. Luhn alone would also flag one long reference number in ten: the check is worth that; a phone number (at most
11 digits here) never qualifies.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from stdnum import luhn

_CARD = re.compile(r"(?<![\d\w])\d(?:[ .\-]?\d){12,18}(?![\d\w])")
# Within this many characters after (or before) a card number, security codes and expiry dates are removed too.
NEARBY = 60
# The code's name, then up to four short words ("code au dos : 737", "the CVV on the back is 123"), then the code.
_SECURITY_CODE = re.compile(
    r"(?i)\b(cvv2?|cvc2?|csc|cid|cryptogramme|security code|code de s[ée]curit[ée]|code de v[ée]rification|code)\b"
    r"((?:\W{1,5}[^\W\d]{1,12}){0,4}\W{0,5})(\d{3,4})\b"
)
_EXPIRY = re.compile(
    r"(?i)\b(exp(?:iry|iration|\.)?(?: date)?|date d'expiration|expire(?:s|d)?|valid thru)?(\W{0,5})"
    r"\b(0[1-9]|1[0-2])\s?[/\-]\s?(\d{4}|\d{2})\b"
)


_MARKER = re.compile(r"\[card ••••\d{4}\]")


@dataclass(frozen=True)
class Redacted:
    """Text with card data removed, and how many card numbers were found."""

    text: str
    cards: int


def _mask(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return f"[card ••••{digits[-4:]}]"


def redact_card_data(text: str) -> Redacted:
    """Remove card numbers, and security codes and expiry dates near them, from ``text``."""
    found = 0
    pieces: list[str] = []
    last = 0
    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group(0))
        if not 13 <= len(digits) <= 19 or not luhn.is_valid(digits):
            continue
        pieces.append(text[last : match.start()])
        pieces.append(_mask(match))
        last = match.end()
        found += 1
    if not found:
        return Redacted(text, 0)
    pieces.append(text[last:])
    redacted = "".join(pieces)

    markers = [m.span() for m in _MARKER.finditer(redacted)]

    def near_a_card(position: int) -> bool:
        # Offsets drift by a few characters as codes are replaced; NEARBY absorbs that.
        return any(start - NEARBY <= position <= end + NEARBY for start, end in markers)

    redacted = _SECURITY_CODE.sub(
        lambda m: f"{m.group(1)}{m.group(2)}•••" if near_a_card(m.start()) else m.group(0), redacted
    )
    redacted = _EXPIRY.sub(
        lambda m: f"{m.group(1) or ''}{m.group(2)}••/••" if near_a_card(m.start()) else m.group(0), redacted
    )
    return Redacted(redacted, found)


def contains_card_number(text: str) -> bool:
    """True when ``text`` holds at least one Luhn-valid card number."""
    return redact_card_data(text).cards > 0


class CardRedactingFilter(logging.Filter):
    """A logging filter that removes card data from every record's message before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_card_data(message)
        if redacted.cards:
            record.msg, record.args = redacted.text, None
        return True


def install_log_redaction() -> None:
    """Attach ``CardRedactingFilter`` to every handler of the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, CardRedactingFilter) for f in handler.filters):
            handler.addFilter(CardRedactingFilter())
