"""The topic model: trains, ranks, and survives a save/load round trip unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.topics import TopicModel, TopicModelConfig

EXAMPLES = {
    "pay": ["how do i pay my invoice", "can i pay by visa", "comment payer ma facture", "payer avec ma carte"],
    "calls": ["where are my call records", "export call details", "où sont mes appels", "exporter les appels"],
    "out_of_scope": ["what is the weather", "tell me a joke", "quelle heure est-il", "une recette de pâtes"],
}


@pytest.fixture(scope="module")
def model() -> TopicModel:
    texts = [text for texts in EXAMPLES.values() for text in texts]
    labels = [label for label, texts in EXAMPLES.items() for _ in texts]
    return TopicModel.train(texts, labels, TopicModelConfig(negative_weight=1.0))


def test_ranks_every_label_most_likely_first(model: TopicModel) -> None:
    ranking = model.rank("payer ma facture avec visa")
    assert ranking[0][0] == "pay"
    assert {label for label, _ in ranking} == set(EXAMPLES)
    assert abs(sum(p for _, p in ranking) - 1.0) < 1e-6
    assert [p for _, p in ranking] == sorted((p for _, p in ranking), reverse=True)


def test_save_and_load_give_the_same_rankings(model: TopicModel, tmp_path: Path) -> None:
    model.save(tmp_path)
    loaded = TopicModel.load(tmp_path)
    for text in ["exporter mes appels", "weather tomorrow", "pay by card"]:
        assert loaded.rank(text) == pytest.approx(model.rank(text))


def test_training_needs_two_labels() -> None:
    with pytest.raises(ValueError, match="at least two labels"):
        TopicModel.train(["a", "b"], ["x", "x"])


TEXTS = [
    "payer ma facture avec visa", "Where are my call records for June?", "", "?!", "zzzz qqqq",
    "Bonjour, je n'arrive pas à exporter les appels de juin. Pouvez-vous m'aider ? Merci, Marie\n" * 5,
    "pay pay pay pay invoice invoice card card card", "l'été à Montréal, 3 $ de frais #12",
]


@pytest.mark.parametrize("labels", [list(EXAMPLES), ["pay", "calls"]], ids=["softmax", "binary"])
def test_the_fast_scorer_gives_scikit_learns_probabilities(labels: list[str]) -> None:
    texts = [text for label in labels for text in EXAMPLES[label]]
    model = TopicModel.train(texts, [label for label in labels for _ in EXAMPLES[label]])
    expected = model._classifier.predict_proba(model._features(TEXTS))
    for text, row in zip(TEXTS, expected):
        ranking = dict(model.rank(text))
        assert [ranking[label] for label in model.labels] == pytest.approx(list(row), abs=1e-12), text
