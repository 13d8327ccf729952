"""Normalisation that makes texting, Québec contractions and missing accents look like the written form."""

from __future__ import annotations

import pytest

from core.text import fold_accents, normalize_for_matching


@pytest.mark.parametrize(
    ("typed", "written"),
    [
        ("c koi le # pour la facturation", "c'est quoi le numéro pour la facturation"),
        ("chu pas capable d'ajouter ma carte", "je suis pas capable d'ajouter ma carte"),
        ("pk ma facture est pas arrivée", "pourquoi ma facture est pas arrivee"),
        ("where r u", "where are you"),
        ("cant add my card pls", "can not add my card please"),
        ("Ça n’a pas marché", "ça n'a pas marché"),
    ],
)
def test_typed_and_written_forms_normalise_alike(typed: str, written: str) -> None:
    assert normalize_for_matching(typed) == normalize_for_matching(written)


def test_accents_are_folded() -> None:
    assert fold_accents("reçu à l'été, déjà") == "recu a l'ete, deja"
