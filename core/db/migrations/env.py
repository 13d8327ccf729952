"""Alembic environment: migrates the shared store at the URL given by ``core.db.migrate``."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from core.db.engine import make_engine
from core.db.migrate import include_object
from core.db.models import Base

MIGRATION_LOCK_KEY = 0x62696C6C  # "bill": the advisory lock that serialises migrations on PostgreSQL


def run_migrations() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()
        return
    # All of a run in one transaction, DDL included, so that a process killed mid-migration leaves the schema as
    # it was, never half migrated (which no later start could fix). SQLite can do it once the driver stops
    # committing around DDL itself: the batch-writer engine starts each transaction with BEGIN IMMEDIATE, which
    # also makes a second migrating process wait for the first instead of migrating the same store twice.
    engine = make_engine(str(url), batch_writer=True)
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # A table that SQLite must rebuild (batch mode) is dropped and created again: with foreign keys on,
            # the DROP would first delete the rows that refer to it (a ticket's messages). Off for the migration,
            # set on the driver's connection before the transaction begins (inside one SQLite ignores it), and
            # checked once the migration is done.
            connection.connection.connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[attr-defined]
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            include_object=include_object,
            render_as_batch=connection.dialect.name == "sqlite",
            transactional_ddl=True,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Several workers starting at once: the first migrates, the others wait, then find nothing to do.
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            context.run_migrations()
            if connection.dialect.name == "sqlite":
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migration left rows whose references are broken: {broken[:5]}")
    engine.dispose()


run_migrations()
