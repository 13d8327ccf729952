"""The knowledge base loads, and a broken article fails with a message naming the file and the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from core.errors import KnowledgeError
from core.knowledge import MIN_QUESTIONS, QUEUES, load_articles
from core.settings import PROJECT_ROOT

SEED_TOPICS = {
    "contact_billing", "payment_methods", "autopay_timing", "card_failed", "payment_pending", "phone_payments",
    "cdr_export", "cdr_before_july_2025", "document_retention", "credit_not_in_history", "bill_to",
    "billing_emails", "notification_types", "french_language", "add_portal_user", "manage_users_missing",
}


def article_yaml(article_id: str = "sample_topic", **replace: str) -> str:
    questions_en = "\n".join(f"    - english question number {i} about {article_id}" for i in range(MIN_QUESTIONS))
    questions_fr = "\n".join(f"    - question française numéro {i} sur {article_id}" for i in range(MIN_QUESTIONS))
    parts = {
        "id": f"id: {article_id}",
        "queue": "queue: payments",
        "title": "title:\n  en: A title\n  fr: Un titre",
        "answer": "answer:\n  en: An answer.\n  fr: Une réponse.",
        "questions": f"questions:\n  en:\n{questions_en}\n  fr:\n{questions_fr}",
    }
    parts.update(replace)
    return "\n".join(part for part in parts.values() if part) + "\n"


def test_the_knowledge_base_covers_every_topic_of_the_seed() -> None:
    articles = load_articles(PROJECT_ROOT / "knowledge")
    assert {a.id for a in articles} == SEED_TOPICS
    for article in articles:
        assert article.queue in QUEUES
        for language in ("en", "fr"):
            assert article.answer[language] and article.title[language]
            assert len(article.questions[language]) >= 50, (article.id, language)


def test_a_good_article_loads(knowledge_factory: Callable[[str, str], Path]) -> None:
    path = knowledge_factory("sample.yml", article_yaml())
    [article] = load_articles(path.parent)
    assert (article.id, article.intent, article.response) == ("sample_topic", "faq_sample_topic", "utter_faq_sample_topic")
    assert article.answer == {"en": "An answer.", "fr": "Une réponse."}


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("id: [unclosed\n", "not valid YAML"),
        (article_yaml(answer="answer:\n  en: Only English."), "answer.fr: missing"),
        (article_yaml(title="title:\n  fr: Seulement français"), "title.en: missing"),
        (article_yaml(questions="questions:\n  en:\n    - just one"), "questions.en: 1 phrasings"),
        (article_yaml(queue="queue: billing"), "queue: 'billing' is not one of"),
        (article_yaml(id="id: Bad Id"), "id: 'Bad Id'"),
        (article_yaml(answer="answer:\n  en: Pay {now}.\n  fr: Payez."), "answer.en: braces"),
        (article_yaml() + "extra: 1\n", "extra: unknown field"),
    ],
)
def test_a_broken_article_names_its_file_and_field(
    knowledge_factory: Callable[[str, str], Path], text: str, field: str
) -> None:
    path = knowledge_factory("broken.yml", text)
    with pytest.raises(KnowledgeError) as raised:
        load_articles(path.parent)
    assert str(path) in str(raised.value)
    assert field in str(raised.value)


def test_a_duplicate_id_names_both_files(knowledge_factory: Callable[[str, str], Path]) -> None:
    first = knowledge_factory("a.yml", article_yaml("same_topic"))
    second = knowledge_factory("b.yml", article_yaml("same_topic"))
    with pytest.raises(KnowledgeError) as raised:
        load_articles(first.parent)
    assert f"{second}: id: 'same_topic' is already the id of {first}" in str(raised.value)


def test_a_phrasing_cannot_train_two_topics(knowledge_factory: Callable[[str, str], Path]) -> None:
    knowledge_factory("a.yml", article_yaml("topic_a"))
    shared = article_yaml("topic_b").replace("english question number 0 about topic_b", "english question number 0 about topic_a")
    path = knowledge_factory("b.yml", shared)
    with pytest.raises(KnowledgeError, match="is also a question of"):
        load_articles(path.parent)


def test_every_problem_is_reported_at_once(knowledge_factory: Callable[[str, str], Path]) -> None:
    knowledge_factory("a.yml", article_yaml(queue="queue: nope"))
    path = knowledge_factory("b.yml", article_yaml("other_topic", answer="answer:\n  en: x"))
    with pytest.raises(KnowledgeError) as raised:
        load_articles(path.parent)
    assert "a.yml: queue" in str(raised.value) and "b.yml: answer.fr" in str(raised.value)
