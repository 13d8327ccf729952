"""Performance fixes for Rasa 3.6, installed when the Rasa server creates its tracker store.

Each replaces one Rasa method by an equivalent that gives the same results (tests/bot/test_rasa_patches.py
compares them with Rasa's own) without work that was repeated on every message. Measured with
``bench/chat_profile.py`` on a 2-core machine (bench/README.md):

- ``RemoteAction._validate_action_result`` calls ``jsonschema.validate`` on every custom action's response, and
  ``jsonschema.validate`` first validates the *schema itself* against the JSON-Schema meta-schema (about 30 ms
  per custom action with jsonschema 4.17). The schema never changes: it is checked once and the compiled
  validator reused; same errors, same message.
- ``DaskGraphRunner.run`` hands the graph (the NLU pipeline once per message, the policies once per predicted
  action) to dask's synchronous scheduler, which orders and schedules the few nodes anew on every call: about
  1.5 ms per message. The nodes are run here in a topological order computed once per set of targets, in this
  thread, as dask's synchronous scheduler did.
- ``RulePolicy._get_possible_keys`` checks every rule (about 140 here) against the conversation's latest state,
  parsing each rule's JSON key again (through a small LRU cache) for each check, three or four times a message:
  about 1.7 ms per message. Here the keys are parsed once and indexed by the previous action (and the intent)
  their latest state requires, so only the rules that can match are checked, with Rasa's own test; the walk back
  through the states stops once every remaining rule is shorter than the states already matched (Rasa's check
  answers True for all of them from there on).
- ``MessageProcessor._check_for_unseen_features`` asks ``domain.is_empty()`` on every message, which turns the
  whole domain into a dict and compares it with an empty one's: about 0.2 ms. It is computed once per domain.
- ``Domain.states_for_tracker_history`` replays the whole tracker and computes the state of every turn each time
  a policy asks, and RulePolicy asks three times a message (for the user's text and intent, then after the
  answer) on a tracker that only grew: about 1.5 ms per message with a 60-event window. The turns' states are
  kept on the tracker with the replay that produced them; the next call on the same tracker computes only the
  turns its new events added (from scratch when an event was reverted or removed), and returns a copy.
- ``DialogueStateTracker.applied_events`` walks every event of the tracker (with isinstance checks, first to
  collect the forms' names, then to drop reverted turns) each time it is asked, five to nine times a message:
  about 1 ms per message with a kept tracker of a hundred events. The result is kept on the tracker with what it
  was computed from; the next call continues from it over the events added since, unless those name a form not
  seen before (whose earlier executions Rasa then treats differently) or the events were replaced: then from
  scratch, as Rasa does. Callers get a copy.
- ``DialogueStateTracker.copy`` (once per action the processor runs, so that an action may change its tracker
  freely) builds a new tracker and replays every event into it: about 0.5 ms per message. The copy here is made
  from the tracker's state instead: the same events, copies of its slots and of its form and action records.
- ``RulePolicy._find_action_from_rules`` formats every turn's state as text for a debug log line, whether or
  not that line is written: about 0.3 ms per message. It formats them only when the line is written.
- ``rasa.core.processor`` and ``rasa.core.policies.rule_policy`` deep-copy events, parse data and states for
  their debug log lines whether or not those lines are written: about 0.5 ms per message. Their ``copy`` becomes
  ``CopyForDebugLogs``, which copies only when the module's logger writes debug lines.
"""

from __future__ import annotations

import collections
import copy
import functools
import itertools
import json
import logging
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema
import rasa.core.policies.rule_policy
import rasa.core.processor
import rasa.shared.utils.io
from rasa.core.actions.action import RemoteAction
from rasa.core.policies.policy import Policy
from rasa.core.policies.rule_policy import RulePolicy
from rasa.core.processor import MessageProcessor
from rasa.engine.exceptions import GraphRunError
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.constants import DOCS_BASE_URL, DOCS_URL_DOMAINS
from rasa.shared.core.constants import PREVIOUS_ACTION, SHOULD_NOT_BE_SET, USER
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionReverted,
    ActiveLoop,
    Event,
    Restarted,
    SessionStarted,
    UserUttered,
    UserUtteranceReverted,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import ACTION_NAME, INTENT, INTENT_NAME_KEY

