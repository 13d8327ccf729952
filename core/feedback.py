"""Answers to "Was this helpful?": recorded per article so the team sees which answers fail customers."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.db.engine import unit_of_work
from core.db.models import Feedback


def record_feedback(
    factory: sessionmaker[Session], *, conversation_id: str, article_id: str, language: str, helpful: bool
) -> Feedback:
    """Store one answer to "Was this helpful?" (committed)."""
    with unit_of_work(factory) as session:
        feedback: Feedback = Feedback(
            conversation_id=conversation_id, article_id=article_id, language=language, helpful=helpful
        )
        session.add(feedback)
    return feedback


@dataclass(frozen=True)
class ArticleScore:
    """How customers rated one article's answer."""

    article_id: str
    helpful: int
    unhelpful: int


def feedback_by_article(session: Session) -> list[ArticleScore]:
    """Helpful and unhelpful counts per article, the most unhelpful first."""
    rows = session.execute(
        select(Feedback.article_id, Feedback.helpful, func.count()).group_by(Feedback.article_id, Feedback.helpful)
    ).all()
    scores: dict[str, list[int]] = {}
    for article_id, helpful, count in rows:
        scores.setdefault(article_id, [0, 0])[0 if helpful else 1] += int(count)
    return sorted(
        (ArticleScore(a, h, u) for a, (h, u) in scores.items()), key=lambda s: (-s.unhelpful, s.article_id)
    )
