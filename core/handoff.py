"""Requests for a human agent: validated contact details and the recorded request.

The live handoff to the agent console comes later; for now a request is stored for an agent to follow up by
email, and the customer gets its reference number.
"""

from __future__ import annotations

from enum import Enum

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db.models import HandoffRequest
from core.references import HANDOFF_PREFIX, commit_with_reference

MAX_LAST_MESSAGE = 2000


class HandoffReason(str, Enum):
    """Why a conversation was handed to a person."""

    CUSTOMER_REQUEST = "customer_request"
    REPEATED_MISUNDERSTANDING = "repeated_misunderstanding"
    UNHELPFUL_ANSWER = "unhelpful_answer"


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
    def build(reference: str) -> HandoffRequest:
        request: HandoffRequest = HandoffRequest(
            reference=reference, conversation_id=conversation_id, channel=channel, language=language,
            reason=reason.value, contact_email=contact_email,
            last_message=(last_message or "")[:MAX_LAST_MESSAGE] or None, status="open",
        )
        return request

    return commit_with_reference(factory, HANDOFF_PREFIX, build)


def open_requests(session: Session, conversation_id: str) -> list[HandoffRequest]:
    """The open handoff requests of one conversation, oldest first."""
    query = (
        select(HandoffRequest)
        .where(HandoffRequest.conversation_id == conversation_id, HandoffRequest.status == "open")
        .order_by(HandoffRequest.id)
    )
    return list(session.execute(query).scalars())
