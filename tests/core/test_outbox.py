"""The outbox on a real store (SQLite and PostgreSQL): one row claimed at a time with a lease naming its sender,
lapsed claims given back and sent again with their own Message-ID, several senders never sending one row twice,
and every row that needs a person listed and logged with its ticket."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.db.engine import make_engine, make_session_factory
from core.db.models import MailSuppression, OutboxMail, Ticket
from core.outbox import (
    claim_next,
    is_gone,
    mark_failed,
    mark_for_retry,
    mark_sent,
    problem_rows,
    queue_mail,
    release_lapsed,
    retry_now,
    sender_identity,
)


@pytest.fixture
def writer_sessions(database_url: str) -> sessionmaker[Session]:
    """Sessions as the mailroom opens them (SQLite transactions take the write lock at once)."""
    engine = make_engine(database_url, batch_writer=True)
    yield make_session_factory(engine)
    engine.dispose()


def new_ticket(factory: sessionmaker[Session]) -> tuple[int, str]:
    with factory() as session:
        ticket = Ticket(reference=f"BL-{uuid.uuid4().hex[:6].upper()}", team="CA", mailbox="ca", queue="payments",
                        priority="normal", language="fr", subject="Carte refusée", customer_email="a@example.ca")
        session.add(ticket)
        session.commit()
        return int(ticket.id), str(ticket.reference)


def queue(factory: sessionmaker[Session], count: int, kind: str = "ack", recipient: str | None = None) -> list[str]:
    """Queue ``count`` mails of a ticket of their own; returns their Message-IDs."""
    ticket_id, _ = new_ticket(factory)
    ids = []
    with factory() as session:
        for _ in range(count):
            message_id = f"<{kind}-{uuid.uuid4().hex}@billing.net2phone.ca>"
            queue_mail(session, kind, ticket_id, message_id, "billing@net2phone.ca",
                       recipient or f"c-{uuid.uuid4().hex[:8]}@example.ca", f"Message-ID: {message_id}\r\n\r\nBonjour")
            ids.append(message_id)
        session.commit()
    return ids


def row_of(factory: sessionmaker[Session], message_id: str) -> OutboxMail:
    with factory() as session:
        return session.execute(sa.select(OutboxMail).where(OutboxMail.message_id == message_id)).scalar_one()


def drain(factory: sessionmaker[Session], owner: str) -> None:
    """Earlier tests' rows on the shared PostgreSQL database: sent, so that each test sees its own."""
    while (claim := claim_next(factory, owner)) is not None:
        mark_sent(factory, claim, owner)


def test_a_claim_takes_one_row_and_names_its_sender_until_its_lease_ends(writer_sessions: sessionmaker[Session]) -> None:
    drain(writer_sessions, "drain")
    first, second = queue(writer_sessions, 2)
    claim = claim_next(writer_sessions, "host/1/1", lease=timedelta(minutes=5))
    assert claim is not None and claim.message_id == first and claim.attempt == 1
    row = row_of(writer_sessions, first)
    assert (row.status, row.claimed_by, row.attempts) == ("sending", "host/1/1", 1)
    assert row_of(writer_sessions, second).status == "pending"  # the rest of the outbox is untouched
    mark_sent(writer_sessions, claim, "host/1/1")
    row = row_of(writer_sessions, first)
    assert (row.status, row.claimed_by, row.lease_until) == ("sent", None, None) and row.sent_at is not None


def test_a_lapsed_claim_goes_back_to_pending_and_is_sent_again_with_the_same_message_id(
    writer_sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture,
) -> None:
    drain(writer_sessions, "drain")
    [message_id] = queue(writer_sessions, 1, kind="forward")
    claim = claim_next(writer_sessions, "other-host/42/7", lease=timedelta(seconds=30))
    assert claim is not None
    assert release_lapsed(writer_sessions) == 0  # the lease still runs: its sender may be sending right now
    with caplog.at_level(logging.WARNING, logger="core.outbox"):
        assert release_lapsed(writer_sessions, now=datetime.now(timezone.utc) + timedelta(minutes=1)) == 1
    row = row_of(writer_sessions, message_id)
    assert (row.status, row.doubts, row.claimed_by) == ("pending", 1, None)
    assert "in doubt" in (row.last_error or "")
    [state] = [r["state"] for r in _problems(writer_sessions) if r["message_id"] == message_id]
    assert state == "in doubt"
    again = claim_next(writer_sessions, "host-b/1/1")
    assert again is not None and again.raw == claim.raw and again.message_id == message_id and again.attempt == 2
    assert any("in doubt" in r.message and "BL-" in r.message for r in caplog.records)
    # The first sender comes back to a row that is no longer its own: it records the send all the same.
    mark_sent(writer_sessions, claim, "other-host/42/7")
    assert row_of(writer_sessions, message_id).status == "sent"


