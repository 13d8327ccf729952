"""The migrations build exactly the models' schema, on SQLite and PostgreSQL, and can be undone."""

from __future__ import annotations

import sqlite3
import threading

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.db.engine import make_engine
from core.db.migrate import downgrade, include_object, upgrade
from core.db.models import Base


def test_the_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": include_object, "compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_migrations_go_down_and_up_again(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    upgrade(url)
    downgrade(url, "base")
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": include_object})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_a_second_process_migrating_a_new_sqlite_file_waits_for_the_first(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Two services starting at once on a new file: the first is migrating (a write transaction, the file not yet
    # in WAL mode) when the second connects and asks for WAL, which SQLite refuses at once while the first writes.
    # The second must wait for the first to finish, then find the schema migrated, instead of failing.
    path = tmp_path / "new.db"
    first = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    first.execute("BEGIN IMMEDIATE")
    first.execute("CREATE TABLE started_first (id INTEGER)")
    threading.Timer(0.3, first.execute, ("COMMIT",)).start()
    try:
        upgrade(f"sqlite:///{path}")
    finally:
        first.close()
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        tables = set(sa.inspect(connection).get_table_names())
        assert {"started_first", "tickets"} <= tables
    engine.dispose()
