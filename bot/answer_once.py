"""Each customer message is handled once, even when it reaches Rasa twice.

HAProxy sends a request again to another Rasa server when the first died before answering it (``retry-on
empty-response``), and a client whose answer was lost may send its message again. The first server may already
have stored the turn when it died: it stores a turn just before answering. So every message carries an id, stored
with it in the conversation's events (``UserUttered.message_id``): the client's ``message_id`` when it gives one,
else the request id HAProxy puts on each request (``X-Request-Id``, kept on its retries). A message whose id the
conversation already holds is not handled again: the answers the bot gave it are sent again, as they were.

Installed by ``bot.channels`` (the REST channel that reads the ids): ``MessageProcessor.handle_message`` becomes
Rasa's own, with that check between fetching the conversation and handling the message. The check reads the
tracker the message is handled with, under the conversation's lock, so two copies of one message in flight at
once are answered one after the other, the second from the first's stored turn.
"""

from __future__ import annotations

import logging
from typing import Any

import rasa.shared.utils.io
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.processor import MessageProcessor
from rasa.shared.constants import DOCS_URL_POLICIES
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.data import TrainingType

logger = logging.getLogger(__name__)
RASA_HANDLE_MESSAGE = MessageProcessor.handle_message


def earlier_answer(tracker: DialogueStateTracker, message_id: str | None) -> list[BotUttered] | None:
    """What the bot answered to the message ``message_id`` of ``tracker``'s conversation (its utterances up to
    the customer's next message), or None when the conversation does not hold that message."""
    if not message_id:
        return None
    events = list(tracker.events)
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if isinstance(event, UserUttered) and event.message_id == message_id:
            answer: list[BotUttered] = []
            for later in events[index + 1:]:
                if isinstance(later, UserUttered):
                    break
                if isinstance(later, BotUttered):
                    answer.append(later)
            return answer
    return None


async def handle_message(self: MessageProcessor, message: UserMessage) -> list[dict[str, Any]] | None:
    """Rasa's ``handle_message``, answering a message the conversation already holds from its stored turn."""
    tracker = await self.fetch_tracker_and_update_session(message.sender_id, message.output_channel, message.metadata)
    answer = earlier_answer(tracker, message.message_id)
    if answer is not None:
        logger.info("conversation %s: message %s was handled before; its %d answers are sent again",
                    message.sender_id, message.message_id, len(answer))
        for event in answer:
            await message.output_channel.send_response(message.sender_id, event.message())
    else:
        # From here, Rasa's own handle_message (whose log_message fetched the tracker and handled the message).
        await self._handle_message_with_tracker(message, tracker)
        if self.model_metadata.training_type == TrainingType.NLU:
            await self.save_tracker(tracker)
            rasa.shared.utils.io.raise_warning("No core model. Skipping action prediction and execution.",
                                               docs=DOCS_URL_POLICIES)
            return None
        tracker = await self.run_action_extract_slots(message.output_channel, tracker)
        await self._run_prediction_loop(message.output_channel, tracker)
        await self.run_anonymization_pipeline(tracker)
        await self.save_tracker(tracker)
    if isinstance(message.output_channel, CollectingOutputChannel):
        return message.output_channel.messages
    return None


def install_answer_once() -> None:
    """Make ``MessageProcessor.handle_message`` answer a message the conversation holds from it (idempotent)."""
    MessageProcessor.handle_message = handle_message  # type: ignore[method-assign]
