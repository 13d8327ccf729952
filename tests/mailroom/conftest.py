"""Fixtures of the mailroom tests: the triage context on a demo store, empty inboxes and an SMTP server of a test's
own for the tests that run daemons (the session's Dovecot and SMTP: ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.orm import Session, sessionmaker

from core.db.engine import make_engine, make_session_factory
from core.settings import Settings
from mailroom.context import TriageContext
from tests.conftest import MAIL_USERS as USERS  # noqa: F401 (the mailroom tests' name for them)
from tests.conftest import TEST_SECRET
from tests.mailroom import crashkit
from tests.mailroom.servers import Dovecot, SmtpServer

DATA = Path(__file__).parent / "data"
# Every test message with its expected triage (language, queue, automation, misroute, acknowledgement, inbox).
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((DATA / "expected.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def mail_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for mail tests: a var dir of their own (the topic model cache lives there)."""
    return Settings.from_env({"BILLING_VAR_DIR": str(tmp_path_factory.mktemp("mailroom-var")),
                              "BILLING_AUTH_SECRET": TEST_SECRET})


@pytest.fixture(scope="session")
def base_context(mail_settings: Settings) -> TriageContext:
    """Models loaded once per session (articles, language lexicon, topic model)."""
    return TriageContext.build(mail_settings)


@pytest.fixture
def context(base_context: TriageContext, demo_sessions: sessionmaker[Session]) -> Iterator[TriageContext]:
    """The triage context on a demo store (SQLite and PostgreSQL), in one session rolled back afterwards."""
    session = demo_sessions()
    yield replace(base_context, session=session)
    session.rollback()
    session.close()


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    """A session factory on ``database_url`` configured as the mailroom's (one transaction per batch, a savepoint
    per message)."""
    engine = make_engine(database_url, batch_writer=True)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def empty_inboxes(dovecot: Dovecot) -> Dovecot:
    """The session's Dovecot with the two billing inboxes emptied."""
    crashkit.empty_inboxes(dovecot)
    return dovecot


@pytest.fixture
def models(base_context: TriageContext) -> Path:
    """A var folder holding the trained mail models (the session's)."""
    return base_context.settings.var_dir


@pytest.fixture
def crash_smtp() -> Iterator[SmtpServer]:
    """An SMTP server of the test's own (stopped and started again mid-run) that takes 30 ms to accept a message,
    as a real one does: kills land in the middle of sending, not only between."""
    server = SmtpServer.start(latency=0.03)
    yield server
    server.stop()