_STATES_MEMO = "_billing_states_memo"  # on a tracker: what its states were computed from
_OWN_ATTRIBUTES = "_billing_"  # the prefix of what this project keeps on a tracker (memos, the store's counts)
_APPLIED_MEMO = "_billing_applied_events_memo"  # on a tracker: its applied events and what they came from
# The same logger as Rasa's runner, so that its debug line is configured, filtered and written as before.
_runner_logger = logging.getLogger("rasa.engine.runner.dask")

State = dict[str, dict[str, Any]]

# Rasa's own methods as this module found them, before any patch: the tests compare the replacements with them.
RASA_METHODS: dict[str, Any] = {
    "run": DaskGraphRunner.run,
    "get_possible_keys": RulePolicy._get_possible_keys,
    "check_for_unseen_features": MessageProcessor._check_for_unseen_features,
    "states_for_tracker_history": Domain.states_for_tracker_history,
    "applied_events": DialogueStateTracker.applied_events,
    "copy": DialogueStateTracker.copy,
}


def install_performance_patches() -> None:
    """Install every fix of this module (idempotent: installing one again changes nothing)."""
    install_cached_action_validation()
    install_sequential_graph_runner()
    install_fast_rule_lookup()
    install_domain_emptiness_check()
    install_copies_for_debug_logs_only()
    install_incremental_states()
    install_incremental_applied_events()
    install_structural_tracker_copy()


# -- custom actions' responses ---------------------------------------------------------------------------------


@functools.cache
def _action_response_validator() -> Any:
    """A validator of custom actions' responses, compiled once (the schema is checked once, here)."""
    schema = RemoteAction.action_response_format_spec()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    """``RemoteAction._validate_action_result`` with one compiled validator: same errors, same message."""
    error = jsonschema.exceptions.best_match(_action_response_validator().iter_errors(result))
    if error is None:
        return True
    error.message += (
        f". Failed to validate Action server response from API, "
        f"make sure your response from the Action endpoint is valid. "
        f"For more information about the format visit "
        f"{DOCS_BASE_URL}/custom-actions"
    )
    raise error


def install_cached_action_validation() -> None:
    """Replace ``RemoteAction._validate_action_result`` by ``_validate_action_result``."""
    RemoteAction._validate_action_result = _validate_action_result


# -- running the graph -----------------------------------------------------------------------------------------


def execution_plan(runner: DaskGraphRunner, targets: Sequence[str]) -> list[tuple[str, tuple[str, ...]]]:
    """The nodes ``targets`` need, each after the nodes it needs, with the names of its inputs in the order of its
    ``needs`` (the order dask passed them in). Computed once per runner and set of targets."""
    plans: dict[tuple[str, ...], list[tuple[str, tuple[str, ...]]]] = runner.__dict__.setdefault("_billing_plans", {})
    key = tuple(targets)
    if key not in plans:
        schema = runner._graph_schema.minimal_graph_schema(list(targets))
        plan: list[tuple[str, tuple[str, ...]]] = []
        placed: set[str] = set()

        def place(name: str) -> None:
            if name in placed or name not in schema.nodes:
                return  # done already, or an input placeholder
            placed.add(name)
            needs = tuple(schema.nodes[name].needs.values())
            for need in needs:
                place(need)
            plan.append((name, needs))

        for name in schema.nodes:
            place(name)
        plans[key] = plan
    return plans[key]


