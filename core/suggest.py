"""Suggested answers: the knowledge articles closest to what a customer wrote, in the customer's language.

Each article is represented, per language, by its customer phrasings, title and answer as tf-idf vectors over
word and character n-grams of normalised text (accents folded, texting expanded: ``core.text``); a ticket's or a
chat's latest customer text is compared with each by cosine similarity. Built once per process from
``knowledge/`` (a few hundred milliseconds), then a suggestion costs about a millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from core.knowledge import Article
from core.language import SUPPORTED_LANGUAGES
from core.text import normalize_for_matching

MIN_SCORE = 0.05  # below this an article shares little more than common words with the text


@dataclass(frozen=True)
class Suggestion:
    """An article to offer the agent: its title and answer in the customer's language, and how close it is."""

    article_id: str
    title: str
    answer: str
    score: float


class Suggester:
    """Ranks the articles of a knowledge base against a customer's text, per language."""

    def __init__(self, articles: list[Article]) -> None:
        self._articles = articles
        self._models: dict[str, tuple[Any, Any]] = {}
        for language in SUPPORTED_LANGUAGES:
            documents = [normalize_for_matching(" ".join([*a.questions[language], a.title[language], a.answer[language]]))
                         for a in articles]
            vectorizer = FeatureUnion([
                ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
                ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)),
            ])
            matrix = vectorizer.fit_transform(documents)
            norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
            self._models[language] = (vectorizer, matrix.multiply(1 / np.maximum(norms, 1e-12)[:, None]).tocsr())

    def suggest(self, text: str, language: str, limit: int = 3) -> list[Suggestion]:
        """The ``limit`` articles closest to ``text``, best first, answered in ``language``."""
        if language not in self._models or not text.strip():
            return []
        vectorizer, matrix = self._models[language]
        vector = vectorizer.transform([normalize_for_matching(text[:4000])])
        norm = float(np.sqrt(vector.multiply(vector).sum()))
        if norm == 0:
            return []
        scores = np.asarray((matrix @ vector.T).todense()).ravel() / norm
        ranked = [int(i) for i in np.argsort(-scores)[:limit] if scores[i] >= MIN_SCORE]
        return [Suggestion(self._articles[i].id, self._articles[i].title[language], self._articles[i].answer[language],
                           round(float(scores[i]), 3)) for i in ranked]
