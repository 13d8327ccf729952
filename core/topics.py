"""Topic classification: a linear model over word and character n-grams of normalised text.

One model serves both languages (accents folded, texting expanded by ``core.text``), so a customer mixing
French and English portal words is still understood. The chat assistant trains it on every intent's examples
(FAQ articles, conversation intents and out-of-scope negatives); the mailroom trains it on the articles alone.
Character n-grams make it tolerant of typos; the out-of-scope class, trained on real queries from other
domains, lets it say "not a billing question" instead of forcing the nearest FAQ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from core.text import normalize_for_matching

MODEL_FILE = "topic_model.skops"


@dataclass(frozen=True)
class TopicModelConfig:
    """Hyper-parameters, chosen with ``bench/nlu_eval.py``.

    Attributes:
        regularization: inverse regularisation strength C of the logistic regression.
        char_ngrams: character n-gram range (within word boundaries).
        word_ngrams: word n-gram range.
        negative_weight: sample weight of out-of-scope negatives relative to the other examples; the negatives
            outnumber each topic a hundredfold, a lower weight keeps them from drowning short billing questions.
        negative_label: the label of out-of-scope examples.
    """

    regularization: float = 20.0
    char_ngrams: tuple[int, int] = (2, 5)
    word_ngrams: tuple[int, int] = (1, 2)
    negative_weight: float = 0.2
    negative_label: str = "out_of_scope"


class TopicModel:
    """A trained classifier: ``rank(text)`` gives every label with its probability, best first."""

    def __init__(self, words: TfidfVectorizer, chars: TfidfVectorizer, classifier: LogisticRegression) -> None:
        self._words = words
        self._chars = chars
        self._classifier = classifier

    @property
    def labels(self) -> list[str]:
        """Every label the model knows."""
        return [str(label) for label in self._classifier.classes_]

    @classmethod
    def train(
        cls, texts: Sequence[str], labels: Sequence[str], config: TopicModelConfig | None = None
    ) -> TopicModel:
        """Fit a model on parallel lists of example texts and their labels (at least two distinct labels)."""
        config = config or TopicModelConfig()
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        if len(set(labels)) < 2:
            raise ValueError("a topic model needs examples of at least two labels")
        normalized = [normalize_for_matching(text) for text in texts]
        words = TfidfVectorizer(ngram_range=config.word_ngrams, sublinear_tf=True, token_pattern=r"[\w']+")
        chars = TfidfVectorizer(analyzer="char_wb", ngram_range=config.char_ngrams, sublinear_tf=True, min_df=2)
        features = scipy.sparse.hstack([words.fit_transform(normalized), chars.fit_transform(normalized)]).tocsr()
        weights = np.array([config.negative_weight if label == config.negative_label else 1.0 for label in labels])
        classifier = LogisticRegression(C=config.regularization, max_iter=3000, random_state=0)
        classifier.fit(features, list(labels), sample_weight=weights)
        return cls(words, chars, classifier)

    def _features(self, texts: Sequence[str]) -> scipy.sparse.csr_matrix:
        normalized = [normalize_for_matching(text) for text in texts]
        return scipy.sparse.hstack([self._words.transform(normalized), self._chars.transform(normalized)]).tocsr()

    def rank_many(self, texts: Sequence[str]) -> list[list[tuple[str, float]]]:
        """For each text, every label with its probability, most likely first."""
        if not texts:
            return []
        probabilities = self._classifier.predict_proba(self._features(texts))
        labels = self.labels
        ranked: list[list[tuple[str, float]]] = []
        for row in probabilities:
            order = np.argsort(-row)
            ranked.append([(labels[i], float(row[i])) for i in order])
        return ranked

    def rank(self, text: str) -> list[tuple[str, float]]:
        """Every label with its probability for one text, most likely first."""
        return self.rank_many([text])[0]

    def save(self, directory: Path) -> Path:
        """Write the model into ``directory`` (skops format: no pickle is ever loaded back)."""
        import skops.io

        path = Path(directory) / MODEL_FILE
        skops.io.dump({"words": self._words, "chars": self._chars, "classifier": self._classifier}, path)
        return path

    @classmethod
    def load(cls, directory: Path) -> TopicModel:
        """Read a model written by ``save``; refuses any object type other than the ones ``save`` writes."""
        import skops.io

        path = Path(directory) / MODEL_FILE
        untrusted = skops.io.get_untrusted_types(file=path)
        allowed = {"numpy.float64", "builtins.dict", "scipy.sparse._csr.csr_matrix"}
        unexpected = sorted(set(untrusted) - allowed)
        if unexpected:
            raise ValueError(f"{path}: unexpected object types {unexpected}")
        state = skops.io.load(path, trusted=list(untrusted))
        return cls(state["words"], state["chars"], state["classifier"])
