"""The understanding layer's entities (``core.nlp``) as Rasa's parse data holds them, and back: written by the NLU
component ``bot.nlu.entities``, read by the actions from the tracker's latest message (this module imports no
Rasa, so the action server loads none of it).
"""

from __future__ import annotations

from typing import Any

from core.nlp import Entity, analyse
from core.redaction import redact_card_data

EXTRACTOR = "BillingEntityExtractor"
# The entities the chat uses (the domain declares them); the rest of the layer's labels are the mailroom's.
LABELS = {
    "INVOICE_NUMBER", "MONTH", "RELATIVE_MONTH", "PREVIOUS_INVOICE", "MONEY", "EMAIL", "PHONE", "POSTAL_CODE",
    "ZIP_CODE", "PLACE",
}


def rasa_entities(text: str, language: str) -> list[dict[str, Any]]:
    """The entities of ``text`` as Rasa parse data holds them (card numbers masked first)."""
    redacted = redact_card_data(text).text
    return [_as_rasa(entity) for entity in analyse(redacted, language).entities if entity.label in LABELS]


def _as_rasa(entity: Entity) -> dict[str, Any]:
    value = entity.value
    if entity.label == "PLACE":
        value = f"{entity.country}:{entity.region or ''}"
    return {
        "entity": entity.label.lower(), "value": value if value is not None else entity.text, "start": entity.start,
        "end": entity.end, "confidence_entity": 1.0, "extractor": EXTRACTOR,
    }


def core_entities(parse_data_entities: list[dict[str, Any]]) -> list[Entity]:
    """The parse data's entities (as ``rasa_entities`` wrote them) back as the understanding layer's."""
    return [
        Entity(str(e["entity"]).upper(), "", int(e.get("start") or 0), int(e.get("end") or 0), str(e.get("value")))
        for e in parse_data_entities if e.get("extractor") == EXTRACTOR
    ]
