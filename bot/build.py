"""Generate the Rasa files that come from the knowledge base: ``python -m bot.build``.

From ``knowledge/*.yml`` it writes, under ``build/`` (never committed, never edited by hand):

- ``build/domain/domain.yml``: a copy of the hand-written root ``domain.yml``;
- ``build/domain/faq.yml``: one intent ``faq_<id>`` and one response ``utter_faq_<id>`` (English, and French
  when the ``language`` slot is ``fr``) per article;
- ``build/data/faq_nlu.yml``: every article's phrasings in both languages as examples of its intent;
- ``build/data/faq_rules.yml``: answer the article, then ask whether it helped.

``make train`` runs it before ``rasa train --domain build/domain --data bot/data build/data``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from bot.slots import LANGUAGE_SLOT
from core.errors import KnowledgeError
from core.knowledge import Article, load_articles
from core.settings import PROJECT_ROOT, Settings

HEADER = "# Generated from knowledge/ by `python -m bot.build`: do not edit, edit the article instead.\n"


class _LiteralDumper(yaml.SafeDumper):
    """Writes multi-line strings as literal blocks, as Rasa's examples format expects."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _represent_str)


def _dump(path: Path, document: dict[str, Any]) -> None:
    text = yaml.dump(document, Dumper=_LiteralDumper, allow_unicode=True, sort_keys=False, width=120)
    path.write_text(HEADER + text, encoding="utf-8")


def faq_domain(articles: list[Article]) -> dict[str, Any]:
    """Domain fragment: the FAQ intents and their bilingual answers."""
    responses = {
        article.response: [
            {"condition": [{"type": "slot", "name": LANGUAGE_SLOT, "value": "fr"}], "text": article.answer["fr"]},
            {"text": article.answer["en"]},
        ]
        for article in articles
    }
    return {"version": "3.1", "intents": [a.intent for a in articles], "responses": responses}


def faq_nlu(articles: list[Article]) -> dict[str, Any]:
    """NLU examples: each article's phrasings, one block per language, labelled with it (the language annotator
    learns its vocabulary evidence from those labels)."""
    blocks = []
    for article in articles:
        for language in sorted(article.questions):
            # One example per line; a line break inside a phrasing would start a new example.
            examples = "".join(f"- {' '.join(q.split())}\n" for q in article.questions[language])
            blocks.append({"intent": article.intent, "metadata": {"language": language}, "examples": examples})
    return {"version": "3.1", "nlu": blocks}


def faq_rules(articles: list[Article]) -> dict[str, Any]:
    """Rules: an FAQ intent gets its answer, then "Was this helpful?"."""
    rules = [
        {
            "rule": f"answer {article.id}",
            "steps": [{"intent": article.intent}, {"action": article.response}, {"action": "utter_ask_helpful"}],
        }
        for article in articles
    ]
    return {"version": "3.1", "rules": rules}


def build(knowledge_dir: Path, out_dir: Path, root_domain: Path) -> list[Article]:
    """Write every generated file under ``out_dir``; returns the articles used."""
    articles = load_articles(knowledge_dir)
    domain_dir, data_dir = out_dir / "domain", out_dir / "data"
    for directory in (domain_dir, data_dir):
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
    shutil.copyfile(root_domain, domain_dir / "domain.yml")
    _dump(domain_dir / "faq.yml", faq_domain(articles))
    _dump(data_dir / "faq_nlu.yml", faq_nlu(articles))
    _dump(data_dir / "faq_rules.yml", faq_rules(articles))
    return articles


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0]) if args else PROJECT_ROOT / "build"
    try:
        articles = build(Settings.from_env().knowledge_dir, out_dir, PROJECT_ROOT / "domain.yml")
    except KnowledgeError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"generated the Rasa files of {len(articles)} articles in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
