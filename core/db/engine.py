"""Engines and sessions for the shared store: built by a factory at start-up, never at import."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 10_000
# Connections per process on PostgreSQL: kept open, and opened beyond when a busy console needs more (each of its
# threads holds one for a request, briefly).
POSTGRES_POOL_SIZE, POSTGRES_OVERFLOW = 20, 30


def _switch_to_wal(cursor: Any) -> None:
    """Put the file in WAL mode (it stays so), waiting for another process that holds its write lock.

    Switching needs the file to itself, and SQLite refuses at once, busy timeout or not, while another connection
    is in a write transaction (two processes starting on a new file: one already migrating). So: retry until
    that transaction ends, within the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # The busy timeout makes a writer wait for another instead of failing with "database is locked".
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # WAL lets the Rasa server, the action server and the mailroom read while one of them writes.
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        _switch_to_wal(cursor)
    # In WAL mode NORMAL never corrupts the file; a power cut may lose the last transactions, not the database.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def configure_sqlite(engine: Engine) -> None:
    """Give SQLite connections of ``engine`` the settings several processes need; no-op on other databases."""
    if engine.dialect.name == "sqlite" and not sa.event.contains(engine, "connect", _on_sqlite_connect):
        sa.event.listen(engine, "connect", _on_sqlite_connect)
        engine.dispose()  # connections opened before the listener existed lack the pragmas


def _autocommit_driver(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the driver stops issuing BEGIN itself; the "begin" event does


def _begin_immediate(connection: sa.engine.Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, batch_writer: bool = False) -> Engine:
    """An engine for ``url``; creates the SQLite file's folder when needed.

    ``batch_writer``: for a process that writes many rows per transaction with a savepoint each (the mailroom).
    Python's sqlite3 driver issues BEGIN only before the first write and mishandles SAVEPOINT (its RELEASE would
    commit); here the driver is told to leave transactions alone and each one starts with BEGIN IMMEDIATE, which
    also takes the write lock at once, so a batch that reads then writes never fails halfway with "database is
    locked" (other writers wait for it, within the busy timeout). No effect on other databases."""
    parsed = sa.engine.make_url(url)
    kwargs: dict[str, Any] = {"future": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    else:
        kwargs.update(pool_pre_ping=True, pool_size=POSTGRES_POOL_SIZE, max_overflow=POSTGRES_OVERFLOW)
    engine: Engine = sa.create_engine(parsed, **kwargs)
    if batch_writer and parsed.get_backend_name() == "sqlite":
        sa.event.listen(engine, "connect", _autocommit_driver)
        sa.event.listen(engine, "begin", _begin_immediate)
    configure_sqlite(engine)
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine`` (2.0 style, objects usable after commit)."""
    return sessionmaker(bind=engine, future=True, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One session for one unit of work: committed when the block ends, rolled back if it raises."""
    session: Session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
