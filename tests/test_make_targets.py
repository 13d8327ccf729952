"""The make targets that scripts read: `make -s demo-users` prints only JSON lines, `make -s token` only a token
that the store accepts, both on a store they migrate and seed themselves when it is empty."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from core.db.engine import make_engine, make_session_factory
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
