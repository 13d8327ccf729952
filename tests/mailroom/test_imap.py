"""The mailroom against a real Dovecot and a real SMTP server: every kind of mail, exactly once, whatever fails."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session, sessionmaker

from core.db.models import Ticket, TicketMessage
from core.settings import PROJECT_ROOT, Settings
from mailroom.config import MailboxConfig, MailroomConfig, SmtpConfig
from mailroom.context import TriageContext
from mailroom.errors import TransientMailError
from mailroom.imap import ImapMailbox
from mailroom.parse import message_ids
from mailroom.outbox import SmtpTransport, send_pending
from mailroom.service import Daemon, Processor, process_imap, ssl_context_for
from tests.conftest import TEST_SECRET
from tests.mailroom.conftest import DATA, EXPECTED, USERS
from tests.mailroom.helpers import counts, make_mail
from tests.mailroom.servers import CuttingProxy, Dovecot, SmtpServer



def empty(dovecot: Dovecot, user: str) -> None:
    for sub in ("new", "cur"):
        for path in (dovecot.maildir(user) / sub).iterdir():
            path.unlink()


@pytest.fixture
def mailbox_config(dovecot: Dovecot) -> Callable[..., MailboxConfig]:
    def make(user: str, team: str, security: str = "starttls", port: int | None = None) -> MailboxConfig:
        empty(dovecot, user)
        chosen = port or (dovecot.tls_port if security == "tls" else dovecot.port)
        return MailboxConfig(name=f"{user}-{uuid.uuid4().hex[:6]}", team=team, host="127.0.0.1", port=chosen,
                             security=security, username=user, password=USERS[user], ca_file=str(dovecot.ca_file),
                             poll_seconds=1.0)
    return make


def connected(config: MailboxConfig) -> ImapMailbox:
    mailbox = ImapMailbox(config, ssl_context_for(config), timeout=20)
    mailbox.connect()
    return mailbox


def test_every_kind_of_mail_once_with_acknowledgements_over_smtp(
    dovecot: Dovecot, smtp: SmtpServer, sessions: sessionmaker[Session], base_context: TriageContext,
    mail_settings: Settings, mailbox_config: Callable[..., MailboxConfig],
) -> None:
    ca, us = mailbox_config("billing-ca", "CA"), mailbox_config("billing-us", "US", security="tls")
    for name, expected in EXPECTED.items():
        dovecot.deliver("billing-ca" if expected["to"] == "ca" else "billing-us", (DATA / name).read_bytes())
    dovecot.deliver("billing-ca", b"\x00\x01\x02 garbage, not a message \xff")
    processor = Processor(mail_settings, sessions, base_context)  # large enough batches: read by reader processes
    before = counts(sessions)
    handled = 0
    try:
        for config in (ca, us):
            mailbox = connected(config)
            handled += process_imap(mailbox, processor)
            assert mailbox.unhandled() == []  # everything flagged, the garbage too (as quarantined)
            mailbox.close()
    finally:
        processor.close()
    assert handled == len(EXPECTED) + 1
    after = counts(sessions)
    customers = [e for e in EXPECTED.values() if e["automated"] is None]
    assert after["tickets"] - before["tickets"] == len(customers)
    assert after["forwards"] - before["forwards"] == sum(1 for e in customers if e["misroute"] in ("to_us", "to_ca"))
    # A second pass finds nothing to do.
    for config in (ca, us):
        mailbox = connected(config)
        assert process_imap(mailbox, processor) == 0
        mailbox.close()
    # Acknowledgements go out through the SMTP server, in the customer's language, with the loop-safe headers.
    delivered_before = len(smtp.recorder.messages)
    transport = SmtpTransport(SmtpConfig(host="127.0.0.1", port=smtp.port, security="plain"))
    sent = send_pending(sessions, transport, limit=500)
    # (On the PostgreSQL store other tests share, mail they left pending may be due now too: only ours count.)
    ours = {mid for name in EXPECTED for mid in message_ids((DATA / name).read_bytes().decode("latin-1"))}
    acks = [m for m in smtp.recorder.wait_for(delivered_before + sent)[delivered_before:]
            if "ack-" in m[2]["Message-ID"] and m[2]["In-Reply-To"] in ours]
    assert len(acks) == after["acks"] - before["acks"] == sum(1 for e in customers if e["acknowledge"])
    for _, recipients, message in acks:
        assert message["Auto-Submitted"] == "auto-replied" and message["X-Auto-Response-Suppress"] == "All"
        assert message["X-Billing-Loop"] and message["In-Reply-To"] and message["In-Reply-To"] in message["References"]
        original = next(name for name in EXPECTED if message["In-Reply-To"].encode() in (DATA / name).read_bytes())
        french = "Nous avons bien reçu votre message" in message.get_content()
        assert french == (EXPECTED[original]["language"] == "fr"), original
        assert recipients[0] not in ("billing@net2phone.ca", "billing@net2phone.com")
    with sessions() as session:
        texts = session.execute(sa.select(TicketMessage.text)).scalars().all()
    for card in ("4111111111111111", "5555555555554444", "378282246310005"):
        assert not any(card in text.replace(" ", "").replace("-", "") for text in texts)


def test_a_new_mail_is_acknowledged_while_the_daemon_idles(
    dovecot: Dovecot, smtp: SmtpServer, sessions: sessionmaker[Session], base_context: TriageContext,
    mail_settings: Settings, mailbox_config: Callable[..., MailboxConfig],
) -> None:
    config = mailbox_config("billing-ca", "CA")
    daemon = Daemon(mail_settings, MailroomConfig((config,), SmtpConfig("127.0.0.1", smtp.port, "plain")), sessions,
                    base_context)
    daemon.start()
    try:
        sender = f"idle-{uuid.uuid4().hex[:6]}@example.ca"
        assert daemon.idling[config.name].wait(timeout=60)  # the daemon waits in IDLE: no polling brings the mail
        dovecot.deliver("billing-ca", make_mail(sender, "Paiement en attente", "Mon paiement est en attente depuis hier."))
        received = smtp.recorder.wait_for(len(smtp.recorder.messages) + 1, timeout=60)
        assert any(sender in recipients for _, recipients, _ in received)
    finally:
        daemon.stop.set()
        daemon.join()


def test_a_connection_dropped_mid_fetch_loses_nothing_and_duplicates_nothing(
    dovecot: Dovecot, sessions: sessionmaker[Session], base_context: TriageContext, mail_settings: Settings,
    mailbox_config: Callable[..., MailboxConfig],
) -> None:
    proxy = CuttingProxy(dovecot.port)
    config = mailbox_config("billing-us", "US", security="plain", port=proxy.port)
    for number in range(40):
        dovecot.deliver("billing-us", make_mail(f"drop-{number}@example.com", f"Invoice {number}",
                                                f"Question {number} about invoice INV-2026{number:02d}", to="billing@net2phone.com"))
    proxy.arm(after_bytes=8_000)  # the first connection dies in the middle of the first FETCH
    daemon = Daemon(mail_settings, MailroomConfig((config,), None), sessions, base_context)
    before = counts(sessions)["inbound"]
    daemon.start()
    try:
        deadline = time.monotonic() + 90
        while counts(sessions)["inbound"] - before < 40 and time.monotonic() < deadline:
            time.sleep(0.2)  # waiting for the daemon to reconnect and finish
    finally:
        daemon.stop.set()
        daemon.join()
        proxy.close()
    assert proxy.cuts == 1
    with sessions() as session:
        rows = session.execute(sa.text("SELECT uid, count(*) FROM inbound_mail WHERE mailbox = :m GROUP BY uid"),
                               {"m": config.name}).all()
    assert len(rows) == 40 and all(count == 1 for _, count in rows)


def run_mailroom_once(tmp: Path, database_url: str, config: MailboxConfig, crash_at: str | None) -> int:
    (tmp / "mailroom.yml").write_text(yaml.safe_dump({"mailboxes": [{
        "name": config.name, "team": config.team, "host": config.host, "port": config.port,
        "security": config.security, "username": config.username, "password_env": "TEST_IMAP_PASSWORD",
        "ca_file": config.ca_file,
    }]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLING_")}
    env.update(BILLING_VAR_DIR=str(tmp), DATABASE_URL=database_url, BILLING_MAILROOM_CONFIG=str(tmp / "mailroom.yml"),
               TEST_IMAP_PASSWORD=config.password or "", BILLING_AUTH_SECRET=TEST_SECRET,
               BILLING_MAIL_BATCH="2")  # six messages in three batches: crashes land between batches too
    if crash_at:
        env["BILLING_MAILROOM_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-m", "mailroom", "once"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, timeout=300).returncode


# Killed while the second batch is written (its first batch committed and flagged), between the second batch's
# commit and its flag, and between the first batch's flag and the checkpoint.
@pytest.mark.parametrize("crash_at", ["before_commit:3", "after_commit:2", "after_flag:1"])
def test_a_killed_mailroom_restarts_without_duplicates_or_losses(
    dovecot: Dovecot, database_url: str, sessions: sessionmaker[Session], tmp_path: Path,
    mailbox_config: Callable[..., MailboxConfig], crash_at: str,
) -> None:
    config = mailbox_config("billing-ca", "CA")
    for number in range(6):
        dovecot.deliver("billing-ca", make_mail(f"kill-{uuid.uuid4().hex[:6]}@example.ca", f"Crédit {number}",
                                                f"Bonjour, je ne vois pas mon crédit numéro {number}."))
    before = counts(sessions)
    assert run_mailroom_once(tmp_path, database_url, config, crash_at) == -9  # SIGKILL
    assert run_mailroom_once(tmp_path, database_url, config, None) == 0
    after = counts(sessions)
    assert (after["tickets"] - before["tickets"], after["acks"] - before["acks"]) == (6, 6)
    mailbox = connected(config)
    assert mailbox.unhandled() == []
    mailbox.close()


def test_an_oauth2_mailbox_logs_in_with_its_token_and_a_refused_token_stops_nothing_else(
    dovecot: Dovecot, database_url: str, sessions: sessionmaker[Session], tmp_path: Path,
    mailbox_config: Callable[..., MailboxConfig],
) -> None:
    config = mailbox_config("billing-us", "US", security="tls")
    token = dovecot.issuer.issue("billing-us")
    sender = f"oauth-{uuid.uuid4().hex[:6]}@example.com"
    dovecot.deliver("billing-us", make_mail(sender, "Invoice copy", "Could I get a copy of my March invoice?",
                                            to="billing@net2phone.com"))
    (tmp_path / "mailroom.yml").write_text(yaml.safe_dump({"mailboxes": [{
        "name": config.name, "team": "US", "host": config.host, "port": config.port, "security": "tls",
        "username": "billing-us", "oauth2_token_env": "TEST_IMAP_TOKEN", "ca_file": config.ca_file,
    }]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLING_")}
    env.update(BILLING_VAR_DIR=str(tmp_path), DATABASE_URL=database_url, BILLING_AUTH_SECRET=TEST_SECRET,
               BILLING_MAILROOM_CONFIG=str(tmp_path / "mailroom.yml"), TEST_IMAP_TOKEN=token)
    result = subprocess.run([sys.executable, "-m", "mailroom", "once"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    with sessions() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(Ticket)
                               .where(Ticket.customer_email == sender, Ticket.team == "US")).scalar_one() == 1
    refused = ImapMailbox(replace(config, password=None, oauth2_token="not-a-token-we-issued"),
                          ssl_context_for(config), timeout=20)
    with pytest.raises(TransientMailError, match="connecting"):
        refused.connect()
    refused.close()
