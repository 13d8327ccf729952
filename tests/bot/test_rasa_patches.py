"""Each performance fix of ``bot.rasa_patches`` gives exactly what Rasa's own method gives: the validation of action
server responses, the graph runner (on the trained model's prediction graph), the rule policy's lookup (on the
trained model's rules and on hand-made edge cases), the processor's check of unseen intents, and its debug copies."""

from __future__ import annotations

import copy
import itertools
import json
import logging
import random
import tarfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import rasa.core.processor
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import UserMessage
from rasa.core.policies.policy import Policy
from rasa.core.policies.rule_policy import RulePolicy
from rasa.core.processor import MessageProcessor
from rasa.engine import loader
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.shared.core.constants import ACTION_LISTEN_NAME, SHOULD_NOT_BE_SET
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActionReverted,
    ActiveLoop,
    BotUttered,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
    UserUtteranceReverted,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot.rasa_patches import (
    RASA_METHODS,
    CopyForDebugLogs,
    _check_for_unseen_features,
    _possible_keys,
    _run_sequentially,
    applied_events,
    copy_tracker,
    forget_memos,
    install_cached_action_validation,
    install_copies_for_debug_logs_only,
    states_for_tracker_history,
)

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


# -- the graph runner ------------------------------------------------------------------------------------------

MESSAGES = [
    "what cards do you accept", "quelles cartes acceptez-vous", "hi", "merci", "what's the weather in Paris",
    "my card 4111 1111 1111 1111 was declined", "show me invoice INV-202603-1042 from March", "/greet", "ok",
]


