"""The Rasa test stories cover every FAQ article in both languages, with phrasings never trained on."""

from __future__ import annotations

import yaml

from core.knowledge import load_articles
from core.settings import PROJECT_ROOT
from core.text import normalize_for_matching

STORIES = PROJECT_ROOT / "tests" / "stories"


def story_messages() -> list[tuple[str, str, str]]:
    """(story name, intent, text) of every user turn with text."""
    turns = []
    for path in sorted(STORIES.glob("test_*.yml")):
        for story in yaml.safe_load(path.read_text(encoding="utf-8"))["stories"]:
            for step in story["steps"]:
                if "user" in step:
                    turns.append((story["story"], step["intent"], step["user"].strip()))
    return turns


def test_every_article_has_an_english_and_a_french_test_story() -> None:
    covered = {(intent, "fr" if "(fr" in name else "en") for name, intent, _ in story_messages()}
    for article in load_articles(PROJECT_ROOT / "knowledge"):
        assert (article.intent, "en") in covered, article.id
        assert (article.intent, "fr") in covered, article.id


def test_no_faq_test_phrasing_is_a_training_example() -> None:
    """(Conversation turns such as "oui" or "bonjour" are naturally training examples too; FAQ questions not.)"""
    trained = {
        normalize_for_matching(q) for a in load_articles(PROJECT_ROOT / "knowledge") for qs in a.questions.values() for q in qs
    }
    for path in (PROJECT_ROOT / "bot" / "data").rglob("*.yml"):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu") or []:
            trained.update(normalize_for_matching(line[2:]) for line in block["examples"].splitlines() if line.strip())
    leaked = [
        text for _, intent, text in story_messages() if intent.startswith("faq_") and normalize_for_matching(text) in trained
    ]
    assert leaked == []
