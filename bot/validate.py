"""``rasa data validate``, strict: any error or warning fails, except two known false alarms.

Rasa warns about every response that no story or rule mentions, including the responses our custom actions,
forms and Rasa's own fallback action send. Those are listed by reading the action code, the forms and the
fallback configuration, and their "not used" warnings are the only ones accepted; a response nobody sends
still fails the check. Rasa also warns about intents without NLU examples: the chat hub's own intents
(``HUB_INTENTS``, sent as ``/intent`` messages, never typed by customers) have none on purpose.

Usage: ``python -m bot.validate [build-dir]`` (after ``python -m bot.build``).
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

from core.settings import PROJECT_ROOT

# Any response name written in the action code: passed as response=..., or kept in a table the action picks from.
_SENT_BY_CODE = re.compile(r"""["'](utter_\w+)["']""")
_UNUSED = re.compile(r"The utterance '(utter_\w+)' is not used in any story or rule\.")
_NO_EXAMPLES = re.compile(r"The intent '(\w+)' is listed in the domain file, but is not found in the NLU training data")
# What the chat hub (console.widget) sends Rasa itself: an agent handed a chat back; nobody claimed it in time.
HUB_INTENTS = frozenset({"agent_handed_back", "agent_unavailable"})
# Sent by Rasa's own action_default_fallback (the RulePolicy's core fallback).
RASA_SENT_RESPONSES = frozenset({"utter_default"})
# Printed by Rasa 3.x for every domain that has slots, whatever their mappings (a migration notice).
RASA_ALWAYS_WARNS = "Slot auto-fill has been removed in 3.0"


def responses_sent_by_code(actions_dir: Path, form_slots: dict[str, list[str]]) -> set[str]:
    """Responses that actions send by key, plus each form's ``utter_ask_<slot>`` questions."""
    sent = set(RASA_SENT_RESPONSES)
    for path in actions_dir.rglob("*.py"):
        sent.update(_SENT_BY_CODE.findall(path.read_text(encoding="utf-8")))
    for slots in form_slots.values():
        sent.update(f"utter_ask_{slot}" for slot in slots)
    return sent


def main(argv: list[str] | None = None) -> int:
    from rasa.cli.utils import validate_files
    from rasa.shared.importers.importer import TrainingDataImporter

    args = sys.argv[1:] if argv is None else argv
    build_dir = Path(args[0]) if args else PROJECT_ROOT / "build"
    failed = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        importer = TrainingDataImporter.load_from_config(
            config_path=str(PROJECT_ROOT / "config.yml"),
            domain_path=str(build_dir / "domain"),
            training_data_paths=[str(PROJECT_ROOT / "bot" / "data"), str(build_dir / "data")],
        )
        domain = importer.get_domain()
        form_slots = {name: list(form.get("required_slots", [])) for name, form in domain.forms.items()}
        allowed = responses_sent_by_code(PROJECT_ROOT / "bot" / "actions", form_slots)
        try:
            validate_files(fail_on_warnings=False, max_history=None, importer=importer)
        except SystemExit as exit_:
            failed = exit_.code not in (0, None)
    problems = []
    for warning in caught:
        if not issubclass(warning.category, UserWarning) or issubclass(warning.category, DeprecationWarning):
            continue
        message = str(warning.message)
        unused, no_examples = _UNUSED.search(message), _NO_EXAMPLES.search(message)
        if (unused and unused.group(1) in allowed) or (no_examples and no_examples.group(1) in HUB_INTENTS) \
                or message.startswith(RASA_ALWAYS_WARNS):
            continue
        problems.append(message)
    for problem in problems:
        print(f"rasa data validate: {problem}", file=sys.stderr)
    if failed or problems:
        print("rasa data validate: FAILED", file=sys.stderr)
        return 1
    print(f"rasa data validate: clean ({len(allowed)} responses sent by actions, forms or Rasa's fallback)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
