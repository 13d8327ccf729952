"""Language detection of single messages and the conversation-language decision, in both languages."""

from __future__ import annotations

import pytest

from core.language import LanguageDetector, LanguageGuess, choose_language


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
    assert choose_language(LanguageGuess(other, 0.6, decisive=False), None, hint=hint) == hint


def test_a_new_conversation_with_an_unsure_guess_and_no_hint_is_in_english() -> None:
    assert choose_language(LanguageGuess("fr", 0.6, decisive=False), None) == "en"


@pytest.mark.parametrize("hint", ["en", "fr"])
def test_a_decisive_message_beats_the_hint(hint: str) -> None:
    other = "fr" if hint == "en" else "en"
    assert choose_language(LanguageGuess(other, 0.99, decisive=True), None, hint=hint) == other
