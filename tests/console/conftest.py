"""Fixtures of the console tests: the application on a real store (SQLite and PostgreSQL), agents of each team
with known passwords, signed-in clients, and tickets."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from console import create_app
from core.agents import create_agent
from core.db.engine import make_engine, make_session_factory, unit_of_work
from core.db.models import Ticket, TicketMessage, priority_rank
from core.references import TICKET_PREFIX
from core.db.models import new_reference
from core.settings import Settings
from core.demo import seed
from tests.conftest import DEMO_TODAY, TEST_SECRET

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class StaffAccount:
    id: int
    email: str
    name: str
    password: str


@pytest.fixture
def console_settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(var_dir=tmp_path / "var", database_url=database_url, auth_secret=TEST_SECRET)


@pytest.fixture
def app(console_settings: Settings, factory: sessionmaker[Session]) -> Iterator[Flask]:
    built = create_app(console_settings, {"TESTING": True})
    yield built
    built.extensions["billing"].close()  # its threads stop before the test's store is dropped


@pytest.fixture
def factory(database_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on the test's store, which holds the demo accounts."""
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    seed(sessions, DEMO_TODAY)  # (a no-op where they are already)
    yield sessions
    engine.dispose()


@pytest.fixture
def make_agent(factory: sessionmaker[Session]) -> Callable[..., StaffAccount]:
    """An agent with a unique email (the PostgreSQL store is shared by the tests) and a known password."""
    def make(team: str = "CA", role: str = "agent", name: str | None = None, ui_language: str = "en") -> StaffAccount:
        email = f"agent-{uuid.uuid4().hex[:8]}@net2phone.ca"
        label = name or f"Agent {team} {uuid.uuid4().hex[:4]}"
        with unit_of_work(factory) as session:
            agent, _ = create_agent(session, email, label, team, role, "en,fr", ui_language=ui_language,
                                    password=PASSWORD)
            agent_id = int(agent.id)
        return StaffAccount(agent_id, email, label, PASSWORD)
    return make


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html) or \
        re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


class Agent:
    """A browser-less signed-in agent: a test client that carries its session and CSRF token."""

    def __init__(self, client: FlaskClient, agent: StaffAccount) -> None:
        self.client = client
        self.agent = agent
        self.csrf = ""

    def sign_in(self) -> Agent:
        page = self.client.get("/login")
        response = self.client.post("/login", data={"email": self.agent.email, "password": self.agent.password,
                                                    "csrf_token": csrf_of(page.text)})
        assert response.status_code == 302, response.text
        self.csrf = csrf_of(self.client.get("/").text)
        return self

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, **kwargs)

    def post(self, url: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self.client.post(url, data={**(data or {}), "csrf_token": self.csrf}, **kwargs)


@pytest.fixture
def signed_in(app: Flask) -> Callable[[StaffAccount], Agent]:
    return lambda agent: Agent(app.test_client(), agent).sign_in()


@pytest.fixture
def make_ticket(factory: sessionmaker[Session]) -> Callable[..., int]:
    """A ticket with one customer mail; returns its id."""
    def make(team: str = "CA", language: str = "fr", subject: str = "Carte refusée", queue: str = "payments",
             text: str = "Bonjour, ma carte est refusée dans le portail.", priority: str = "normal",
             customer: str | None = None, misroute: str = "none", status: str = "new", **fields: Any) -> int:
        with unit_of_work(factory) as session:
            ticket = Ticket(reference=new_reference(TICKET_PREFIX), team=team, mailbox=team.lower(), queue=queue,
                            priority=priority, priority_rank=priority_rank(priority), language=language,
                            status=status, subject=subject,
                            customer_email=customer or f"client-{uuid.uuid4().hex[:6]}@example.ca",
                            customer_name="Client Test", misroute=misroute, misroute_confidence=0.7,
                            misroute_reasons=["misroute: a Texas address"] if misroute != "none" else [], **fields)
            session.add(ticket)
            session.flush()
            session.add(TicketMessage(ticket_id=ticket.id, direction="in", kind="mail",
                                      message_id=f"<{uuid.uuid4().hex}@example.ca>", from_address=ticket.customer_email,
                                      to_addresses="billing@net2phone.ca", subject=subject, text=text,
                                      language=language))
            return int(ticket.id)
    return make
