"""The cached validation of action server responses accepts and rejects exactly what Rasa's own does."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction

from bot.rasa_patches import install_cached_action_validation

GOOD = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "language", "value": "fr"}], "responses": [{"response": "utter_greet"}]},
    {},
]
BAD = [
    {"events": "not a list", "responses": []},
    {"events": [], "responses": ["not an object"]},
    {"events": [{"event": "slot", "name": 3}]},
]


def original_verdict(result: dict[str, Any]) -> bool:
    try:
        jsonschema.validate(result, RemoteAction.action_response_format_spec())
        return True
    except jsonschema.ValidationError:
        return False


@pytest.mark.parametrize("result", GOOD + BAD)
def test_same_verdict_as_rasa(result: dict[str, Any]) -> None:
    install_cached_action_validation()
    action = RemoteAction("action_x", None)
    try:
        accepted = action._validate_action_result(result)
    except jsonschema.ValidationError as error:
        accepted = False
        assert "Failed to validate Action server response" in error.message
    assert accepted == original_verdict(result)
    assert accepted == (result in GOOD)