def _run_sequentially(
    self: DaskGraphRunner, inputs: dict[str, Any] | None = None, targets: list[str] | None = None
) -> dict[str, Any]:
    """``DaskGraphRunner.run`` without dask: same inputs, same checks, same results, same errors."""
    run_targets = targets if targets else self._graph_schema.target_names
    plan = execution_plan(self, run_targets)
    if _runner_logger.isEnabledFor(logging.DEBUG):
        _runner_logger.debug(
            f"Running graph with inputs: {inputs}, targets: {targets} and {self._execution_context}."
        )
    # Each node returns (its name, its output), and receives its inputs in that form (a name that is neither a
    # node nor an input reaches it as the bare name, which GraphNode reports, as with dask).
    results: dict[str, Any] = {}
    node_names = {name for name, _ in plan}
    for name, value in (inputs or {}).items():
        if isinstance(value, str) and (value in node_names or value in results):
            raise GraphRunError(
                f"Input value '{value}' clashes with a node name. Make sure "
                f"that none of the input names passed to the `run` method are the "
                f"same as node names in the graph schema."
            )
        results[name] = (name, value)
    try:
        for name, needs in plan:
            results[name] = self._instantiated_nodes[name](*(results.get(need, need) for need in needs))
        return dict(results[target] for target in run_targets)
    except RuntimeError as e:
        raise GraphRunError("Error running runner.") from e


def install_sequential_graph_runner() -> None:
    """Replace ``DaskGraphRunner.run`` by ``_run_sequentially``."""
    DaskGraphRunner.run = _run_sequentially


# -- the rule policy -------------------------------------------------------------------------------------------

Rule = tuple[str, list[State]]  # a rule's key in the policy's lookup, and its states latest first


def parse_rule(rule_key: str) -> Rule:
    """A rule key (the JSON of the rule's states) with its states, latest first."""
    return rule_key, list(reversed(json.loads(rule_key)))


@dataclass(frozen=True)
class RuleIndex:
    """The rules of one lookup table, parsed once, by what their latest state requires.

    Attributes:
        by_turn: the rules whose latest state requires a previous action, by (that action's name, the user
            intent it also requires or None).
        others: the rules that can match whatever the previous action (none required, or only by text).
    """

    by_turn: dict[tuple[str, str | None], list[Rule]]
    others: list[Rule]

    @classmethod
    def of(cls, lookup: Mapping[str, str]) -> RuleIndex:
        by_turn: dict[tuple[str, str | None], list[Rule]] = {}
        others: list[Rule] = []
        for rule_key in lookup:
            rule = parse_rule(rule_key)
            latest = rule[1][0] if rule[1] else {}
            action = _required(latest.get(PREVIOUS_ACTION), ACTION_NAME)
            if action is None:
                others.append(rule)
            else:
                by_turn.setdefault((action, _required(latest.get(USER), INTENT)), []).append(rule)
        return cls(by_turn, others)

    def candidates(self, latest_state: State) -> list[Rule]:
        """The rules that may match a conversation whose latest state is ``latest_state``: a rule that requires
        another previous action or another intent fails Rasa's check on its first state
        (``RulePolicy._does_rule_match_state``)."""
        action = (latest_state.get(PREVIOUS_ACTION) or {}).get(ACTION_NAME)
        if not isinstance(action, str):
            return self.others
        found = self.others + self.by_turn.get((action, None), [])
        intent = (latest_state.get(USER) or {}).get(INTENT)
        if isinstance(intent, str):
            found += self.by_turn.get((action, intent), [])
        return found


def _required(sub_state: Any, name: str) -> str | None:
    """The value a rule's sub-state requires the conversation to have (None: no single value required)."""
    value = (sub_state or {}).get(name)
    return value if isinstance(value, str) and value and value != SHOULD_NOT_BE_SET else None


_indexes: dict[int, tuple[Mapping[str, str], int, RuleIndex]] = {}


def rule_index(lookup: Mapping[str, str]) -> RuleIndex:
    """The index of a lookup table, built once (again if the table changed size)."""
    cached = _indexes.get(id(lookup))
    if cached is None or cached[0] is not lookup or cached[1] != len(lookup):
        cached = _indexes[id(lookup)] = (lookup, len(lookup), RuleIndex.of(lookup))
    return cached[2]


