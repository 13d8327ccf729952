"""Leases: one holder at a time for a named resource (a mailbox), across processes, and across machines on
PostgreSQL.

A lease lasts as long as its holder lives and no longer, with nothing to renew and no clock to trust:

- **PostgreSQL**: a session-level advisory lock (``pg_try_advisory_lock``) taken on a connection of the lease's
  own, kept open while it is held. PostgreSQL releases the lock the moment that connection ends: a holder killed
  with SIGKILL has its socket closed by the kernel, so another process can take the lease at once. A holder's
  machine that vanishes without closing anything is found by TCP keepalives asked of the server for that
  connection (about 11 s). The connection carries its holder's name (``application_name``), so that a process
  that waits can say who holds the lease, and can count the holders alive (``peers``).
- **SQLite** (one machine by nature): an exclusive ``flock`` on a file beside the database file
  (``billing.db-lease-<key>``, as SQLite keeps ``billing.db-wal`` there); the kernel releases it when the
  holder's process ends, however it ends. The file holds the name of its last holder.

A holder checks ``is_held`` before it relies on its lease: after a database restart the lock is gone, and so is
the connection. A lease is a courtesy, not the guard of correctness: what it protects must stay safe should two
holders overlap for a moment (one that has not yet noticed its connection is gone); the mailroom's record of
every message handled, a unique key, is that guard.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from core.errors import LeaseUnavailable

# Asked of the server for each lease connection: a peer that stops answering is dropped after 5 + 3 × 2 s, and
# its lock with it. (Ignored on a Unix socket, where a dead peer is always seen at once.)
SERVER_KEEPALIVES = "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3"
# The same on our side, so that a holder whose server vanished finds out in seconds, not at the next timeout.
CLIENT_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}
CONNECT_TIMEOUT_SECONDS = 5

_locks = sa.table("pg_locks", sa.column("locktype"), sa.column("database"), sa.column("classid"),
                  sa.column("objid"), sa.column("objsubid"), sa.column("pid"), sa.column("granted"))
_activity = sa.table("pg_stat_activity", sa.column("pid"), sa.column("datid"), sa.column("datname"),
                     sa.column("application_name"))


def lease_key(name: str) -> int:
    """The lease's 64-bit advisory lock key: the same for ``name`` in every process and on every machine."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8, person=b"billing-lease").digest()
    return int.from_bytes(digest, "big", signed=True)


class Lease(Protocol):
    """One named lease, as seen by one would-be holder."""

    name: str

    def try_acquire(self) -> bool:
        """Take the lease if nobody holds it; True if this holder holds it now. Never waits."""

    def is_held(self) -> bool:
        """True while this holder still holds the lease (checked: the lock's connection still answers)."""

    def holder(self) -> str | None:
        """Who holds the lease now (a holder's name), or None when nobody does."""

    def peers(self, prefix: str) -> list[str]:
        """The names starting with ``prefix`` of the would-be holders alive now, this one included, sorted
        (always empty where they cannot be seen: file leases)."""

    def release(self) -> None:
        """Give the lease up (nothing happens if it is not held)."""


