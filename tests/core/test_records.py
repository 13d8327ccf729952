"""Email addresses found in a message, and feedback stored in the shared store, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from core.db.models import Feedback
from core.feedback import feedback_by_article, record_feedback
from core.entities import find_email


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


def test_feedback_is_counted_per_article(sessions: sessionmaker) -> None:
    article = f"topic_{uuid.uuid4().hex[:8]}"
    for helpful in (True, True, False):
        record_feedback(sessions, conversation_id="c1", article_id=article, language="en", helpful=helpful)
    with sessions() as session:
        scores = {s.article_id: s for s in feedback_by_article(session)}
        stored = session.execute(sa.select(Feedback).where(Feedback.article_id == article)).scalars().all()
    assert (scores[article].helpful, scores[article].unhelpful) == (2, 1)
    assert {f.language for f in stored} == {"en"}
