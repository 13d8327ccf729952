"""Every real-world message of ../shared/corpora/emails (bounces, auto-replies, odd charsets, malformed MIME)
goes through the parser and the triage without an unhandled error."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT, Settings
from mailroom.cli import one_line_json, triage_file
from mailroom.context import TriageContext
from mailroom.errors import PermanentMailError
from mailroom.mail import Mail
from mailroom.pipeline import report, triage
from tests.conftest import unavailable

CORPUS = PROJECT_ROOT.parent / "shared" / "corpora" / "emails"
QUARANTINE_REASONS = ("no header at all", "neither a sender nor a subject")
KEYS = {"language", "queue", "priority", "automated", "misroute", "misroute_confidence", "reasons", "acknowledge", "text"}


def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "README.md")


@pytest.fixture(scope="module")
def files() -> list[Path]:
    found = corpus_files()
    if len(found) < 1000:
        unavailable(f"the email corpus at {CORPUS}", f"{len(found)} files")
    return found


def test_every_corpus_message_is_triaged_or_quarantined(files: list[Path], base_context: TriageContext) -> None:
    outcomes: dict[str, int] = {}
    for path in files:
        mail = Mail(raw=path.read_bytes(), team="CA", mailbox="corpus")
        try:
            triage(mail, base_context, 10 * 1024 * 1024)
        except PermanentMailError as error:
            assert str(error).startswith(QUARANTINE_REASONS), (path, error)
            outcomes["quarantined"] = outcomes.get("quarantined", 0) + 1
            continue
        result = report(mail)
        assert KEYS <= set(result), path
        json.dumps(result, ensure_ascii=False)
        key = result["automated"] or "customer"
        outcomes[key] = outcomes.get(key, 0) + 1
    assert outcomes.get("bounce", 0) > 300  # the corpus is mostly bounces (sisimai, bounceparser...)
    # What is quarantined is not mail at all (empty files, lorem ipsum, an Outlook .msg, a log excerpt) or a bare
    # MIME fragment from a parser's test suite, with neither a sender nor a subject.
    assert outcomes.get("quarantined", 0) < len(files) * 0.02


def test_the_triage_command_prints_one_json_line_per_corpus_message(
    files: list[Path], base_context: TriageContext, mail_settings: Settings
) -> None:
    for path in files:
        line = one_line_json(triage_file(path.read_bytes(), base_context, mail_settings))
        assert len(line.splitlines()) == 1, path
        assert KEYS <= set(json.loads(line)), path


@pytest.mark.parametrize(
    "name",
    [
        "sisimai-set-of-emails/maildir/bsd/rfc3834-01.eml",
        "enmime/testdata/low-quality/bad-final-boundary.raw",
        "spamscope-mail-parser/mail_malformed_1",
        "redmine-mail_handler/invalid_utf8.eml",
    ],
)
def test_make_triage_prints_only_json(name: str, files: list[Path], mail_settings: Settings) -> None:
    path = CORPUS / name
    if not path.exists():
        pytest.fail(f"{path} is not in the corpus any more: pick another sample")
    result = subprocess.run(["make", "-s", "triage", f"EML={path}"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            timeout=180, env={"PATH": "/usr/bin:/bin", "BILLING_VAR_DIR": str(mail_settings.var_dir),
                                              "HOME": str(mail_settings.var_dir)})
    assert result.returncode == 0, result.stderr
    assert KEYS <= set(json.loads(result.stdout))
