"""Input channels: Rasa's REST channel, with malformed requests refused by a clear 400 instead of an empty reply.

Stock ``RestInput`` accepts a body without ``sender`` (every such customer then shares the conversation
"default") or without ``message`` (the NLU graph raises, and the caller gets ``[]`` with no explanation). This
channel checks the body first and answers ``400 {"error": "bad_request", "message": "..."}`` naming the field.
It keeps the name ``rest``, so the webhook stays ``/webhooks/rest/webhook``.

Each message is handled once (``bot.answer_once``): its id is the body's ``message_id`` when the client gives one
(the same for a message sent again), else the ``X-Request-Id`` HAProxy gives each request (the same on its
retries), else a new one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import rasa.utils.endpoints
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.exceptions import InvalidUsage
from sanic.request import Request
from sanic.response import HTTPResponse, ResponseStream

from bot.answer_once import install_answer_once

MAX_MESSAGE_CHARS = 20_000
MAX_SENDER_CHARS = 255  # the tracker store's sender_id column
MAX_MESSAGE_ID_CHARS = 255
REQUEST_ID_HEADER = "X-Request-Id"  # set by HAProxy (runner/cluster.py), kept on its retries

logger = logging.getLogger(__name__)


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

    def _extract_message_id(self, req: Request) -> str | None:
        """The message's id: the client's ``message_id``, else the load balancer's request id, else None."""
        message_id = _body(req).get("message_id")
        if message_id is not None:
            if not isinstance(message_id, str) or not message_id.strip():
                raise BadRequestBody('"message_id", when given, must be a non-empty string')
            if len(message_id) > MAX_MESSAGE_ID_CHARS:
                raise BadRequestBody(f'"message_id" is longer than {MAX_MESSAGE_ID_CHARS} characters')
            return message_id
        request_id = req.headers.get(REQUEST_ID_HEADER, "").strip()
        return request_id[:MAX_MESSAGE_ID_CHARS] or None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Rasa's REST routes (a health check, the webhook), the webhook passing each message's id on."""
        install_answer_once()
        webhook = Blueprint(f"custom_webhook_{type(self).__name__}", type(self).__module__)

        @webhook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> ResponseStream | HTTPResponse:
            sender_id = await self._extract_sender(request)
            text = self._extract_message(request)
            message_id = self._extract_message_id(request)
            input_channel = self._extract_input_channel(request)
            metadata = self.get_metadata(request)
            if rasa.utils.endpoints.bool_arg(request, "stream", default=False):
                return response.stream(self.stream_response(on_new_message, text, sender_id, input_channel,
                                                            metadata), content_type="text/event-stream")
            collector = CollectingOutputChannel()
            try:
                await on_new_message(UserMessage(text, collector, sender_id, input_channel=input_channel,
                                                 metadata=metadata, message_id=message_id))
            except Exception:  # as Rasa's channel: the answers so far are returned; the error is in the log
                logger.exception("conversation %s: the message could not be handled", sender_id)
            return response.json(collector.messages)

        @webhook.exception(InvalidUsage)
        async def bad_request(request: Request, error: InvalidUsage) -> HTTPResponse:
            return response.json({"error": "bad_request", "message": str(error)}, status=400)

        return webhook
