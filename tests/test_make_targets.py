"""The make targets that scripts read: `make -s demo-users` prints only JSON lines, `make -s token` only a token
that the store accepts, both on a store they migrate and seed themselves when it is empty."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import sqlalchemy as sa

from core.db.engine import make_engine, make_session_factory
from core.db.models import OutboxMail, Ticket
from core.outbox import queue_mail
from core.identity import verify_token
from core.settings import PROJECT_ROOT, Settings


def make(target: str, var_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLING_") and k != "DATABASE_URL"}
    env["BILLING_VAR_DIR"] = str(var_dir)
    return subprocess.run(["make", "-s", target, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_demo_users_then_a_token_for_one_of_them(tmp_path: Path) -> None:
    listing = make("demo-users", tmp_path)
    assert listing.returncode == 0, listing.stderr
    users = [json.loads(line) for line in listing.stdout.splitlines()]
    assert len(users) >= 8
    for user in users:
        assert set(user) >= {"email", "account", "role", "language", "last_invoice", "last_invoice_total", "balance"}
        assert user["role"] in {"office_manager", "admin", "regular"} and user["language"] in {"en", "fr"}
        for amount in (user["last_invoice_total"], user["balance"]):
            assert amount.replace("-", "", 1).replace(".", "", 1).isdigit() and amount[-3] == "."
    assert {u["language"] for u in users} == {"en", "fr"}

    minted = make("token", tmp_path, f"USER={users[0]['email']}")
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    assert "\n" not in token
    settings = Settings.from_env({"BILLING_VAR_DIR": str(tmp_path)})
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        identity = verify_token(token, settings.signing_secret(), session)
    engine.dispose()
    assert (identity.email, identity.account_number) == (users[0]["email"], users[0]["account"])
    assert (tmp_path / "auth_secret").stat().st_mode & 0o777 == 0o600


def test_a_token_for_nobody_says_how_to_find_users(tmp_path: Path) -> None:
    result = make("token", tmp_path, "USER=nobody@nowhere.ca")
    assert result.returncode != 0 and result.stdout == ""
    assert "make -s demo-users" in result.stderr


def test_the_outbox_lists_what_waits_and_what_needs_a_person(tmp_path: Path) -> None:
    assert make("outbox", tmp_path).stdout.strip().endswith("(nothing waiting: every mail was sent)")
    settings = Settings.from_env({"BILLING_VAR_DIR": str(tmp_path)})
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    with factory() as session:
        ticket = Ticket(reference="BL-OUTBX2", team="CA", mailbox="ca", queue="general", priority="normal",
                        language="fr", subject="Bonjour", customer_email="a@example.ca")
        session.add(ticket)
        session.flush()
        for number, (status, error) in enumerate([("pending", None), ("failed", "550 5.1.1 no such user"),
                                                  ("suppressed", "a@example.ca: hard bounce"), ("sent", None)]):
            queue_mail(session, "ack", ticket.id, f"<m{number}@x>", "billing@net2phone.ca", "a@example.ca", "x")
            session.flush()
            session.execute(sa.update(OutboxMail).where(OutboxMail.message_id == f"<m{number}@x>")
                            .values(status=status, last_error=error))
        session.commit()
    engine.dispose()
    table = make("outbox", tmp_path)
    assert table.returncode == 0, table.stderr
    header, *lines = table.stdout.splitlines()
    assert header.split()[:4] == ["id", "state", "kind", "ticket"] and len(lines) == 3  # not the sent one
    assert "550 5.1.1 no such user" in table.stdout and "BL-OUTBX2" in table.stdout
    rows = [json.loads(line) for line in make("outbox", tmp_path, "ARGS=--json").stdout.splitlines()]
    assert [(r["state"], r["ticket"]) for r in rows] == [("pending", "BL-OUTBX2"), ("failed", "BL-OUTBX2"),
                                                         ("suppressed", "BL-OUTBX2")]
    assert {"recipient", "attempts", "doubts", "last_error", "next_attempt_at", "message_id"} <= set(rows[0])
