"""A performance fix for Rasa 3.6, installed when the Rasa server creates its tracker store.

``RemoteAction._validate_action_result`` calls ``jsonschema.validate`` on every custom action's response, and
``jsonschema.validate`` first validates the *schema itself* against the JSON-Schema meta-schema. With
jsonschema 4.17 that costs about 30 ms per custom action on a 2-core machine, more than the rest of the turn.
The schema never changes, so it is checked once here and the compiled validator reused: same schema, same
errors, same message; only the repeated meta-schema check is gone.
"""

from __future__ import annotations

from typing import Any

import jsonschema
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL

_INSTALLED_FLAG = "_billing_cached_validator"


def install_cached_action_validation() -> None:
    """Replace ``RemoteAction._validate_action_result`` by an equivalent that reuses one compiled validator."""
    if getattr(RemoteAction, _INSTALLED_FLAG, False):
        return
    schema = RemoteAction.action_response_format_spec()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)

    def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
        error = jsonschema.exceptions.best_match(validator.iter_errors(result))
        if error is None:
            return True
        error.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error

    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
    setattr(RemoteAction, _INSTALLED_FLAG, True)
