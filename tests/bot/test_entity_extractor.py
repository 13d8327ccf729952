"""The NLU component that puts the understanding layer's entities in the parse data, and the actions' reading of
them back: the chat's invoice requests see what the customer named, in either language, and never a card number."""

from __future__ import annotations

from datetime import date
from typing import Any

from rasa.shared.nlu.training_data.message import Message

from bot.entities import core_entities
from bot.nlu.entities import BillingEntityExtractor
from core.entities import InvoiceReference, invoice_reference


def parsed(text: str, language: str) -> list[dict[str, Any]]:
    extractor = BillingEntityExtractor.create({}, None, None, None)  # type: ignore[arg-type]
    message = Message(data={"text": text, "language": {"language": language, "confidence": 0.99, "decisive": True}})
    extractor.process([message])
    return list(message.get("entities") or [])


def test_entities_reach_the_parse_data_in_both_languages() -> None:
    english = parsed("my March invoice was $219.80, we're in Laval, QC", "en")
    assert {(e["entity"], e["value"]) for e in english} == {
        ("month", "--03"), ("money", "219.80"), ("place", "CA:"), ("place", "CA:QC")}
    french = parsed("la facture INV-202610-0231 de 1 234,56 $", "fr")
    assert [(e["entity"], e["value"]) for e in french] == [("invoice_number", "INV-202610-0231"), ("money", "1234.56")]
    assert all(e["extractor"] == "BillingEntityExtractor" for e in english + french)


def test_the_action_reads_the_invoice_from_the_entities_against_its_own_date() -> None:
    entities = core_entities(parsed("la facture de décembre", "fr"))
    assert invoice_reference(entities, date(2026, 11, 15)) == InvoiceReference(month=date(2025, 12, 1))
    assert invoice_reference(entities, date(2027, 1, 5)) == InvoiceReference(month=date(2026, 12, 1))
    assert invoice_reference(core_entities(parsed("hello", "en")), date(2026, 11, 15)) == InvoiceReference()


def test_no_entity_carries_a_card_number_and_button_payloads_are_left_alone() -> None:
    found = parsed("charge 4111 1111 1111 1111 for $50.00 please", "en")
    assert [(e["entity"], e["value"]) for e in found] == [("money", "50.00")]
    assert "4111" not in repr(found)
    assert parsed("/affirm", "en") == []