def is_rule_applicable(rule_states: list[State], turn_index: int, conversation_state: State) -> bool:
    """``RulePolicy._is_rule_applicable`` on a rule's already parsed states (latest first)."""
    if turn_index >= len(rule_states):
        return True  # the rule matched every one of its states already
    current_previous_action = conversation_state.get(PREVIOUS_ACTION)
    rule_previous_action = rule_states[turn_index].get(PREVIOUS_ACTION)
    if not rule_previous_action and not current_previous_action:
        return True  # both are conversation starts
    if not rule_previous_action or not current_previous_action:
        return False  # one is a conversation start, the other not
    return bool(RulePolicy._does_rule_match_state(rule_states[turn_index], conversation_state))


def _possible_keys(self: RulePolicy, lookup: Mapping[str, str], states: list[State]) -> set[str]:
    """``RulePolicy._get_possible_keys``: the keys of ``lookup`` whose rule matches the end of ``states``."""
    if not states:
        return set(lookup)
    candidates = rule_index(lookup).candidates(states[-1])
    for turn_index, state in enumerate(reversed(states)):
        if all(len(rule_states) <= turn_index for _, rule_states in candidates):
            break  # every remaining rule is applicable at this turn and all earlier ones
        candidates = [rule for rule in candidates if is_rule_applicable(rule[1], turn_index, state)]
    return {rule_key for rule_key, _ in candidates}


def install_fast_rule_lookup() -> None:
    """Replace ``RulePolicy._get_possible_keys`` by ``_possible_keys``."""
    RulePolicy._get_possible_keys = _possible_keys


# -- the turns' states -----------------------------------------------------------------------------------------


@dataclass
class StatesMemo:
    """The states of a tracker's turns as last computed, and what they were computed from."""

    domain: Domain
    omit_unset_slots: bool
    events: list[Event]  # the applied events replayed
    replay: DialogueStateTracker  # the tracker after them
    states: list[State]  # one per turn, the last one for ``replay``


def copy_states(states: list[State]) -> list[State]:
    """A copy a caller may change: states are sub-states of immutable values (``_choose_last_user_input`` deletes
    keys of the last one's user sub-state)."""
    return [{name: dict(sub_state) for name, sub_state in state.items()} for state in states]


def states_for_tracker_history(self: Domain, tracker: DialogueStateTracker, omit_unset_slots: bool = False,
                               ignore_rule_only_turns: bool = False,
                               rule_only_data: dict[str, Any] | None = None) -> list[State]:
    """``Domain.states_for_tracker_history``, computing only the turns added since the last call on ``tracker``.

    Rasa's method states the tracker before each ``ActionExecuted`` of its applied events and after the last one;
    a tracker that only gained events since has the same states for its earlier turns."""
    if ignore_rule_only_turns:  # the ML policies' view (not used by this assistant): Rasa's own
        return RASA_METHODS["states_for_tracker_history"](self, tracker, omit_unset_slots, ignore_rule_only_turns,
                                                          rule_only_data)
    events = tracker.applied_events()
    memo: StatesMemo | None = getattr(tracker, _STATES_MEMO, None)
    known = len(memo.events) if memo is not None else 0
    if (memo is not None and memo.domain is self and memo.omit_unset_slots == omit_unset_slots
            and known <= len(events) and all(map(operator.is_, memo.events, events[:known]))):
        replay, states, new = memo.replay, memo.states[:-1], events[known:]
    else:
        replay, states, new = tracker.init_copy(), [], events
    for event in new:
        if isinstance(event, ActionExecuted):
            states.append(self._clean_state(self.get_active_state(replay, omit_unset_slots=omit_unset_slots)))
        replay.update(event)
    states.append(self._clean_state(self.get_active_state(replay, omit_unset_slots=omit_unset_slots)))
    setattr(tracker, _STATES_MEMO, StatesMemo(self, omit_unset_slots, events, replay, states))
    return copy_states(states)


