"""Language of a message (English or French) and of a conversation.

Detection combines ``langdetect`` (seeded, so the same text always gets the same answer, and restricted to the
English and French profiles) with cue words typical of each language's chat style, which carry short messages
where character statistics are unreliable. A guess is *decisive* only when the message holds enough content
words to overrule the language a conversation is already in: "ok", "merci", "Visa?" or an invoice number
never switch a conversation (``choose_language``); a closing in words of one language only ("thanks, bye",
"merci beaucoup") does.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
from langdetect.lang_detect_exception import LangDetectException

from core.text import fold_accents

SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "fr")
DEFAULT_LANGUAGE = "en"

# Words that tell the languages apart in chat, accent-folded, after texting expansion. Words common to both
# ("a", "on", "me", "as", "an", "en"...) are left out on purpose.
FRENCH_CUES = frozenset(
    """je j' tu il elle nous vous ils elles le la les l' un une des du de d' au aux et ou mais pas ne n' plus est
    sont suis ai avez avec pour sur dans par que qu' qui quoi quand comment pourquoi ce cette ces c'est ca mon ma mes
    ton ta tes son sa ses votre vos notre nos leur moi toi puis peux peut veux voudrais faut faire fait avoir etre ete
    facture factures paiement paiements payer carte cartes compte courriel courriels utilisateur utilisateurs releve
    appels appel mois depuis aussi encore deja merci bonjour salut allo oui non s'il plait beaucoup quelqu'un
    maintenant toujours parce il y aide parler agent ajouter modifier voir trouve recu portail
    facturation numero adresse langue francais anglais ma mon mes est-ce j'ai c'est qu'est-ce pantoute ben icitte
    tu sais chez bonne journee soir matin koi pk pcq chu jsuis jsui chui jpeux jveux svp stp bcp mtn slt bjr mrc
    qqn qqch tsé tse cmt kossé ben pis icitte""".split()
)
ENGLISH_CUES = frozenset(
    """i my mine you your yours he she it we they the and or but not no is are was were be been am do does did have
    has had can could would should will to of in at for with from by about what when where why how which who this that
    these those there here please thanks thank hi hello hey yes yeah nope invoice invoices bill bills billing payment
    payments pay card cards account email emails user users call calls history balance help talk get add change see
    find received phone number address language french english want need my i'm it's doesn't don't can't morning
    evening good day u ur pls plz thx ty wat cant dont im ive doesnt didnt wont isnt whats""".split()
)
# Courtesy and yes/no words that bilingual customers drop in either language: they help a first guess but never
# prove a switch.
COURTESY = frozenset(
    """ok okay oki k merci mrc thanks thank thx ty bonjour bonsoir salut allo hi hello hey bye oui non yes no yeah
    nope ouais svp s'il plait please cool super parfait perfect top d'accord correct sure""".split()
)
# Words of a closing or a thanks that belong to one language only. A message made only of courtesy words switches
# the conversation when two or more of its words belong to the same one and none to the other: "thanks, bye" and
# "thank you" are English, "merci beaucoup" and "bonne journée" French; "merci", "ok merci" or "merci, bye" are not
# clear enough ("bye" is said in Québec French too, but never alone makes two).
CLOSING_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset("thanks thank you thx ty bye goodbye cheers have nice great good day lot much appreciated "
                    "awesome see later".split()),
    "fr": frozenset("merci mrc beaucoup bcp bonne journee soiree fin semaine au revoir bientot parfait genial "
                    "bonsoir remercie".split()),
}
# Language-neutral words: brand and product names the customers use in both languages.
NEUTRAL = frozenset(
    """visa mastercard master amex american express discover interac debit net2phone autopay auto pay cdr cdrs pdf
    portal billing_portal ok okay email""".split()
)

# The Billing Portal's English labels, which French-speaking customers quote as they are ("Manage Users
# s'affiche pas"): removed before detection so that a French sentence quoting them stays French.
PORTAL_LABELS = re.compile(
    r"\b(manage users|manage organi[sz]ation|edit profile|billing address|billing portal|call history|"
    r"billed exports?|transaction history|transaction details|invoice transaction details|bill to|auto ?pay|"
    r"current balance|account dashboard|dashboard|export)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
_NOISE = re.compile(r"(https?://\S+|\S+@\S+|\b\w*\d\w*\b)", re.UNICODE)
_ACCENTED = re.compile(r"[àâçéèêëîïôûùüÿœæ]", re.IGNORECASE)

CUE_WEIGHT = 1.1
ACCENT_WEIGHT = 1.5
LEXICON_WEIGHT = 0.8
LEXICON_MIN_COUNT = 2
LEXICON_CLIP = 2.5
DECISIVE_CONFIDENCE = 0.9
_DECISIVE_LOGIT = math.log(DECISIVE_CONFIDENCE / (1 - DECISIVE_CONFIDENCE))
# langdetect's probability is clipped to [LANGDETECT_CLIP, 1 - LANGDETECT_CLIP]: its evidence is at most this much.
LANGDETECT_CLIP = 0.02
LANGDETECT_MAX_LOGIT = math.log((1 - LANGDETECT_CLIP) / LANGDETECT_CLIP)
# A conversation's first message sets its language only with at least this confidence ("export", "merci" alone
# do not); below it, the hint from the channel (the portal's interface language) or the default applies.
FIRST_GUESS_CONFIDENCE = 0.6


@dataclass(frozen=True)
class LanguageGuess:
    """What one message says about its language.

    Attributes:
        language: "en" or "fr", the more likely of the two.
        confidence: probability of ``language`` (0.5 to 1).
        decisive: True when the message carries enough evidence to switch a conversation's language.
    """

    language: str
    confidence: float
    decisive: bool


@dataclass(frozen=True)
class Lexicon:
    """Per-word evidence for French over English, learnt from phrasings whose language is known.

    The FAQ articles hold some 1,600 customer phrasings per language, in the vocabulary customers really use
    ("telechargement", "facturation", "releve"); a word's weight is its smoothed log-likelihood ratio, clipped so
    that no single word decides. Words both languages use alike ("cdr", "export", "visa") weigh nothing.
    """

    weights: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def learn(cls, phrasings: Iterable[tuple[str, str]]) -> Lexicon:
        """Learn from ``(text, language)`` pairs, language "en" or "fr"."""
        counts = {language: Counter[str]() for language in SUPPORTED_LANGUAGES}
        for text, language in phrasings:
            if language in counts:
                counts[language].update(_words(text))
        totals = {language: sum(c.values()) for language, c in counts.items()}
        vocabulary = set(counts["en"]) | set(counts["fr"])
        weights: dict[str, float] = {}
        for word in vocabulary:
            english, french = counts["en"][word], counts["fr"][word]
            if english + french < LEXICON_MIN_COUNT:
                continue
            ratio = math.log((french + 1) / (totals["fr"] + len(vocabulary))) - math.log(
                (english + 1) / (totals["en"] + len(vocabulary))
            )
            if abs(ratio) >= 0.5:
                weights[word] = max(-LEXICON_CLIP, min(LEXICON_CLIP, ratio))
        return cls(weights)

    def logit(self, words: Iterable[str]) -> float:
        """Summed evidence of ``words`` (positive: French)."""
        return sum(self.weights.get(word, 0.0) for word in words)

    def as_dict(self) -> dict[str, float]:
        """Plain data, to persist in a model archive."""
        return dict(self.weights)


def _words(text: str) -> list[str]:
    """Accent-folded words of ``text``, without numbers, URLs, addresses or quoted portal labels.

    Texting forms stay as typed: "koi" and "pls" are evidence of their own language, and expanding an ambiguous
    one ("ya": "you" or "il y a") would invent evidence.
    """
    cleaned = PORTAL_LABELS.sub(" ", _NOISE.sub(" ", text))
    return [fold_accents(w) for w in _WORD.findall(cleaned.lower().replace("’", "'"))]


def choose_language(guess: LanguageGuess, current: str | None, hint: str | None = None) -> str:
    """The conversation's language after a message.

    A decisive guess always wins (the customer clearly switched). Otherwise a conversation keeps its language; a
    new one takes a confident guess, else the channel's ``hint`` (e.g. the portal's interface language sent in
    the message metadata), else English.
    """
    if guess.decisive:
        return guess.language
    if current in SUPPORTED_LANGUAGES:
        return str(current)
    if guess.confidence >= FIRST_GUESS_CONFIDENCE:
        return guess.language
    if hint in SUPPORTED_LANGUAGES:
        return str(hint)
    return DEFAULT_LANGUAGE


def _load_factory(seed: int) -> DetectorFactory:
    factory = DetectorFactory()
    profiles = [(Path(PROFILES_DIRECTORY) / code).read_text(encoding="utf-8") for code in SUPPORTED_LANGUAGES]
    factory.load_json_profile(profiles)
    factory.set_seed(seed)
    return factory


class LanguageDetector:
    """Detects English or French in one message; build one per process and reuse it (profiles load once)."""

    def __init__(self, seed: int = 0, lexicon: Lexicon | None = None) -> None:
        self._factory = _load_factory(seed)
        self._lexicon = lexicon or Lexicon()

    def _langdetect_french_probability(self, text: str) -> float | None:
        detector = self._factory.create()
        detector.append(text)
        try:
            probabilities = detector.get_probabilities()
        except LangDetectException:  # no usable characters
            return None
        by_language = {p.lang: p.prob for p in probabilities}
        total = sum(by_language.values())
        return by_language.get("fr", 0.0) / total if total else None

    def detect(self, text: str) -> LanguageGuess:
        """Guess the language of ``text``; never raises, an empty or symbol-only text gives a non-decisive "en"."""
        words = [w for w in _words(text) if w not in NEUTRAL]
        if not words:
            return LanguageGuess(DEFAULT_LANGUAGE, 0.5, False)
        logit = CUE_WEIGHT * sum(1 for w in words if w in FRENCH_CUES)
        logit -= CUE_WEIGHT * sum(1 for w in words if w in ENGLISH_CUES)
        logit += LEXICON_WEIGHT * self._lexicon.logit(words)
        if _ACCENTED.search(PORTAL_LABELS.sub(" ", text)):
            logit += ACCENT_WEIGHT
        letters = sum(len(w) for w in words)
        if abs(logit) - LANGDETECT_MAX_LOGIT >= _DECISIVE_LOGIT:
            # langdetect could not change the verdict (language or decisiveness): skip it, the slowest part on
            # long texts such as mail, and report the confidence it would leave in the worst case.
            logit -= math.copysign(LANGDETECT_MAX_LOGIT, logit)
        else:
            french_probability = self._langdetect_french_probability(" ".join(words)) if letters >= 3 else None
            if french_probability is not None:
                clipped = min(max(french_probability, LANGDETECT_CLIP), 1 - LANGDETECT_CLIP)
                # langdetect is trustworthy on long text only: weigh it by how much text there is.
                logit += math.log(clipped / (1 - clipped)) * min(1.0, letters / 25)
        # Long texts pile up evidence: clamp before exp() (a probability of 1 - 2e-22 is certain enough).
        french = 1 / (1 + math.exp(-max(-50.0, min(50.0, logit))))
        language = "fr" if french >= 0.5 else "en"
        confidence = french if language == "fr" else 1 - french
        content_words = [w for w in words if w not in COURTESY]
        decisive = len(content_words) >= 2 and confidence >= DECISIVE_CONFIDENCE
        closing = _closing_language(words)
        if not decisive and closing is not None:
            sure = confidence if closing == language else 0.0
            return LanguageGuess(closing, round(max(sure, DECISIVE_CONFIDENCE), 4), True)
        return LanguageGuess(language, round(confidence, 4), decisive)


def _closing_language(words: list[str]) -> str | None:
    """The language of a message made only of courtesy words, two or more of them of one language only."""
    counts = {language: sum(1 for w in words if w in closing) for language, closing in CLOSING_WORDS.items()}
    every = COURTESY.union(*CLOSING_WORDS.values())
    if any(w not in every for w in words):
        return None
    clear = [language for language, count in counts.items() if count >= 2 and all(
        n == 0 for other, n in counts.items() if other != language)]
    return clear[0] if clear else None
