"""Signing in and out: throttled, sessions the server ends, cookies that scripts cannot read, a new session at
each sign-in, a password change that signs out the other sessions, the console in the agent's language."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from core.db.models import AgentSession
from tests.console.conftest import Agent, StaffAccount, csrf_of


def sign_in(app: Flask, email: str, password: str, address: str = "192.0.2.10") -> int:
    client = app.test_client()
    environ = {"REMOTE_ADDR": address}
    page = client.get("/login", environ_base=environ)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
                       environ_base=environ).status_code


def test_the_sign_in_page_speaks_each_language(app: Flask) -> None:
    client = app.test_client()
    assert "Sign in" in client.get("/login?lang=en").text
    french = client.get("/login?lang=fr").text
    assert 'lang="fr"' in french and "Se connecter" in french and "Mot de passe" in french
    assert "Se connecter" in app.test_client().get("/login", headers={"Accept-Language": "fr-CA,fr;q=0.9"}).text


def test_a_wrong_password_is_refused_and_the_right_one_opens_a_new_session(
    app: Flask, make_agent: Callable[..., StaffAccount], factory: sessionmaker[Session],
) -> None:
    agent = make_agent()
    client = app.test_client()
    page = client.get("/login")
    before = client.get_cookie("billing_console")
    refused = client.post("/login", data={"email": agent.email, "password": "nope", "csrf_token": csrf_of(page.text)})
    assert refused.status_code == 401 and "Wrong email or password" in refused.text
    signed = client.post("/login", data={"email": agent.email.upper(), "password": agent.password,
                                         "csrf_token": csrf_of(page.text)})
    assert signed.status_code == 302
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "billing_console=" in cookie
    assert before is None or client.get_cookie("billing_console").value != before.value
    with factory() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(AgentSession)
                               .where(AgentSession.agent_id == agent.id, AgentSession.ended_at.is_(None))).scalar_one() == 1
    assert client.get("/").status_code == 200


def test_twenty_wrong_passwords_lock_the_account_and_the_address(
    app: Flask, make_agent: Callable[..., StaffAccount],
) -> None:
    victim, bystander = make_agent(), make_agent()
    statuses = [sign_in(app, victim.email, f"guess-{n}", "198.51.100.7") for n in range(20)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    assert sign_in(app, victim.email, victim.password, "198.51.100.7") == 429  # the right password, too late
    assert sign_in(app, victim.email, victim.password, "203.0.113.99") == 429  # the account, from anywhere
    assert sign_in(app, bystander.email, bystander.password, "198.51.100.7") == 429  # the address, for anyone
    assert sign_in(app, bystander.email, bystander.password, "203.0.113.98") == 302
    client = app.test_client()
    page = client.get("/login", environ_base={"REMOTE_ADDR": "198.51.100.7"})
    locked = client.post("/login", data={"email": victim.email, "password": "x", "csrf_token": csrf_of(page.text)},
                         environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert "try again in" in locked.text


def test_signing_out_ends_the_session_for_good(app: Flask, make_agent: Callable[..., StaffAccount],
                                               signed_in: Callable[[StaffAccount], Agent]) -> None:
    agent = signed_in(make_agent())
    stolen = agent.client.get_cookie("billing_console").value
    assert agent.post("/logout").status_code == 302
    thief = app.test_client()
    thief.set_cookie("billing_console", stolen)
    assert thief.get("/").status_code == 302  # the same cookie, replayed: the session is over


def test_a_session_idle_too_long_is_over(make_agent: Callable[..., StaffAccount],
                                         signed_in: Callable[[StaffAccount], Agent],
                                         factory: sessionmaker[Session]) -> None:
    agent = signed_in(make_agent())
    with factory() as session:
        session.execute(sa.update(AgentSession).where(AgentSession.agent_id == agent.agent.id)
                        .values(last_seen_at=datetime.now(timezone.utc) - timedelta(hours=3)))
        session.commit()
    response = agent.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_changing_the_password_signs_out_the_other_sessions(
    app: Flask, make_agent: Callable[..., StaffAccount], signed_in: Callable[[StaffAccount], Agent],
) -> None:
    account = make_agent()
    laptop, phone = signed_in(account), signed_in(account)
    refused = laptop.post("/password", {"current": "wrong password!", "new": "a new password 2026", "confirm": "a new password 2026"})
    assert refused.status_code == 400
    changed = laptop.post("/password", {"current": account.password, "new": "a new password 2026",
                                        "confirm": "a new password 2026"})
    assert changed.status_code == 302
    assert laptop.get("/").status_code == 200 and phone.get("/").status_code == 302
    assert sign_in(app, account.email, account.password, "192.0.2.50") == 401
    assert sign_in(app, account.email, "a new password 2026", "192.0.2.50") == 302


def test_each_agent_has_the_console_in_their_language(make_agent: Callable[..., StaffAccount],
                                                      signed_in: Callable[[StaffAccount], Agent]) -> None:
    agent = signed_in(make_agent(ui_language="fr"))
    assert 'lang="fr"' in agent.get("/").text and "Dossiers" in agent.get("/").text
    assert agent.post("/language", {"language": "en", "next": "/"}).status_code == 302
    assert 'lang="en"' in agent.get("/").text
    again = signed_in(agent.agent)  # remembered for the next sign-in
    assert 'lang="en"' in again.get("/").text
    assert agent.post("/language", {"language": "de"}).status_code == 400