def install_incremental_states() -> None:
    """Replace ``Domain.states_for_tracker_history`` by ``states_for_tracker_history``."""
    Domain.states_for_tracker_history = states_for_tracker_history


# -- the processor's checks and logs ---------------------------------------------------------------------------

_empty_domains: dict[int, tuple[Domain, bool]] = {}


@dataclass
class AppliedEventsMemo:
    """A tracker's applied events as last computed, and what they were computed from."""

    events: Any  # the tracker's events deque (Rasa replaces it when it resets a tracker)
    count: int  # how many of its events were walked
    last: Event | None  # the last of them, to recognise the same events
    loop_names: frozenset[str]  # the forms named by those events' ActiveLoop
    applied: list[Event]


def _walk(tracker: DialogueStateTracker, events: Any, applied: list[Event], loop_names: frozenset[str]) -> list[Event]:
    """Rasa's loop of ``applied_events`` over ``events``, continuing from ``applied``."""
    for event in events:
        if isinstance(event, (Restarted, SessionStarted)):
            applied = []
        elif isinstance(event, ActionReverted):
            tracker._undo_till_previous(ActionExecuted, applied)
        elif isinstance(event, UserUtteranceReverted):
            tracker._undo_till_previous(UserUttered, applied)
            tracker._undo_till_previous(ActionExecuted, applied)
        elif (isinstance(event, ActionExecuted) and event.action_name in loop_names
              and not tracker._first_loop_execution_or_unhappy_path(event.action_name, applied)):
            tracker._undo_till_previous_loop_execution(event.action_name, applied)
        else:
            applied.append(event)
    return applied


def _loop_names(events: Any) -> frozenset[str]:
    return frozenset(event.name for event in events if isinstance(event, ActiveLoop) and event.name)


def applied_events(self: DialogueStateTracker) -> list[Event]:
    """``DialogueStateTracker.applied_events``, walking only the events added since the last call."""
    events = self.events
    count = len(events)
    memo: AppliedEventsMemo | None = getattr(self, _APPLIED_MEMO, None)
    applied: list[Event] | None = None
    if (memo is not None and memo.events is events and memo.count <= count
            and (memo.count == 0 or events[memo.count - 1] is memo.last)):
        new = list(itertools.islice(events, memo.count, None))
        if _loop_names(new) <= memo.loop_names:
            loop_names, applied = memo.loop_names, list(memo.applied)
    if applied is None:
        new = list(events)
        loop_names, applied = _loop_names(new), []
    applied = _walk(self, new, applied, loop_names)
    setattr(self, _APPLIED_MEMO, AppliedEventsMemo(events, count, events[-1] if count else None, loop_names, applied))
    return list(applied)


def forget_memos(tracker: DialogueStateTracker) -> None:
    """Drop what this module keeps on ``tracker``: for a caller that replaced some of its events in place."""
    for name in (_APPLIED_MEMO, _STATES_MEMO):
        if hasattr(tracker, name):
            delattr(tracker, name)


def install_incremental_applied_events() -> None:
    """Replace ``DialogueStateTracker.applied_events`` by ``applied_events``."""
    DialogueStateTracker.applied_events = applied_events  # type: ignore[method-assign]


def copy_tracker(self: DialogueStateTracker) -> DialogueStateTracker:
    """``DialogueStateTracker.copy`` without the replay: the same events (which are never changed) and state,
    with its own slots, events deque and the records events change in place (the active form's)."""
    if type(self) is not DialogueStateTracker:  # training's trackers carry caches of their own: Rasa's copy
        return RASA_METHODS["copy"](self)  # type: ignore[no-any-return]
    duplicate = copy.copy(self)
    duplicate.events = collections.deque(self.events, maxlen=self.events.maxlen)
    duplicate.slots = copy.copy(self.slots)
    for name, slot in self.slots.items():
        duplicate.slots[name] = copy.copy(slot)
    duplicate.active_loop = copy.deepcopy(self.active_loop)
    duplicate.latest_action = copy.deepcopy(self.latest_action)
    for name in [name for name in vars(duplicate) if name.startswith(_OWN_ATTRIBUTES)]:
        delattr(duplicate, name)  # a replayed copy has none of them
    return duplicate


