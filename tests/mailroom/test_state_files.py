"""Every run-time file a later start of the mailroom reads: a damaged one is detected and rebuilt, never a reason
to stop starting (the mail topic model's cache, the local outbox's .eml files); the store's schema is never left
half migrated by a kill."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.db.engine import make_engine
from core.db.migrate import include_object, upgrade
from core.db.models import Base
from core.files import TEMPORARY_PREFIX
from core.knowledge import Article
from core.settings import PROJECT_ROOT
from core.topics import MODEL_ARRAYS, MODEL_META
from mailroom.outbox import FolderTransport
from mailroom.topics import MailTopics


@pytest.mark.parametrize("damage", ["truncated", "empty", "json cut short"])
def test_a_damaged_topic_model_cache_is_trained_again_not_a_crash_loop(
    articles: dict[str, Article], tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str,
) -> None:
    some = [articles["payment_methods"], articles["cdr_export"]]  # a small model: the same code, trained fast
    good = MailTopics.load_or_train(some, tmp_path)
    [folder] = tmp_path.iterdir()
    arrays, meta = folder / MODEL_ARRAYS, folder / MODEL_META
    if damage == "truncated":  # what a kill in the middle of the old in-place write left
        arrays.write_bytes(arrays.read_bytes()[:1000])
    elif damage == "empty":
        arrays.write_bytes(b"")
    else:
        meta.write_text(meta.read_text()[:50])
    with caplog.at_level(logging.WARNING, logger="mailroom.topics"):
        again = MailTopics.load_or_train(some, tmp_path)
    assert any("damaged" in record.getMessage() for record in caplog.records)
    text = "quelles cartes de crédit acceptez-vous?"
    assert again.classify("Cartes", text).queue == good.classify("Cartes", text).queue == "payments"
    assert MailTopics.load_or_train(some, tmp_path) is not None  # and now the cache is whole again
    assert not [p for p in folder.iterdir() if p.name.startswith(TEMPORARY_PREFIX)]


def test_a_mail_sent_again_after_a_crash_lands_on_its_own_file_in_the_local_outbox(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    folder.mkdir()
    stale = folder / f"{TEMPORARY_PREFIX}x.eml.123"
    stale.write_bytes(b"half a mail")
    os.utime(stale, (time.time() - 3600,) * 2)
    transport = FolderTransport(folder)  # a start clears what a killed writer left
    raw = b"Message-ID: <ack-BL-2345AB-1@billing.net2phone.ca>\r\nSubject: Re: [BL-2345AB]\r\n\r\nBonjour\r\n"
    transport.send("billing@net2phone.ca", "Client@Example.ca", raw)
    transport.send("billing@net2phone.ca", "Client@Example.ca", raw)  # the message in doubt, sent again
    transport.send("billing@net2phone.ca", "client@example.ca", raw.replace(b"-1@", b"-2@"))
    files = sorted(folder.iterdir())
    assert len(files) == 2 and all(path.suffix == ".eml" for path in files)
    assert raw in [path.read_bytes() for path in files]


def test_a_migration_killed_at_any_moment_leaves_a_store_the_next_start_migrates(tmp_path: Path) -> None:
    database = tmp_path / "billing.db"
    url = f"sqlite:///{database}"
    script = "from core.db.migrate import upgrade; import sys; upgrade(sys.argv[1])"
    rng = random.Random(8)
    kills = 0
    for _ in range(12):
        database.unlink(missing_ok=True)
        process = subprocess.Popen([sys.executable, "-c", script, url], cwd=PROJECT_ROOT, start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not database.exists() and process.poll() is None:
            time.sleep(0.002)  # watching for the migration to begin writing
        time.sleep(rng.uniform(0.0, 0.2))  # the moment of the kill within the migration, not a wait for a result
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            kills += 1
        process.wait()
        upgrade(url)  # the next start
        engine = make_engine(url)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"include_object": include_object})
            assert compare_metadata(context, Base.metadata) == []
        engine.dispose()
    assert kills >= 6
