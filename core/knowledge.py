"""The knowledge base: bilingual FAQ articles, one YAML file each in ``knowledge/``.

The articles are the single source of truth for the chat answers, the intent classifier's examples and the
mail triage's topics. ``load_articles`` reads and lints them all and reports every problem at once, each naming
the file and the field, so that a broken article can never reach a trained model.

Run ``python -m core.knowledge`` to lint the folder.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.errors import KnowledgeError
from core.language import SUPPORTED_LANGUAGES
from core.text import normalize_for_matching

QUEUES: tuple[str, ...] = ("payments", "invoices", "cdr", "credits", "account", "users", "general")
MIN_QUESTIONS = 10
MAX_TITLE_LENGTH = 60
ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{2,48}$")
_ANNOTATION = re.compile(r"\[[^\]]*\][({]")
FIELDS = ("id", "queue", "title", "answer", "questions")


@dataclass(frozen=True)
class Article:
    """One FAQ topic in both languages.

    Attributes:
        id: stable identifier; the chat intent is ``faq_<id>`` and the answer ``utter_faq_<id>``.
        queue: the mail queue this topic belongs to (one of ``QUEUES``).
        title: short label per language (button titles).
        answer: the answer per language.
        questions: customer phrasings per language (training examples).
        path: the file the article came from.
    """

    id: str
    queue: str
    title: dict[str, str]
    answer: dict[str, str]
    questions: dict[str, tuple[str, ...]]
    path: Path

    @property
    def intent(self) -> str:
        """The NLU intent that asks for this article."""
        return f"faq_{self.id}"

    @property
    def response(self) -> str:
        """The domain response that answers it."""
        return f"utter_faq_{self.id}"


def intent_to_article_id(intent: str | None) -> str | None:
    """The article id behind an FAQ intent name, or None for any other intent."""
    if intent and intent.startswith("faq_"):
        return intent[len("faq_"):]
    return None


def _text_per_language(path: Path, data: dict[str, Any], field: str, problems: list[str]) -> dict[str, str]:
    value = data.get(field)
    if not isinstance(value, dict):
        problems.append(f"{path}: {field}: expected a mapping with keys {', '.join(SUPPORTED_LANGUAGES)}")
        return {}
    result: dict[str, str] = {}
    for language in SUPPORTED_LANGUAGES:
        text = value.get(language)
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{path}: {field}.{language}: missing or empty")
        else:
            result[language] = " ".join(text.split())
    for extra in sorted(set(value) - set(SUPPORTED_LANGUAGES)):
        problems.append(f"{path}: {field}.{extra}: unsupported language (expected {', '.join(SUPPORTED_LANGUAGES)})")
    return result


def _questions(path: Path, data: dict[str, Any], problems: list[str]) -> dict[str, tuple[str, ...]]:
    value = data.get("questions")
    if not isinstance(value, dict):
        problems.append(f"{path}: questions: expected a mapping with keys {', '.join(SUPPORTED_LANGUAGES)}")
        return {}
    result: dict[str, tuple[str, ...]] = {}
    for language in SUPPORTED_LANGUAGES:
        items = value.get(language)
        if not isinstance(items, list):
            problems.append(f"{path}: questions.{language}: missing (expected a list of phrasings)")
            continue
        seen: dict[str, int] = {}
        cleaned: list[str] = []
        for index, item in enumerate(items):
            if not isinstance(item, str) or not item.strip():
                problems.append(f"{path}: questions.{language}[{index}]: expected a non-empty string, got {item!r}")
                continue
            if _ANNOTATION.search(item):
                problems.append(
                    f"{path}: questions.{language}[{index}]: [text](...) is Rasa's entity markup, rephrase {item!r}"
                )
                continue
            key = normalize_for_matching(item)
            if key in seen:
                problems.append(
                    f"{path}: questions.{language}[{index}]: duplicates questions.{language}[{seen[key]}] ({item!r})"
                )
                continue
            seen[key] = index
            cleaned.append(" ".join(item.split()))
        if len(cleaned) < MIN_QUESTIONS:
            problems.append(
                f"{path}: questions.{language}: {len(cleaned)} phrasings, at least {MIN_QUESTIONS} are needed"
            )
        result[language] = tuple(cleaned)
    for extra in sorted(set(value) - set(SUPPORTED_LANGUAGES)):
        problems.append(f"{path}: questions.{extra}: unsupported language")
    return result


def parse_article(path: Path, problems: list[str]) -> Article | None:
    """Read one article file; append what is wrong with it to ``problems`` and return None if it is unusable."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        problems.append(f"{path}: cannot be read: {error}")
        return None
    except yaml.YAMLError as error:
        problems.append(f"{path}: not valid YAML: {' '.join(str(error).split())}")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path}: expected a mapping with the fields {', '.join(FIELDS)}")
        return None
    before = len(problems)
    for unknown in sorted(set(data) - set(FIELDS)):
        problems.append(f"{path}: {unknown}: unknown field (expected {', '.join(FIELDS)})")
    article_id = data.get("id")
    if not isinstance(article_id, str) or not ID_PATTERN.match(article_id):
        problems.append(f"{path}: id: {article_id!r} is not a lower_snake_case identifier of 3 to 49 characters")
    queue = data.get("queue")
    if queue not in QUEUES:
        problems.append(f"{path}: queue: {queue!r} is not one of {', '.join(QUEUES)}")
    title = _text_per_language(path, data, "title", problems)
    for language, text in title.items():
        if len(text) > MAX_TITLE_LENGTH:
            problems.append(f"{path}: title.{language}: longer than {MAX_TITLE_LENGTH} characters (it is a button)")
    answer = _text_per_language(path, data, "answer", problems)
    for language, text in answer.items():
        if "{" in text or "}" in text:
            problems.append(f"{path}: answer.{language}: braces are not allowed (Rasa reads them as slot templates)")
    questions = _questions(path, data, problems)
    if len(problems) > before:
        return None
    return Article(str(article_id), str(queue), title, answer, questions, path)


