"""Input channels: Rasa's REST channel, with malformed requests refused by a clear 400 instead of an empty reply.

Stock ``RestInput`` accepts a body without ``sender`` (every such customer then shares the conversation
"default") or without ``message`` (the NLU graph raises, and the caller gets ``[]`` with no explanation). This
channel checks the body first and answers ``400 {"error": "bad_request", "message": "..."}`` naming the field.
It keeps the name ``rest``, so the webhook stays ``/webhooks/rest/webhook``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.exceptions import InvalidUsage
from sanic.request import Request
from sanic.response import HTTPResponse

MAX_MESSAGE_CHARS = 20_000
MAX_SENDER_CHARS = 255  # the tracker store's sender_id column


class BadRequestBody(InvalidUsage):
    """Raised when a REST request's body is not a valid message; answered with HTTP 400."""


def _body(request: Request) -> dict[str, Any]:
    body = request.json  # raises InvalidUsage itself when the body is not JSON
    if not isinstance(body, dict):
        raise BadRequestBody('the body must be a JSON object: {"sender": "...", "message": "..."}')
    return body


class ValidatingRestInput(RestInput):
    """The REST channel, refusing requests without a usable sender or message."""

    async def _extract_sender(self, req: Request) -> str:
        sender = _body(req).get("sender")
        if not isinstance(sender, str) or not sender.strip():
            raise BadRequestBody('"sender" is required: a non-empty string that identifies the conversation')
        if len(sender) > MAX_SENDER_CHARS:
            raise BadRequestBody(f'"sender" is longer than {MAX_SENDER_CHARS} characters')
        return sender

    def _extract_message(self, req: Request) -> str:
        message = _body(req).get("message")
        if not isinstance(message, str) or not message.strip():
            raise BadRequestBody('"message" is required: the customer\'s text, a non-empty string')
        if len(message) > MAX_MESSAGE_CHARS:
            raise BadRequestBody(f'"message" is longer than {MAX_MESSAGE_CHARS} characters')
        return message

    def get_metadata(self, request: Request) -> dict[str, Any] | None:
        metadata = _body(request).get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise BadRequestBody('"metadata", when given, must be a JSON object')
        return metadata

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = super().blueprint(on_new_message)

        @webhook.exception(InvalidUsage)
        async def bad_request(request: Request, error: InvalidUsage) -> HTTPResponse:
            return response.json({"error": "bad_request", "message": str(error)}, status=400)

        return webhook