class AdvisoryLease:
    """A lease kept as a PostgreSQL advisory lock on a connection of its own (see the module's docstring).

    The connection stays open while the lease is held or waited for: a waiting holder is seen by ``peers``."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.name = name
        self.key = lease_key(name)
        self._engine = engine
        self._connection: Connection | None = None
        self._held = False

    def _execute(self, statement: sa.sql.Executable) -> sa.engine.Result:
        """Run ``statement`` on the lease's connection (opened if needed). A failure ends the connection, and the
        lock with it, and raises ``LeaseUnavailable``."""
        try:
            if self._connection is None:
                self._connection = self._engine.connect()
            return self._connection.execute(statement)
        except DBAPIError as error:
            self._close()
            raise LeaseUnavailable(f"lease {self.name}: the database cannot be reached: "
                                   f"{' '.join(str(error.orig).split())}") from error

    def try_acquire(self) -> bool:
        if self._held:
            return self.is_held()
        self._held = bool(self._execute(sa.select(sa.func.pg_try_advisory_lock(self.key))).scalar_one())
        return self._held

    def is_held(self) -> bool:
        if not self._held:
            return False
        try:
            self._execute(sa.select(sa.literal(1)))
        except LeaseUnavailable:
            return False
        return True

    def holder(self) -> str | None:
        unsigned = self.key & 0xFFFF_FFFF_FFFF_FFFF  # a bigint key is shown as two unsigned halves
        query = (sa.select(_activity.c.application_name)
                 .select_from(_locks.join(_activity, _locks.c.pid == _activity.c.pid))
                 .where(_locks.c.locktype == "advisory", _locks.c.granted.is_(True),
                        _locks.c.database == _activity.c.datid, _activity.c.datname == sa.func.current_database(),
                        _locks.c.classid == unsigned >> 32, _locks.c.objid == unsigned & 0xFFFF_FFFF,
                        _locks.c.objsubid == 1))
        row = self._execute(query).first()
        return None if row is None else str(row[0] or "a process without a name")

    def peers(self, prefix: str) -> list[str]:
        query = (sa.select(_activity.c.application_name).distinct()
                 .where(_activity.c.datname == sa.func.current_database(),
                        _activity.c.application_name.startswith(prefix, autoescape=True)))
        return sorted(str(name) for name in self._execute(query).scalars())

    def release(self) -> None:
        self._close()  # ending the session releases its advisory locks, whatever state the connection is in

    def _close(self) -> None:
        connection, self._connection, self._held = self._connection, None, False
        if connection is not None:
            try:
                connection.close()
            except DBAPIError:
                connection.invalidate()


class FileLease:
    """A lease kept as an exclusive ``flock`` on a file (see the module's docstring)."""

    def __init__(self, path: Path, name: str, holder_name: str) -> None:
        self.name = name
        self.path = path
        self._holder_name = holder_name
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by processes we start (PEP 446)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{self._holder_name}\n{self.name}\n".encode("utf-8"))
        self._fd = fd
        return True

    def is_held(self) -> bool:
        return self._fd is not None  # a flock lasts as long as its file stays open in this process

    def holder(self) -> str | None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # granted: nobody holds the lease
                return None
            except BlockingIOError:
                written = os.read(fd, 4096).decode("utf-8", "replace").splitlines()
                return written[0] if written and written[0] else "another process"
        finally:
            os.close(fd)

    def peers(self, prefix: str) -> list[str]:
        return []

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the file releases the flock


class Leases:
    """Makes the leases of one store for one holder: advisory locks on PostgreSQL, file locks on SQLite.

    ``holder_name`` names this process to the others (at most 63 characters on PostgreSQL)."""

    def __init__(self, database_url: str | URL, holder_name: str) -> None:
        self.url = sa.engine.make_url(database_url)
        self.holder_name = holder_name[:63]
        self._engine: Engine | None = None
        if self.url.get_backend_name() == "sqlite" and self.url.database in (None, "", ":memory:"):
            raise ValueError("a lease needs a store other processes can share: PostgreSQL or a SQLite file")

    def lease(self, name: str) -> Lease:
        """The lease called ``name`` (not taken yet)."""
        if self.url.get_backend_name() == "sqlite":
            assert self.url.database is not None
            path = Path(f"{self.url.database}-lease-{lease_key(name) & 0xFFFF_FFFF_FFFF_FFFF:016x}")
            return FileLease(path, name, self.holder_name)
        return AdvisoryLease(self._lease_engine(), name)

    def _lease_engine(self) -> Engine:
        if self._engine is None:
            # No pool: a lease's connection must really close when the lease is released (a pooled connection
            # would keep its session, and the lock, alive). Autocommit: no transaction is ever left open on it.
            self._engine = sa.create_engine(
                self.url, future=True, poolclass=NullPool, isolation_level="AUTOCOMMIT",
                connect_args={"application_name": self.holder_name, "options": SERVER_KEEPALIVES,
                              "connect_timeout": CONNECT_TIMEOUT_SECONDS, **CLIENT_KEEPALIVES},
            )
        return self._engine

    def close(self) -> None:
        """Release the engine (each lease releases itself)."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()
