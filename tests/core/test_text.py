"""Normalisation that makes texting, Québec contractions and missing accents look like the written form."""

from __future__ import annotations

import sys
import unicodedata

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


def test_folding_removes_every_combining_mark_of_unicode() -> None:
    every_mark = "".join(chr(code) for code in range(sys.maxunicode + 1) if unicodedata.combining(chr(code)))
    assert fold_accents("e" + every_mark + "x") == "ex"
    assert fold_accents("ŒUVRE ﬁn Ångström") == "ŒUVRE fin Angstrom"  # compatibility forms too; Œ is a letter
