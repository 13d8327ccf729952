"""Requests for a human agent: validated contact details and the recorded request.

The live handoff to the agent console comes later; for now a request is stored for an agent to follow up by
email, and the customer gets its reference number.
"""

from __future__ import annotations

import re
from enum import Enum

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.db.engine import unit_of_work
from core.db.models import HandoffRequest, new_reference

_EMAIL_CANDIDATE = re.compile(r"[^\s<>()\[\],;:\"']+@[^\s<>()\[\],;:\"']+")
REFERENCE_PREFIX = "HO"
MAX_LAST_MESSAGE = 2000


class HandoffReason(str, Enum):
    """Why a conversation was handed to a person."""

    CUSTOMER_REQUEST = "customer_request"
    REPEATED_MISUNDERSTANDING = "repeated_misunderstanding"
    UNHELPFUL_ANSWER = "unhelpful_answer"


def extract_email(text: str | None) -> str | None:
    """The email address in ``text`` ("it's Jean.Roy@Example.ca" → "Jean.Roy@example.ca"), or None.

    Syntax only: the domain's mail server is not looked up (no network at run time).
    """
    if not text:
        return None
    for candidate in _EMAIL_CANDIDATE.findall(text):
        try:
            return validate_email(candidate.rstrip("."), check_deliverability=False).normalized
        except EmailNotValidError:
            continue
    return None


def record_handoff_request(
    factory: sessionmaker[Session],
    *,
    conversation_id: str,
    language: str,
    reason: HandoffReason,
    contact_email: str | None,
    last_message: str | None,
    channel: str = "chat",
) -> HandoffRequest:
    """Store a request for an agent and return it with its reference number (committed)."""
    for _attempt in range(5):
        try:
            with unit_of_work(factory) as session:
                request: HandoffRequest = HandoffRequest(
                    reference=new_reference(REFERENCE_PREFIX),
                    conversation_id=conversation_id,
                    channel=channel,
                    language=language,
                    reason=reason.value,
                    contact_email=contact_email,
                    last_message=(last_message or "")[:MAX_LAST_MESSAGE] or None,
                    status="open",
                )
                session.add(request)
            return request
        except IntegrityError:  # a reference collision (1 in 887 million): draw another one
            continue
    raise RuntimeError("could not draw a unique handoff reference after 5 attempts")


def open_requests(session: Session, conversation_id: str) -> list[HandoffRequest]:
    """The open handoff requests of one conversation, oldest first."""
    query = (
        select(HandoffRequest)
        .where(HandoffRequest.conversation_id == conversation_id, HandoffRequest.status == "open")
        .order_by(HandoffRequest.id)
    )
    return list(session.execute(query).scalars())
