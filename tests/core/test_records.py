"""Handoff requests and feedback are stored in the shared store, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from core.db.models import REFERENCE_ALPHABET, Feedback, HandoffRequest
from core.feedback import feedback_by_article, record_feedback
from core.entities import find_email
from core.handoff import HandoffReason, open_requests, record_handoff_request


@pytest.mark.parametrize(
    ("text", "email"),
    [
        ("jean.roy@exemple.ca", "jean.roy@exemple.ca"),
        ("it's Jean.Roy@Example.CA thanks", "jean.roy@example.ca"),
        ("mon courriel: marie@bureau.qc.ca.", "marie@bureau.qc.ca"),
        ("<finance@company.com>", "finance@company.com"),
    ],
)
def test_find_email_finds_a_valid_address(text: str, email: str) -> None:
    assert find_email(text) == email


@pytest.mark.parametrize("text", ["no", "jean at exemple point ca", "jean@", "@exemple.ca", "a@b", "", None])
def test_find_email_rejects_what_is_not_an_address(text: str | None) -> None:
    assert find_email(text) is None


def test_a_handoff_request_gets_a_reference_and_is_stored(sessions: sessionmaker) -> None:
    conversation = f"conv-{uuid.uuid4().hex}"
    request = record_handoff_request(
        sessions,
        conversation_id=conversation,
        language="fr",
        reason=HandoffReason.REPEATED_MISUNDERSTANDING,
        contact_email="marie@bureau.qc.ca",
        last_message="ma facture est bizarre",
    )
    assert re.fullmatch(f"HO-[{REFERENCE_ALPHABET}]{{6}}", request.reference)
    with sessions() as session:
        [stored] = open_requests(session, conversation)
        assert (stored.reference, stored.language, stored.reason, stored.contact_email, stored.status) == (
            request.reference, "fr", "repeated_misunderstanding", "marie@bureau.qc.ca", "open"
        )
        assert stored.last_message == "ma facture est bizarre"


def test_references_are_unique(sessions: sessionmaker) -> None:
    conversation = f"conv-{uuid.uuid4().hex}"
    references = {
        record_handoff_request(
            sessions, conversation_id=conversation, language="en", reason=HandoffReason.CUSTOMER_REQUEST,
            contact_email=None, last_message=None,
        ).reference
        for _ in range(20)
    }
    assert len(references) == 20
    with sessions() as session:
        count = session.execute(
            sa.select(sa.func.count()).select_from(HandoffRequest).where(HandoffRequest.conversation_id == conversation)
        ).scalar_one()
    assert count == 20


def test_feedback_is_counted_per_article(sessions: sessionmaker) -> None:
    article = f"topic_{uuid.uuid4().hex[:8]}"
    for helpful in (True, True, False):
        record_feedback(sessions, conversation_id="c1", article_id=article, language="en", helpful=helpful)
    with sessions() as session:
        scores = {s.article_id: s for s in feedback_by_article(session)}
        stored = session.execute(sa.select(Feedback).where(Feedback.article_id == article)).scalars().all()
    assert (scores[article].helpful, scores[article].unhelpful) == (2, 1)
    assert {f.language for f in stored} == {"en"}
