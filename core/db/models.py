"""SQLAlchemy models of the shared store (the chat side's tables; later issues add billing and mail)."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlalchemy.orm.decl_api import DeclarativeMeta

mapper_registry = registry()


class Base(metaclass=DeclarativeMeta):
    """Declarative base of every model of the shared store (the typed SQLAlchemy 1.4 form)."""

    __abstract__ = True
    registry = mapper_registry
    metadata = mapper_registry.metadata
    __init__ = mapper_registry.constructor

# Unambiguous characters for reference numbers customers read aloud or type (no 0/O, 1/I/L).
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def utcnow() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(timezone.utc)


def new_reference(prefix: str, length: int = 6) -> str:
    """A random reference such as ``HO-7K3Q9D``; unique constraints catch the rare collision."""
    return f"{prefix}-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(length))


class HandoffRequest(Base):
    """A customer's request for a human agent, recorded for an agent to follow up."""

    __tablename__ = "handoff_requests"

    id = sa.Column(sa.Integer, primary_key=True)
    reference = sa.Column(sa.String(16), nullable=False, unique=True)
    conversation_id = sa.Column(sa.String(255), nullable=False, index=True)
    channel = sa.Column(sa.String(32), nullable=False, default="chat")
    language = sa.Column(sa.String(2), nullable=False)
    reason = sa.Column(sa.String(40), nullable=False)
    contact_email = sa.Column(sa.String(320))
    last_message = sa.Column(sa.Text)
    status = sa.Column(sa.String(16), nullable=False, default="open")
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)


class Feedback(Base):
    """A customer's answer to "Was this helpful?" after an FAQ answer."""

    __tablename__ = "feedback"

    id = sa.Column(sa.Integer, primary_key=True)
    conversation_id = sa.Column(sa.String(255), nullable=False, index=True)
    article_id = sa.Column(sa.String(64), nullable=False, index=True)
    language = sa.Column(sa.String(2), nullable=False)
    helpful = sa.Column(sa.Boolean, nullable=False)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, default=utcnow)
