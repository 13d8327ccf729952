"""Shared fixtures: real databases (SQLite files, a throwaway PostgreSQL database) and the running stack.

With ``CI=true`` a missing service (PostgreSQL, a trained model) fails the run instead of skipping tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.db.engine import make_engine, make_session_factory
from core.db.migrate import upgrade
from core.settings import PROJECT_ROOT

CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
POSTGRES_ADMIN_URL = os.environ.get("BILLING_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def unavailable(what: str, why: object) -> None:
    """Fail under CI, skip on a developer machine that lacks ``what``."""
    message = f"{what} is not available: {why}"
    if CI:
        pytest.fail(f"{message} (CI=true: a missing service fails the run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the machine's server, dropped after the session."""
    name = f"billing_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", future=True)
    try:
        with admin.connect() as connection:
            # An identifier we generated ourselves; CREATE DATABASE has no SQLAlchemy construct.
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as error:
        admin.dispose()
        unavailable("PostgreSQL at " + POSTGRES_ADMIN_URL, error)
    url = sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as connection:
        connection.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"), {"name": name}
        )
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_url: str) -> str:
    """The session's PostgreSQL database with every migration applied."""
    upgrade(postgres_url)
    return postgres_url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database of each kind: a new SQLite file per test, the session's PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'billing.db'}"
        upgrade(url)
        return url
    return str(request.getfixturevalue("migrated_postgres_url"))


@pytest.fixture
def sessions(database_url: str) -> Iterator[sa.orm.sessionmaker]:
    """A session factory on ``database_url``."""
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


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