def install_structural_tracker_copy() -> None:
    """Replace ``DialogueStateTracker.copy`` by ``copy_tracker``."""
    DialogueStateTracker.copy = copy_tracker  # type: ignore[method-assign]


def is_empty_domain(domain: Domain) -> bool:
    """``domain.is_empty()``, computed once per domain (it compares the whole domain, as a dict, with an empty one;
    a model's domain does not change while the server runs it)."""
    cached = _empty_domains.get(id(domain))
    if cached is None or cached[0] is not domain:
        cached = _empty_domains[id(domain)] = (domain, domain.is_empty())
    return cached[1]


def _check_for_unseen_features(self: MessageProcessor, parse_data: dict[str, Any]) -> None:
    """``MessageProcessor._check_for_unseen_features`` (warn about an intent or an entity the domain does not
    know), with the domain's emptiness computed once."""
    if not self.domain or is_empty_domain(self.domain):
        return
    intent = parse_data["intent"][INTENT_NAME_KEY]
    if intent and intent not in self.domain.intents:
        rasa.shared.utils.io.raise_warning(
            f"Parsed an intent '{intent}' "
            f"which is not defined in the domain. "
            f"Please make sure all intents are listed in the domain.",
            docs=DOCS_URL_DOMAINS,
        )
    for element in parse_data["entities"] or []:
        entity = element["entity"]
        if entity and entity not in self.domain.entities:
            rasa.shared.utils.io.raise_warning(
                f"Parsed an entity '{entity}' "
                f"which is not defined in the domain. "
                f"Please make sure all entities are listed in the domain.",
                docs=DOCS_URL_DOMAINS,
            )


def install_domain_emptiness_check() -> None:
    """Replace ``MessageProcessor._check_for_unseen_features`` by ``_check_for_unseen_features``."""
    MessageProcessor._check_for_unseen_features = _check_for_unseen_features


class CopyForDebugLogs:
    """Stands for the ``copy`` module in a Rasa module that deep-copies values only to pass them to a debug log
    line (``structlogger.debug(..., rasa_events=copy.deepcopy(events))``: Python evaluates the copy even when
    the line is dropped). ``deepcopy`` copies when that module's logger writes debug lines, and otherwise returns
    the value itself, which the dropped line never reads."""

    def __init__(self, module_logger: str) -> None:
        self._logger = logging.getLogger(module_logger)

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        if self._logger.isEnabledFor(logging.DEBUG):
            return copy.deepcopy(value, memo)
        return value

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


# The Rasa modules whose only use of ``copy`` is ``copy.deepcopy`` in debug log lines (checked for Rasa 3.6.21).
_DEBUG_COPYING_MODULES = (rasa.core.processor, rasa.core.policies.rule_policy)


_rule_policy_logger = logging.getLogger(rasa.core.policies.rule_policy.__name__)


def format_states_for_debug_logs(states: list[State]) -> str:
    """``Policy.format_tracker_states`` when RulePolicy's debug lines are written; else nothing (the text's only
    use is a debug line)."""
    if _rule_policy_logger.isEnabledFor(logging.DEBUG):
        return Policy.format_tracker_states(states)
    return ""


def install_copies_for_debug_logs_only() -> None:
    """Give each module of ``_DEBUG_COPYING_MODULES`` a ``CopyForDebugLogs`` as its ``copy``, and RulePolicy a
    ``format_tracker_states`` for debug lines only."""
    for module in _DEBUG_COPYING_MODULES:
        if not isinstance(module.copy, CopyForDebugLogs):
            module.copy = CopyForDebugLogs(module.__name__)
    RulePolicy.format_tracker_states = staticmethod(format_states_for_debug_logs)  # type: ignore[method-assign]
