"""The Rasa files generated from the knowledge base: every article, both languages, nothing retyped."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.build import build
from core.knowledge import load_articles
from core.settings import PROJECT_ROOT


def test_generated_files_carry_every_article_in_both_languages(tmp_path: Path) -> None:
    articles = build(PROJECT_ROOT / "knowledge", tmp_path, PROJECT_ROOT / "domain.yml")
    domain = yaml.safe_load((tmp_path / "domain" / "faq.yml").read_text(encoding="utf-8"))
    nlu = yaml.safe_load((tmp_path / "data" / "faq_nlu.yml").read_text(encoding="utf-8"))
    rules = yaml.safe_load((tmp_path / "data" / "faq_rules.yml").read_text(encoding="utf-8"))
    examples: dict[tuple[str, str], str] = {(b["intent"], b["metadata"]["language"]): b["examples"] for b in nlu["nlu"]}
    steps = {rule["steps"][0]["intent"]: rule["steps"] for rule in rules["rules"]}
    assert set(domain["intents"]) == {a.intent for a in articles} == {i for i, _ in examples} == set(steps)
    for article in articles:
        french, english = domain["responses"][article.response]
        assert french == {"condition": [{"type": "slot", "name": "language", "value": "fr"}], "text": article.answer["fr"]}
        assert english == {"text": article.answer["en"]}
        for language in ("en", "fr"):
            lines = [line[2:] for line in examples[(article.intent, language)].splitlines()]
            assert lines == list(article.questions[language])
        assert steps[article.intent][1:] == [{"action": article.response}, {"action": "utter_ask_helpful"}]
    assert (tmp_path / "domain" / "domain.yml").read_text() == (PROJECT_ROOT / "domain.yml").read_text()


def test_adding_an_article_file_adds_its_intent_answer_and_rule(tmp_path: Path) -> None:
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    for article in load_articles(PROJECT_ROOT / "knowledge"):
        (knowledge / article.path.name).write_text(article.path.read_text(encoding="utf-8"), encoding="utf-8")
    questions_en = "".join(f"    - how do I get a paper copy of my bill number {i}\n" for i in range(12))
    questions_fr = "".join(f"    - comment avoir une copie papier de ma facture numéro {i}\n" for i in range(12))
    (knowledge / "paper_invoice.yml").write_text(
        "id: paper_invoice\nqueue: invoices\n"
        "title:\n  en: Paper invoices\n  fr: Factures papier\n"
        "answer:\n  en: Invoices are available as PDF in the Billing Portal.\n"
        "  fr: Les factures sont offertes en PDF dans le portail de facturation.\n"
        f"questions:\n  en:\n{questions_en}  fr:\n{questions_fr}",
        encoding="utf-8",
    )
    build(knowledge, tmp_path / "out", PROJECT_ROOT / "domain.yml")
    domain = yaml.safe_load((tmp_path / "out" / "domain" / "faq.yml").read_text(encoding="utf-8"))
    assert "faq_paper_invoice" in domain["intents"]
    assert domain["responses"]["utter_faq_paper_invoice"][0]["text"].startswith("Les factures sont offertes")
