"""The topic model: trains, ranks, and survives a save/load round trip unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.topics import MODEL_ARRAYS, MODEL_META, CorruptModel, TopicModel, TopicModelConfig

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


@pytest.mark.parametrize("damage", ["truncated arrays", "empty arrays", "other arrays", "truncated json", "no arrays"])
def test_a_damaged_saved_model_is_refused_as_corrupt_not_loaded(model: TopicModel, tmp_path: Path, damage: str) -> None:
    model.save(tmp_path)
    arrays, meta = tmp_path / MODEL_ARRAYS, tmp_path / MODEL_META
    if damage == "truncated arrays":
        arrays.write_bytes(arrays.read_bytes()[: arrays.stat().st_size // 2])
    elif damage == "empty arrays":
        arrays.write_bytes(b"")
    elif damage == "other arrays":  # a whole, valid file that belongs to another model
        other = TopicModel.train(["credit memo", "credit note", "phone call", "call list"], ["x", "x", "y", "y"],
                                   TopicModelConfig(negative_weight=1.0))
        other.save(tmp_path / "other")
        arrays.write_bytes((tmp_path / "other" / MODEL_ARRAYS).read_bytes())
    elif damage == "truncated json":
        meta.write_text(meta.read_text()[:100])
    else:
        arrays.unlink()
    with pytest.raises(CorruptModel):
        TopicModel.load(tmp_path)


def test_saving_leaves_no_temporary_file_and_no_model_is_not_a_corrupt_one(model: TopicModel, tmp_path: Path) -> None:
    model.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([MODEL_ARRAYS, MODEL_META])
    with pytest.raises(FileNotFoundError):
        TopicModel.load(tmp_path / "nothing-here")
