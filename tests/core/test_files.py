"""Run-time files written so that a crash leaves the old content or the new, never half of one, and the
development signing secret, which a crash must not leave empty and nobody's edit may silently replace."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from core.errors import ConfigurationError
from core.files import TEMPORARY_PREFIX, create_atomic, remove_stale_temporaries, write_atomic
from core.settings import Settings


def test_write_atomic_replaces_the_whole_file_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "state" / "run.pid"
    write_atomic(path, "123\n")
    write_atomic(path, b"4567\n", mode=0o600)
    assert path.read_text() == "4567\n" and (path.stat().st_mode & 0o777) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["run.pid"]


def _create(path: str, value: str, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    results.put(create_atomic(Path(path), value))


def test_of_processes_creating_one_file_at_once_exactly_one_wins_and_all_read_its_content(tmp_path: Path) -> None:
    path = tmp_path / "auth_secret"
    results: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    workers = [multiprocessing.Process(target=_create, args=(str(path), f"value-{n}" * 8, results)) for n in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    won = [results.get() for _ in workers]
    assert won.count(True) == 1
    assert path.read_text().startswith("value-") and len(path.read_text()) == len("value-0" * 8)
    assert [p.name for p in tmp_path.iterdir()] == ["auth_secret"]


def test_what_a_killed_writer_left_is_cleared_once_it_is_old(tmp_path: Path) -> None:
    stale, fresh = tmp_path / f"{TEMPORARY_PREFIX}model.npz.abc", tmp_path / f"{TEMPORARY_PREFIX}model.npz.def"
    stale.write_bytes(b"half a mod")
    fresh.write_bytes(b"being written")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    (tmp_path / "kept.eml").write_text("a real file")
    assert remove_stale_temporaries(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["kept.eml", fresh.name])


def test_the_development_secret_is_created_once_and_kept(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    first = settings.signing_secret()
    assert len(first) >= 32 and settings.signing_secret() == first
    assert ((tmp_path / "auth_secret").stat().st_mode & 0o777) == 0o600


def test_an_empty_secret_left_by_an_interrupted_start_is_generated_again(tmp_path: Path) -> None:
    (tmp_path / "auth_secret").write_text("")
    secret = Settings(var_dir=tmp_path).signing_secret()
    assert len(secret) >= 32 and (tmp_path / "auth_secret").read_text().strip() == secret


@pytest.mark.parametrize("content", [b"short", b"\xff\xfe not text at all \x00"])
def test_a_damaged_secret_is_refused_with_what_to_do(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "auth_secret").write_bytes(content)
    with pytest.raises(ConfigurationError, match="BILLING_AUTH_SECRET.*delete the file"):
        Settings(var_dir=tmp_path).signing_secret()
    assert (tmp_path / "auth_secret").read_bytes() == content  # never replaced behind anyone's back
