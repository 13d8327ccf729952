"""Language detection of single messages and the conversation-language decision, in both languages."""

from __future__ import annotations

import pytest

from core.knowledge import load_articles
from core.language import LanguageDetector, LanguageGuess, Lexicon, choose_language
from core.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector(seed=0)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("What payment methods do you accept?", "en"),
        ("why can't I submit another payment while one is pending", "en"),
        ("my card keeps getting rejected when i add it", "en"),
        ("where r my call logs for last month pls", "en"),
        ("Quels modes de paiement acceptez-vous?", "fr"),
        ("quelles cartes acceptez-vous", "fr"),
        ("chu pas capable d'ajouter ma carte", "fr"),
        ("c koi le # pour la facturation", "fr"),
        ("pourquoi je vois pas Manage Users", "fr"),
        ("le bouton Export marche pas", "fr"),
        ("ou sont mes releves d'appels", "fr"),
    ],
)
def test_clear_messages_are_detected_decisively(detector: LanguageDetector, text: str, language: str) -> None:
    guess = detector.detect(text)
    assert guess.language == language
    assert guess.decisive


@pytest.mark.parametrize("text", ["ok", "merci", "Visa?", "INV-2025-0042", "oui", "yes", "thanks", "AMEX", "?", ""])
def test_short_or_ambiguous_messages_are_not_decisive(detector: LanguageDetector, text: str) -> None:
    assert not detector.detect(text).decisive


@pytest.mark.parametrize(("text", "language"), [("bonjour", "fr"), ("salut", "fr"), ("hi", "en"), ("hello", "en")])
def test_first_guess_of_a_greeting(detector: LanguageDetector, text: str, language: str) -> None:
    assert detector.detect(text).language == language


def test_detection_is_deterministic(detector: LanguageDetector) -> None:
    text = "facture"
    assert len({LanguageDetector(seed=0).detect(text) for _ in range(5)} | {detector.detect(text)}) == 1


@pytest.mark.parametrize("current", ["en", "fr"])
def test_an_ambiguous_message_keeps_the_conversation_language(current: str) -> None:
    other = "fr" if current == "en" else "en"
    assert choose_language(LanguageGuess(other, 0.6, decisive=False), current) == current


@pytest.mark.parametrize("current", ["en", "fr"])
def test_a_decisive_message_switches_the_conversation_language(current: str) -> None:
    other = "fr" if current == "en" else "en"
    assert choose_language(LanguageGuess(other, 0.99, decisive=True), current) == other


@pytest.mark.parametrize("guess", ["en", "fr"])
def test_a_new_conversation_takes_a_confident_first_guess(guess: str) -> None:
    assert choose_language(LanguageGuess(guess, 0.85, decisive=False), None) == guess


@pytest.mark.parametrize("hint", ["en", "fr"])
def test_a_new_conversation_with_an_unsure_guess_takes_the_channel_hint(hint: str) -> None:
    other = "fr" if hint == "en" else "en"
    assert choose_language(LanguageGuess(other, 0.55, decisive=False), None, hint=hint) == hint


def test_a_new_conversation_with_an_unsure_guess_and_no_hint_is_in_english() -> None:
    assert choose_language(LanguageGuess("fr", 0.55, decisive=False), None) == "en"


@pytest.mark.parametrize("hint", ["en", "fr"])
def test_a_decisive_message_beats_the_hint(hint: str) -> None:
    other = "fr" if hint == "en" else "en"
    assert choose_language(LanguageGuess(other, 0.99, decisive=True), None, hint=hint) == other


def test_the_lexicon_learns_which_words_belong_to_which_language() -> None:
    lexicon = Lexicon.learn(
        [("ma facture de téléchargement", "fr"), ("téléchargement de la facture", "fr"), ("facturation svp", "fr"),
         ("facturation canada", "fr"), ("download my invoice", "en"), ("invoice download", "en"),
         ("export cdr", "en"), ("export cdr", "fr")]
    )
    assert lexicon.logit(["telechargement"]) > 0 > lexicon.logit(["invoice"])
    assert lexicon.logit(["export", "cdr"]) == 0  # used alike by both languages


def test_the_lexicon_carries_unaccented_french_keywords() -> None:
    # langdetect alone takes unaccented French keywords for English.
    learnt = LanguageDetector(seed=0, lexicon=Lexicon({"telechargement": 2.5, "facturation": 2.5}))
    assert learnt.detect("telechargement facturation").language == "fr"


@pytest.fixture(scope="module")
def knowledgeable() -> LanguageDetector:
    """A detector with the lexicon learnt from the knowledge base's phrasings, as the trained model has."""
    articles = load_articles(PROJECT_ROOT / "knowledge")
    labelled = [(q, language) for a in articles for language, qs in a.questions.items() for q in qs]
    return LanguageDetector(seed=0, lexicon=Lexicon.learn(labelled))


@pytest.mark.parametrize(
    ("text", "language"),
    [("cartes acceptees", "fr"), ("credit pas reflete", "fr"), ("comment changer les infos", "fr"),
     ("autopay charge date", "en"), ("cdr download last month", "en")],
)
def test_keyword_queries_with_the_learnt_lexicon(knowledgeable: LanguageDetector, text: str, language: str) -> None:
    assert knowledgeable.detect(text).language == language


@pytest.mark.parametrize("text", ["Manage Users s'affiche pas", "le bouton Edit Profile marche pas"])
def test_quoted_english_portal_labels_do_not_make_a_french_sentence_english(
    knowledgeable: LanguageDetector, text: str
) -> None:
    assert knowledgeable.detect(text).language == "fr"


@pytest.mark.parametrize("text", ["facture " * 5000, "invoice payment " * 5000])
def test_very_long_texts_do_not_overflow(detector: LanguageDetector, text: str) -> None:
    assert detector.detect(text).decisive


@pytest.mark.parametrize(
    ("text", "language"),
    [("thanks, bye", "en"), ("thank you", "en"), ("Thanks a lot, have a nice day", "en"),
     ("merci beaucoup", "fr"), ("bonne journée!", "fr"), ("merci, au revoir", "fr")],
)
def test_a_closing_in_one_language_only_switches_the_conversation(
    detector: LanguageDetector, text: str, language: str
) -> None:
    guess = detector.detect(text)
    assert (guess.language, guess.decisive) == (language, True)
    other = "fr" if language == "en" else "en"
    assert choose_language(guess, other) == language


@pytest.mark.parametrize("text", ["ok merci", "merci, bye", "oui merci", "ok thanks", "yes please"])
def test_a_closing_that_bilingual_customers_say_either_way_does_not(detector: LanguageDetector, text: str) -> None:
    assert not detector.detect(text).decisive
