"""Shared fixtures: real databases (SQLite files, a throwaway PostgreSQL database) and the running stack.

With ``CI=true`` a missing service (PostgreSQL, a trained model) fails the run instead of skipping tests.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from core.db.engine import make_engine, make_session_factory
from core.db.migrate import upgrade
from core.demo import seed
from core.knowledge import Article, load_articles
from core.settings import PROJECT_ROOT
from tests.browsers import LAUNCH_ARGS, BrowserUnavailable, ensure_chromium
from tests.mailroom.servers import Dovecot, ServerUnavailable, SmtpServer

CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
DEMO_TODAY = date(2026, 11, 25)
TEST_SECRET = "test-signing-secret-that-is-long-enough-0123456789"
POSTGRES_ADMIN_URL = os.environ.get("BILLING_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def unavailable(what: str, why: object) -> None:
    """Fail under CI, skip on a developer machine that lacks ``what``."""
    message = f"{what} is not available: {why}"
    if CI:
        pytest.fail(f"{message} (CI=true: a missing service fails the run)")
    pytest.skip(message)


def run_alone(coroutine: Any) -> Any:
    """Run a coroutine to its end in a thread of its own: the session's browser (Playwright) keeps an event loop
    running in the main thread, where asyncio.run() refuses to start another."""
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(asyncio.run(coroutine))
        except BaseException as error:  # handed to the test's thread
            errors.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    if errors:
        raise errors[0]
    return results[0]


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the machine's server, dropped afterwards."""
    name = f"billing_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", future=True)
    try:
        with admin.connect() as connection:
            # An identifier we generated ourselves; CREATE DATABASE has no SQLAlchemy construct.
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as error:
        admin.dispose()
        unavailable("PostgreSQL at " + POSTGRES_ADMIN_URL, error)
    try:
        yield sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"), {"name": name}
            )
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The session's PostgreSQL database for unit tests."""
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_url: str) -> str:
    """The session's PostgreSQL database with every migration applied."""
    upgrade(postgres_url)
    return postgres_url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite store holding the demo data as of ``DEMO_TODAY``, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "billing.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    seed(make_session_factory(engine), DEMO_TODAY)
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database of each kind: a fresh copy of the SQLite template per test, the session's PostgreSQL
    database (shared: tests use their own conversation ids and rows)."""
    if request.param == "sqlite":
        path = tmp_path / "billing.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    return str(request.getfixturevalue("migrated_postgres_url"))


@pytest.fixture
def sessions(database_url: str) -> Iterator[sa.orm.sessionmaker]:
    """A session factory on ``database_url``."""
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


# The Dovecot users of a test session: the mailroom tests' two inboxes, and the running stack's own two (its
# mailroom must never read the mail of a mailroom test).
MAIL_USERS = {"billing-ca": "ca-secret-pw", "billing-us": "us-secret-pw",
              "stack-ca": "stack-ca-secret", "stack-us": "stack-us-secret"}


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """A real Dovecot on loopback, for the whole session."""
    try:
        server = Dovecot.start(MAIL_USERS)
    except ServerUnavailable as error:
        unavailable("Dovecot", error)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on loopback that records what it receives."""
    server = SmtpServer.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole session (Debian's, driven by Playwright)."""
    from playwright.sync_api import sync_playwright

    try:
        executable = ensure_chromium()
    except BrowserUnavailable as error:
        unavailable("Chromium", error)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=LAUNCH_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """The model ``make train`` built (``make test`` trains it first)."""
    model = PROJECT_ROOT / "models" / "billing.tar.gz"
    if not model.exists():
        unavailable("a trained model (run `make train`)", model)
    return model


@pytest.fixture
def knowledge_factory(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write an article file into a fresh folder: ``knowledge_factory(filename, yaml_text)``."""
    folder = tmp_path / "knowledge"
    folder.mkdir(exist_ok=True)

    def write(filename: str, text: str) -> Path:
        path = folder / filename
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def demo_sessions(sessions: sa.orm.sessionmaker) -> sa.orm.sessionmaker:
    """``sessions`` on a store holding the demo accounts as of ``DEMO_TODAY``."""
    seed(sessions, DEMO_TODAY)
    return sessions


@pytest.fixture(scope="session")
def articles() -> dict[str, Article]:
    """The knowledge base by article id (loaded once: linting 3,000 phrasings takes most of a second)."""
    return {article.id: article for article in load_articles(PROJECT_ROOT / "knowledge")}
