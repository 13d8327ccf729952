"""Topic classification: a linear model over word and character n-grams of normalised text.

One model serves both languages (accents folded, texting expanded by ``core.text``), so a customer mixing
French and English portal words is still understood. The chat assistant trains it on every intent's examples
(FAQ articles, conversation intents and out-of-scope negatives); the mailroom trains it on the articles alone.
Character n-grams make it tolerant of typos; the out-of-scope class, trained on real queries from other
domains, lets it say "not a billing question" instead of forcing the nearest FAQ.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import hashlib
import io
import json
import zipfile
from typing import Any

import numpy as np
import scipy.sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from core.files import write_atomic
from core.text import normalize_for_matching



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
        self._scorer = _Scorer(words, chars, classifier)

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
        probabilities = [self._scorer.probabilities(normalize_for_matching(text)) for text in texts]
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
        """Write the model into ``directory``: vocabularies and weights as JSON and NumPy arrays (no pickle, so
        loading a model can never run code; and no heavy persistence library on the start-up path).

        Each file is written atomically (``core.files``), the arrays first and the JSON last with the arrays'
        SHA-256: a crash at any point leaves no JSON, an older model's, or a complete model, and ``load`` tells a
        truncated or mismatched arrays file by its digest."""
        directory = Path(directory)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, words_idf=self._words.idf_, chars_idf=self._chars.idf_,
            coef=self._classifier.coef_, intercept=self._classifier.intercept_,
        )
        arrays = buffer.getvalue()
        meta = {
            "labels": self.labels,
            "words": {"params": _vectorizer_params(self._words), "vocabulary": _plain_vocabulary(self._words)},
            "chars": {"params": _vectorizer_params(self._chars), "vocabulary": _plain_vocabulary(self._chars)},
            "arrays_sha256": hashlib.sha256(arrays).hexdigest(),
        }
        write_atomic(directory / MODEL_ARRAYS, arrays)
        return write_atomic(directory / MODEL_META, json.dumps(meta))

    @classmethod
    def load(cls, directory: Path) -> TopicModel:
        """Read a model written by ``save``. Raises ``FileNotFoundError`` when there is none, ``CorruptModel``
        (a ``ValueError``) when its files are truncated, damaged or do not belong together."""
        directory = Path(directory)
        meta_bytes = (directory / MODEL_META).read_bytes()  # no model: FileNotFoundError
        try:
            meta = json.loads(meta_bytes.decode("utf-8"))
            arrays_bytes = (directory / MODEL_ARRAYS).read_bytes()
            expected = meta.get("arrays_sha256")
            if expected is not None and hashlib.sha256(arrays_bytes).hexdigest() != expected:
                raise CorruptModel(f"{directory / MODEL_ARRAYS}: its digest does not match {MODEL_META}")
            with np.load(io.BytesIO(arrays_bytes), allow_pickle=False) as arrays:
                words = _restore_vectorizer(meta["words"], arrays["words_idf"])
                chars = _restore_vectorizer(meta["chars"], arrays["chars_idf"])
                classifier = LogisticRegression()
                classifier.classes_ = np.array(meta["labels"], dtype=object)
                classifier.coef_ = arrays["coef"]
                classifier.intercept_ = arrays["intercept"]
        except CorruptModel:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile, EOFError) as error:
            raise CorruptModel(f"{directory}: unreadable topic model ({type(error).__name__}: {error})") from error
        classifier.n_features_in_ = classifier.coef_.shape[1]
        if classifier.n_features_in_ != len(words.vocabulary_) + len(chars.vocabulary_):
            raise CorruptModel(f"{directory}: the weights do not match the vocabularies")
        return cls(words, chars, classifier)


class CorruptModel(ValueError):
    """Raised when a saved topic model's files are truncated, damaged or do not belong together."""


class _Scorer:
    """``predict_proba`` of the fitted vectorizers and classifier, one text at a time, without scikit-learn's
    per-call costs (sparse matrices, input validation: three quarters of the time for one mail): the vectorizers'
    own analyzers, then tf-idf, l2 norms, the linear scores and the softmax in NumPy. ``tests/core/test_topics.py``
    checks it gives scikit-learn's probabilities."""

    def __init__(self, words: TfidfVectorizer, chars: TfidfVectorizer, classifier: LogisticRegression) -> None:
        self._blocks = []
        offset = 0
        for vectorizer in (words, chars):
            if vectorizer.norm != "l2" or not vectorizer.use_idf:
                raise ValueError("the fast scorer computes l2-normalised tf-idf only")
            self._blocks.append((vectorizer.build_analyzer(), vectorizer.vocabulary_, np.asarray(vectorizer.idf_),
                                 bool(vectorizer.sublinear_tf), offset))
            offset += len(vectorizer.vocabulary_)
        self._coef = np.asarray(classifier.coef_)
        self._intercept = np.asarray(classifier.intercept_)
        self._binary = len(classifier.classes_) == 2  # scikit-learn's one-vs-rest case: a logistic, not a softmax

    def probabilities(self, normalized: str) -> np.ndarray[Any, Any]:
        """Each label's probability for one normalised text, in the classifier's label order."""
        indices: list[np.ndarray[Any, Any]] = []
        values: list[np.ndarray[Any, Any]] = []
        for analyze, vocabulary, idf, sublinear, offset in self._blocks:
            known = [(vocabulary[gram], count) for gram, count in Counter(analyze(normalized)).items()
                     if gram in vocabulary]
            if not known:
                continue
            found = np.fromiter((index for index, _ in known), dtype=np.int64, count=len(known))
            tf = np.fromiter((count for _, count in known), dtype=np.float64, count=len(known))
            weights = (np.log(tf) + 1.0 if sublinear else tf) * idf[found]
            weights /= np.sqrt(np.dot(weights, weights))
            indices.append(found + offset)
            values.append(weights)
        scores = self._intercept.astype(np.float64)
        if indices:
            scores = scores + self._coef[:, np.concatenate(indices)] @ np.concatenate(values)
        if self._binary:
            positive = 1.0 / (1.0 + np.exp(-scores[0]))
            return np.array([1.0 - positive, positive])
        exponentials: np.ndarray[Any, Any] = np.exp(scores - scores.max())
        return exponentials / exponentials.sum()  # type: ignore[no-any-return]


MODEL_META = "topic_model.json"
MODEL_ARRAYS = "topic_model.npz"
_VECTORIZER_PARAMS = ("analyzer", "ngram_range", "sublinear_tf", "min_df", "token_pattern", "lowercase")


def _vectorizer_params(vectorizer: TfidfVectorizer) -> dict[str, Any]:
    params = vectorizer.get_params()
    return {name: params[name] for name in _VECTORIZER_PARAMS}


def _plain_vocabulary(vectorizer: TfidfVectorizer) -> dict[str, int]:
    return {term: int(index) for term, index in vectorizer.vocabulary_.items()}


def _restore_vectorizer(saved: dict[str, Any], idf: np.ndarray[Any, Any]) -> TfidfVectorizer:
    params = dict(saved["params"])
    params["ngram_range"] = tuple(params["ngram_range"])
    vectorizer = TfidfVectorizer(**params)
    vectorizer.vocabulary_ = {term: int(index) for term, index in saved["vocabulary"].items()}
    vectorizer.idf_ = idf
    if len(vectorizer.vocabulary_) != len(idf):
        raise ValueError("the idf weights do not match the vocabulary")
    return vectorizer