def load_articles(directory: Path) -> list[Article]:
    """Load every ``*.yml`` article of ``directory``, sorted by id.

    Raises:
        KnowledgeError: listing every problem found (bad YAML, missing language or field, duplicate id, a phrasing
            used by two articles), each naming the file and the field.
    """
    problems: list[str] = []
    paths = sorted(directory.glob("*.yml"))
    if not paths:
        raise KnowledgeError(f"{directory}: no articles (*.yml) found")
    articles: list[Article] = []
    by_id: dict[str, Article] = {}
    owner_of_phrase: dict[str, tuple[Article, str]] = {}
    for path in paths:
        article = parse_article(path, problems)
        if article is None:
            continue
        if article.id in by_id:
            problems.append(f"{path}: id: {article.id!r} is already the id of {by_id[article.id].path}")
            continue
        by_id[article.id] = article
        articles.append(article)
        for language, phrasings in article.questions.items():
            for phrasing in phrasings:
                key = normalize_for_matching(phrasing)
                if key in owner_of_phrase and owner_of_phrase[key][0] is not article:
                    other, other_language = owner_of_phrase[key]
                    problems.append(
                        f"{path}: questions.{language}: {phrasing!r} is also a question of {other.path}"
                        f" (questions.{other_language}); one phrasing cannot train two topics"
                    )
                owner_of_phrase.setdefault(key, (article, language))
    if problems:
        raise KnowledgeError("broken knowledge articles:\n  " + "\n  ".join(problems))
    return sorted(articles, key=lambda a: a.id)


def main(argv: list[str] | None = None) -> int:
    """Lint the knowledge folder: ``python -m core.knowledge [folder]``."""
    from core.settings import Settings

    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0]) if args else Settings.from_env().knowledge_dir
    try:
        articles = load_articles(directory)
    except KnowledgeError as error:
        print(error, file=sys.stderr)
        return 1
    counts = {lang: sum(len(a.questions[lang]) for a in articles) for lang in SUPPORTED_LANGUAGES}
    print(f"{len(articles)} articles OK in {directory} ({', '.join(f'{n} {lang} phrasings' for lang, n in counts.items())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