@pytest.fixture(scope="module")
def prediction_graph(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The trained model's metadata and prediction graph runner, as the Rasa server loads them."""
    metadata, runner = loader.load_predict_graph_runner(
        tmp_path_factory.mktemp("model"), trained_model, LocalModelStorage, DaskGraphRunner
    )
    yield metadata, runner


def parse(run: Any, runner: DaskGraphRunner, target: str, text: str) -> dict[str, Any]:
    message = UserMessage(text, sender_id="s", message_id="m")
    tracker = DialogueStateTracker.from_events("s", [])
    output = run(runner, inputs={"__message__": [message], "__tracker__": tracker}, targets=[target])
    assert list(output) == [target]
    return dict(output[target][0].as_dict(only_output_properties=True))


@pytest.mark.parametrize("text", MESSAGES)
def test_the_nlu_graph_gives_what_dask_gives(prediction_graph: Any, text: str) -> None:
    metadata, runner = prediction_graph
    assert parse(_run_sequentially, runner, metadata.nlu_target, text) == parse(
        RASA_METHODS["run"], runner, metadata.nlu_target, text
    )


def conversation_after(parse_data: dict[str, Any], domain: Domain, *extra: Any) -> DialogueStateTracker:
    tracker = DialogueStateTracker.from_events(
        "s", [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted(ACTION_LISTEN_NAME)],
        domain.slots,
    )
    tracker.update(UserUttered(parse_data["text"], parse_data["intent"], parse_data["entities"], parse_data))
    for event in extra:
        tracker.update(event)
    return tracker


@pytest.mark.parametrize("text", MESSAGES)
def test_the_policy_graph_gives_what_dask_gives(prediction_graph: Any, text: str) -> None:
    metadata, runner = prediction_graph
    parse_data = parse(RASA_METHODS["run"], runner, metadata.nlu_target, text)
    domain = runner.run(targets=["domain_provider"])["domain_provider"]
    for extra in ([], [SlotSet("language", "fr")], [ActionExecuted("utter_greet")]):
        tracker = conversation_after(parse_data, domain, *extra)
        ours = _run_sequentially(runner, inputs={"__tracker__": tracker}, targets=[metadata.core_target])
        theirs = RASA_METHODS["run"](runner, inputs={"__tracker__": tracker}, targets=[metadata.core_target])
        assert ours[metadata.core_target] == theirs[metadata.core_target]


def test_an_input_named_like_a_node_is_refused_as_dask_refuses_it(prediction_graph: Any) -> None:
    metadata, runner = prediction_graph
    with pytest.raises(Exception, match="clashes with a node name") as ours:
        _run_sequentially(runner, inputs={"__message__": "domain_provider"}, targets=[metadata.nlu_target])
    with pytest.raises(Exception, match="clashes with a node name") as theirs:
        RASA_METHODS["run"](runner, inputs={"__message__": "domain_provider"}, targets=[metadata.nlu_target])
    assert type(ours.value) is type(theirs.value)


# -- the rule policy's lookup ----------------------------------------------------------------------------------

POLICY = RulePolicy.__new__(RulePolicy)  # the lookup methods read no attribute of the policy


def same_keys(lookup: dict[str, str], states: list[dict[str, Any]]) -> None:
    for end in range(len(states) + 1):
        expected = RASA_METHODS["get_possible_keys"](POLICY, lookup, states[:end])
        assert _possible_keys(POLICY, lookup, states[:end]) == expected, states[:end]


def state(action: str | None = None, intent: str | None = None, text: str | None = None,
          slots: dict[str, Any] | None = None, loop: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if action:
        result["prev_action"] = {"action_name": action}
    if intent or text:
        result["user"] = {"intent": intent} if intent else {"text": text}
    if slots:
        result["slots"] = slots
    if loop:
        result["active_loop"] = {"name": loop}
    return result


HAND_MADE_RULES = [
    [state(intent="greet")],  # a conversation start
    [state("action_listen", "greet")],
    [state("action_listen", "thank")],
    [state("action_listen")],
    [state("utter_ask_helpful", "affirm")],
    [state("action_listen", "affirm"), state("utter_ask_helpful", "affirm")],
    [state("utter_offer_human", "deny", slots={"agent_coming": SHOULD_NOT_BE_SET})],
    [state("handoff_form", loop="handoff_form")],
    [state("handoff_form", "deny", loop=SHOULD_NOT_BE_SET)],
    [{"prev_action": {"action_text": "hello"}}],
    [{"prev_action": {"action_name": SHOULD_NOT_BE_SET}, "user": {"intent": "greet"}}],
    [state("action_listen", slots={"language": ["fr"]})],
]
HAND_MADE_CONVERSATIONS = [
    [state(intent="greet")],
    [state(intent="greet"), state("utter_greet", "greet"), state("action_listen", "thank")],
    [state("action_listen", "affirm"), state("utter_ask_helpful", "affirm")],
    [state("action_listen", text="yes please")],
    [state("utter_offer_human", "deny", slots={"agent_coming": (1.0,)})],
    [state("utter_offer_human", "deny")],
    [state("handoff_form", loop="handoff_form")],
    [state("handoff_form", "deny")],
    [{"prev_action": {"action_text": "hello"}}],
    [state("action_listen", "greet", slots={"language": ("fr",)})],
    [],
]


@pytest.mark.parametrize("conversation", HAND_MADE_CONVERSATIONS)
def test_hand_made_rules_match_as_rasa_matches_them(conversation: list[dict[str, Any]]) -> None:
    lookup = {json.dumps(rule, sort_keys=True): "action" for rule in HAND_MADE_RULES}
    same_keys(lookup, conversation)


def test_the_turns_states_are_rasa_s_as_the_tracker_grows_and_is_rewound(prediction_graph: Any) -> None:
    """Each call on a growing tracker computes only the new turns; the states are Rasa's after every event, also
    after a rewind (events removed from the applied ones) and when the caller changes what it was given."""
    metadata, runner = prediction_graph
    domain = runner.run(targets=["domain_provider"])["domain_provider"]
    rng = random.Random(7)
    intents = ["greet", "faq", "thank", "needs_agent", "out_of_scope", "affirm"]
    for conversation, omit in itertools.product(range(20), (False, True)):
        tracker = DialogueStateTracker.from_events(
            "s", [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted(ACTION_LISTEN_NAME)],
            domain.slots)
        for turn in range(12):
            intent = rng.choice(intents)
            steps: list[Any] = [UserUttered(intent, {"name": intent, "confidence": 1.0}, [])]
            if rng.random() < 0.3:
                steps.append(SlotSet("language", rng.choice(["en", "fr"])))
            if rng.random() < 0.2:
                steps += [ActionExecuted("handoff_form"), ActiveLoop("handoff_form"),
                          SlotSet("requested_slot", "contact_email")]
            elif rng.random() < 0.15:
                steps.append(UserUtteranceReverted())  # Rasa drops the last user turn from the applied events
            steps += [ActionExecuted("utter_greet"), BotUttered("hello"), ActionExecuted(ACTION_LISTEN_NAME)]
            for event in steps:
                tracker.update(event)
                ours = states_for_tracker_history(domain, tracker, omit_unset_slots=omit)
                assert ours == RASA_METHODS["states_for_tracker_history"](domain, tracker, omit), (conversation, turn)
                if ours[-1].get("user"):
                    ours[-1]["user"].clear()  # as _choose_last_user_input deletes keys: the kept states stay
                assert states_for_tracker_history(domain, tracker, omit_unset_slots=omit) == (
                    RASA_METHODS["states_for_tracker_history"](domain, tracker, omit))


def model_rules(model: Path) -> dict[str, dict[str, str]]:
    with tarfile.open(model) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("rule_policy.json"))
        data = archive.extractfile(member)
        assert data is not None
        return dict(json.load(data)["lookup"])


def test_the_models_rules_match_as_rasa_matches_them(trained_model: Path) -> None:
    lookups = model_rules(trained_model)
    rules = [json.loads(key) for key in lookups["rules"]]
    rng = random.Random(0)
    conversations = list(rules)
    # Rules after other rules, with the user's intent given as text, and without the previous action.
    conversations += [rng.choice(rules) + rng.choice(rules) for _ in range(300)]
    conversations += [[dict(s, user={"text": "hello"}) if "user" in s else s for s in rule] for rule in rules]
    conversations += [[{k: v for k, v in s.items() if k != "prev_action"} for s in rule] for rule in rules]
    for lookup, conversation in itertools.product(lookups.values(), conversations):
        if isinstance(lookup, dict) and lookup and all(k.startswith("[") for k in lookup):
            same_keys(lookup, conversation)


# -- the processor -----------------------------------------------------------------------------------------------


def warnings_of(check: Any, processor: MessageProcessor, parse_data: dict[str, Any]) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check(processor, parse_data)
    return [str(warning.message) for warning in caught]


@pytest.mark.parametrize(
    "parse_data",
    [{"intent": {"name": "greet"}, "entities": []}, {"intent": {"name": "unknown_intent"}, "entities": []},
     {"intent": {"name": None}, "entities": [{"entity": "month"}, {"entity": "unknown_entity"}]}],
)
def test_unseen_intents_and_entities_are_warned_about_as_rasa_does(parse_data: dict[str, Any]) -> None:
    processor = MessageProcessor.__new__(MessageProcessor)
    processor.domain = Domain.from_dict({"intents": ["greet"], "entities": ["month"]})
    ours = warnings_of(_check_for_unseen_features, processor, parse_data)
    assert ours == warnings_of(RASA_METHODS["check_for_unseen_features"], processor, parse_data)
    assert len(ours) == (0 if parse_data["intent"]["name"] == "greet" else 1)


def test_debug_copies_are_made_only_when_debug_lines_are_written() -> None:
    install_copies_for_debug_logs_only()
    assert isinstance(rasa.core.processor.copy, CopyForDebugLogs)
    logger = logging.getLogger("rasa.core.processor")
    value = {"events": [{"event": "slot"}]}
    level = logger.level
    try:
        logger.setLevel(logging.INFO)
        assert rasa.core.processor.copy.deepcopy(value) is value
        logger.setLevel(logging.DEBUG)
        copied = rasa.core.processor.copy.deepcopy(value)
        assert copied == value and copied is not value and copied["events"] is not value["events"]
    finally:
        logger.setLevel(level)


def test_rule_states_are_formatted_for_debug_lines_only_as_rasa_formats_them() -> None:
    install_copies_for_debug_logs_only()
    states = [{}, {"user": {"intent": "greet"}, "prev_action": {"action_name": "action_listen"}},
              {"user": {"intent": "faq"}, "prev_action": {"action_name": "utter_greet"}, "active_loop": {"name": "f"}}]
    logger = logging.getLogger("rasa.core.policies.rule_policy")
    level = logger.level
    try:
        logger.setLevel(logging.INFO)
        assert RulePolicy.format_tracker_states(states) == ""
        logger.setLevel(logging.DEBUG)
        formatted = RulePolicy.format_tracker_states(states)
        assert formatted == Policy.format_tracker_states(states) and "user intent: faq" in formatted
    finally:
        logger.setLevel(level)


def random_events(rng: random.Random, turns: int) -> list[Any]:
    """A conversation's events with forms started, run, rejected and ended, rewinds and restarts, several forms
    named only late in it (which changes how Rasa reads their earlier executions)."""
    forms = ["handoff_form", "callback_form", "dispute_form"]
    events: list[Any] = [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted(ACTION_LISTEN_NAME)]
    for _ in range(turns):
        intent = rng.choice(["greet", "faq", "affirm", "deny"])
        events.append(UserUttered(intent, {"name": intent, "confidence": 1.0}, []))
        roll = rng.random()
        form = rng.choice(forms)
        if roll < 0.25:
            events += [ActionExecuted(form), ActiveLoop(form), SlotSet("requested_slot", "contact_email")]
        elif roll < 0.4:
            events.append(ActionExecuted(form))  # a form run (or not yet named) without ActiveLoop
        elif roll < 0.5:
            events.append(ActiveLoop(None))
        elif roll < 0.58:
            events.append(UserUtteranceReverted())
        elif roll < 0.64:
            events += [ActionExecuted("utter_greet"), ActionReverted()]
        elif roll < 0.67:
            events.append(rng.choice([Restarted(), SessionStarted()]))
        events += [ActionExecuted("utter_greet"), BotUttered("hello"), ActionExecuted(ACTION_LISTEN_NAME)]
    return events


def test_the_applied_events_are_rasa_s_as_the_tracker_grows() -> None:
    """Each call continues from the last over the new events; the result is Rasa's after every event, also
    when a form first named late changes the earlier turns, when the oldest events go, and when the caller changes
    what it was given."""
    rng = random.Random(11)
    for conversation in range(60):
        tracker = DialogueStateTracker("s", [])
        for event in random_events(rng, 14):
            tracker.update(event)
            ours = applied_events(tracker)
            assert ours == RASA_METHODS["applied_events"](tracker), conversation
            ours.clear()  # a caller changing its list changes nothing kept
            assert applied_events(tracker) == RASA_METHODS["applied_events"](tracker), conversation
    # A tracker keeping only its latest events (max_event_history): the oldest go as new ones come.
    tracker = DialogueStateTracker("s", [], max_event_history=12)
    for event in random_events(rng, 14):
        tracker.update(event)
        assert applied_events(tracker) == RASA_METHODS["applied_events"](tracker)


def test_an_event_replaced_in_place_is_seen_once_the_memos_are_forgotten() -> None:
    tracker = DialogueStateTracker.from_events("s", random_events(random.Random(3), 6))
    applied_events(tracker)
    index = max(i for i, event in enumerate(tracker.events) if isinstance(event, UserUttered))
    tracker.events[index] = UserUttered("redacted", {"name": "greet", "confidence": 1.0}, [])
    forget_memos(tracker)
    assert applied_events(tracker) == RASA_METHODS["applied_events"](tracker)


def comparable(tracker: DialogueStateTracker) -> dict[str, Any]:
    """Everything a tracker holds, slots by their attributes, without what this project keeps on it."""
    state = {name: value for name, value in vars(tracker).items() if not name.startswith("_billing_")}
    state["events"] = list(tracker.events)
    state["slots"] = {name: vars(slot) for name, slot in tracker.slots.items()}
    return state


def test_a_tracker_copy_is_rasa_s_and_independent_of_the_original(prediction_graph: Any) -> None:
    _, runner = prediction_graph
    domain = runner.run(targets=["domain_provider"])["domain_provider"]
    rng = random.Random(5)
    for conversation in range(30):
        tracker = DialogueStateTracker("s", domain.slots)
        for event in random_events(rng, 10):
            tracker.update(event)
            if rng.random() < 0.3:
                tracker.update(SlotSet("language", rng.choice(["en", "fr"])))
            if tracker.active_loop and rng.random() < 0.3:
                tracker.update(ActionExecutionRejected(tracker.active_loop_name))  # changes the form's record
        applied_events(tracker)  # a memo on the original must not reach the copy
        ours, rasas = copy_tracker(tracker), RASA_METHODS["copy"](tracker)
        assert comparable(ours) == comparable(rasas), conversation
        before = copy.deepcopy(comparable(tracker))
        for duplicate in (ours, rasas):
            if duplicate.active_loop_name:  # the form's record is changed in place
                duplicate.update(ActionExecutionRejected(duplicate.active_loop_name))
            duplicate.update(SlotSet("language", "fr" if tracker.get_slot("language") == "en" else "en"))
            duplicate.update(ActiveLoop("handoff_form"))
            duplicate.update(ActionExecuted("utter_greet"))
        assert comparable(tracker) == before, "changing the copy changed the original"
        assert comparable(ours) == comparable(rasas), conversation
