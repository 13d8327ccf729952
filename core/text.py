"""Text normalisation shared by intent classification, language detection and mail triage.

Customers type without accents, in texting style and with Québec contractions; the classifier sees one
canonical form so that "c koi le # pour la facturation" and "c'est quoi le numéro pour la facturation" look alike.
"""

from __future__ import annotations

import re
import unicodedata

# Texting abbreviations, English and French side by side. Only unambiguous tokens: "c" alone is "c'est" in
# French chat and never a word in English chat ("see" would be), so it is safe to expand.
ABBREVIATIONS: dict[str, str] = {
    # English
    "u": "you",
    "ur": "your",
    "r": "are",
    "pls": "please",
    "plz": "please",
    "thx": "thanks",
    "tx": "thanks",
    "ty": "thank you",
    "cant": "can not",
    "can't": "can not",
    "cannot": "can not",
    "dont": "do not",
    "don't": "do not",
    "doesnt": "does not",
    "doesn't": "does not",
    "didnt": "did not",
    "didn't": "did not",
    "wont": "will not",
    "won't": "will not",
    "isnt": "is not",
    "isn't": "is not",
    "im": "i am",
    "i'm": "i am",
    "wat": "what",
    "wht": "what",
    "whats": "what is",
    "what's": "what is",
    "hw": "how",
    "acct": "account",
    "acc": "account",
    "pmt": "payment",
    "pymt": "payment",
    "inv": "invoice",
    "info": "information",
    "cuz": "because",
    "bc": "because",
    "b4": "before",
    "2day": "today",
    "msg": "message",
    "ppl": "people",
    # French
    "c": "c'est",
    "cé": "c'est",
    "koi": "quoi",
    "kwa": "quoi",
    "pk": "pourquoi",
    "pq": "pourquoi",
    "pkoi": "pourquoi",
    "pcq": "parce que",
    "pcq'": "parce que",
    "jsuis": "je suis",
    "chu": "je suis",
    "chui": "je suis",
    "jsui": "je suis",
    "jpeux": "je peux",
    "jveux": "je veux",
    "jai": "j'ai",
    "jsais": "je sais",
    "ya": "il y a",
    "y'a": "il y a",
    "tsé": "tu sais",
    "mtn": "maintenant",
    "mnt": "maintenant",
    "svp": "s'il vous plait",
    "stp": "s'il te plait",
    "bcp": "beaucoup",
    "qqn": "quelqu'un",
    "qqch": "quelque chose",
    "slt": "salut",
    "bjr": "bonjour",
    "mrc": "merci",
    "ds": "dans",
    "pr": "pour",
    "ke": "que",
    "ki": "qui",
    "cmt": "comment",
    "cmnt": "comment",
    "tjrs": "toujours",
    "tjs": "toujours",
    "vx": "veux",
    "tel": "telephone",
    "pmnt": "paiement",
}

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'"})
_TOKEN = re.compile(r"[#$%]|[\w']+", re.UNICODE)
_SYMBOLS = {"#": "numero", "$": "dollars", "%": "pourcent"}


# Every combining mark (all lie in the first two planes): deleting them from the decomposed text is a C-speed
# str.translate instead of a Python loop over each character (tests/core/test_text.py checks the planes).
_COMBINING_MARKS = {code: None for code in range(0x20000) if unicodedata.combining(chr(code))}


def fold_accents(text: str) -> str:
    """Return ``text`` without diacritics ("reçu à l'été" → "recu a l'ete")."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKD", text).translate(_COMBINING_MARKS)


def tokenize(text: str) -> list[str]:
    """Split lower-cased text into word tokens (apostrophes kept inside words) and meaningful symbols."""
    return _TOKEN.findall(text.lower().translate(_APOSTROPHES))


def normalize_for_matching(text: str) -> str:
    """Canonical form for classifiers: lower case, texting expanded, symbols named, accents folded."""
    words: list[str] = []
    for token in tokenize(text):
        token = _SYMBOLS.get(token, token)
        words.append(ABBREVIATIONS.get(token, token))
    return fold_accents(" ".join(words))
