"""Real-looking billing mail with its expected triage (tests/mailroom/data/expected.yml), both languages and
both inboxes: language, queue, automation, misroute, acknowledgement, and no card number left in the text."""

from __future__ import annotations

import re
from typing import Any

import pytest

from core.settings import Settings
from mailroom.cli import triage_file
from mailroom.context import TriageContext
from tests.mailroom.conftest import DATA, EXPECTED

CARD = re.compile(r"(?<!\d)(?:\d[ .-]?){12,18}\d(?!\d)")


@pytest.fixture(scope="module")
def results(base_context: TriageContext, mail_settings: Settings) -> dict[str, dict[str, Any]]:
    return {name: triage_file((DATA / name).read_bytes(), base_context, mail_settings) for name in EXPECTED}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_language_automation_misroute_and_acknowledgement(results: dict[str, dict[str, Any]], name: str) -> None:
    expected, got = EXPECTED[name], results[name]
    assert got["language"] == expected["language"]
    assert got["automated"] == expected["automated"]
    assert got["misroute"] == expected["misroute"], got["reasons"]
    assert got["acknowledge"] == expected["acknowledge"], got["reasons"]
    assert got["team"] == {"to_us": "US", "to_ca": "CA"}.get(got["misroute"], expected["to"].upper())


def test_queues_are_right_for_at_least_nineteen_mails_in_twenty(results: dict[str, dict[str, Any]]) -> None:
    wrong = {n: (results[n]["queue"], e["queue"]) for n, e in EXPECTED.items() if results[n]["queue"] != e["queue"]}
    assert len(wrong) <= len(EXPECTED) // 20, wrong


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e.get("card_number")))
def test_card_numbers_never_survive(results: dict[str, dict[str, Any]], name: str) -> None:
    got = results[name]
    assert got["card_numbers"] >= 1 and got["priority"] == "urgent"
    for field in ("text", "subject"):
        assert not CARD.search(got[field].replace("••••", "")), got[field]


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e["misroute"] in ("to_us", "to_ca")))
def test_a_forwarded_misroute_says_what_decided_it(results: dict[str, dict[str, Any]], name: str) -> None:
    got = results[name]
    [reason] = [r for r in got["reasons"] if r.startswith("misroute")]
    assert got["misroute_confidence"] >= 0.6 and ": " in reason and reason.split(": ", 1)[1]