def test_the_claim_of_a_process_of_this_machine_that_died_is_given_back_at_once(
    writer_sessions: sessionmaker[Session],
) -> None:
    drain(writer_sessions, "drain")
    [message_id] = queue(writer_sessions, 1)
    child = subprocess.run([sys.executable, "-c", "from core.outbox import sender_identity; print(sender_identity())"],
                           capture_output=True, text=True, check=True)
    dead = child.stdout.strip()
    assert is_gone(dead) and not is_gone(sender_identity()) and not is_gone("another-machine/1/1")
    assert claim_next(writer_sessions, dead, lease=timedelta(hours=1)) is not None
    assert release_lapsed(writer_sessions) == 1  # no waiting for the hour-long lease
    assert row_of(writer_sessions, message_id).status == "pending"


def test_two_senders_at_once_never_send_the_same_row(database_url: str, writer_sessions: sessionmaker[Session]) -> None:
    drain(writer_sessions, "drain")
    ids = set(queue(writer_sessions, 60))
    sent: Counter[str] = Counter()
    lock = threading.Lock()

    def sender(name: str) -> None:
        engine = make_engine(database_url, batch_writer=True)
        factory = make_session_factory(engine)
        try:
            while (claim := claim_next(factory, name)) is not None:
                with lock:
                    sent[claim.message_id] += 1
                mark_sent(factory, claim, name)
        finally:
            engine.dispose()

    workers = [threading.Thread(target=sender, args=(f"host/{n}/1",)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert set(sent) == ids and max(sent.values()) == 1


def test_refusals_are_kept_listed_and_logged_with_their_ticket(
    writer_sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture,
) -> None:
    drain(writer_sessions, "drain")
    refused, flaky = queue(writer_sessions, 2, kind="forward")
    owner = sender_identity()
    with caplog.at_level(logging.INFO, logger="core.outbox"):
        claim = claim_next(writer_sessions, owner)
        assert claim is not None and claim.message_id == refused
        mark_failed(writer_sessions, claim, owner, "550 mailbox unavailable")
        for attempt in range(1, 4):
            claim = claim_next(writer_sessions, owner)
            assert claim is not None and claim.message_id == flaky and claim.attempt == attempt
            mark_for_retry(writer_sessions, claim, owner, "ConnectionRefusedError: [Errno 111]")
            with writer_sessions() as session:  # due again now rather than in 30 s, 60 s...
                session.execute(sa.update(OutboxMail).where(OutboxMail.id == claim.id)
                                .values(next_attempt_at=datetime.now(timezone.utc)))
                session.commit()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("refused for good" in w and claim.ticket_reference in w for w in warnings)
    assert any("attempt 3 failed" in w and claim.ticket_reference in w for w in warnings)
    assert not any("attempt 2 failed" in w for w in warnings)  # the first retries are routine
    states = {r["message_id"]: (r["state"], r["attempts"], r["ticket"]) for r in _problems(writer_sessions)}
    assert states[refused][0] == "failed" and states[refused][2] == claim.ticket_reference
    assert states[flaky][:2] == ("pending", 3)
    with writer_sessions() as session:
        assert retry_now(session, row_of(writer_sessions, refused).id)
        session.commit()
    assert row_of(writer_sessions, refused).status == "pending"


def test_an_acknowledgement_to_a_bounced_address_is_suppressed_not_sent(writer_sessions: sessionmaker[Session]) -> None:
    drain(writer_sessions, "drain")
    address = f"bounced-{uuid.uuid4().hex[:6]}@example.ca"
    with writer_sessions() as session:
        session.add(MailSuppression(email=address, reason="hard bounce",
                                    until=datetime.now(timezone.utc) + timedelta(days=7)))
        session.commit()
    [ack] = queue(writer_sessions, 1, kind="ack", recipient=address)
    [forward] = queue(writer_sessions, 1, kind="forward", recipient=address)
    claim = claim_next(writer_sessions, "host/1/1")
    assert claim is not None and claim.message_id == forward  # a forward is never suppressed
    assert row_of(writer_sessions, ack).status == "suppressed"


def _problems(factory: sessionmaker[Session]) -> list[dict[str, object]]:
    with factory() as session:
        return problem_rows(session, limit=10_000)
