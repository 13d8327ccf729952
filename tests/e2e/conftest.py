"""The real stack (Rasa server, action server, mailroom, console: started as ``make run`` starts them) once per
database kind, its mailroom on two Dovecot mailboxes of its own and a real SMTP server."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from playwright.sync_api import Browser, Page

from core.agents import demo_agents, seed_demo_agents
from core.db.engine import make_engine, make_session_factory, unit_of_work
from core.db.migrate import upgrade
from core.demo import seed
from core.knowledge import load_articles
from core.settings import PROJECT_ROOT
from runner.harness import Stack, send, stack_environment
from tests.conftest import MAIL_USERS, TEST_SECRET, postgres_database
from tests.mailroom.servers import Dovecot, SmtpServer

_counter = itertools.count()


STACK_MAILBOXES = {"stack-ca": "CA", "stack-us": "US"}
# The stack's business hours (``var_dir/business_hours.yml``): open at any hour, so that the tests of live chat
# pass whenever they run; a test of the closed hours writes CLOSED there for its duration.
ALWAYS_OPEN = "timezone: America/Toronto\nhours:\n" + "".join(
    f"  {day}: ['00:00', '24:00']\n" for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                                                  "sunday"))
CLOSED = "timezone: America/Toronto\nhours: {}\n"


@pytest.fixture(scope="session")
def stack_smtp() -> Iterator[SmtpServer]:
    """The SMTP server the stack's mailroom sends through (its own: tests read what reached it)."""
    server = SmtpServer.start()
    yield server
    server.stop()


def _mailroom_config(var_dir: Path, dovecot: Dovecot, smtp: SmtpServer) -> Path:
    path = var_dir / "mailroom.yml"
    path.write_text(yaml.safe_dump({
        "mailboxes": [{"name": user, "team": team, "host": "127.0.0.1", "port": dovecot.port, "security": "starttls",
                       "username": user, "password_env": f"STACK_PW_{team}", "ca_file": str(dovecot.ca_file),
                       "poll_seconds": 2} for user, team in STACK_MAILBOXES.items()],
        "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "plain"},
    }))
    return path


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, trained_model: Path,
          dovecot: Dovecot, stack_smtp: SmtpServer) -> Iterator[Stack]:
    """The stack on a store of its own, migrated and seeded with the demo accounts as of today and the demo
    agents, as `make run` leaves it, with a known signing secret so that tests can mint tokens; its mailroom reads
    the Dovecot mailboxes stack-ca and stack-us and sends through ``stack_smtp``."""
    var_dir = tmp_path_factory.mktemp(f"stack-{request.param}")
    for user in STACK_MAILBOXES:
        for sub in ("new", "cur"):
            for path in (dovecot.maildir(user) / sub).iterdir():
                path.unlink()
    with ExitStack() as cleanup:
        if request.param == "sqlite":
            url = f"sqlite:///{var_dir / 'billing.db'}"
        else:
            url = cleanup.enter_context(postgres_database())
        upgrade(url)
        engine = make_engine(url)
        seed(make_session_factory(engine), date.today())
        with unit_of_work(make_session_factory(engine)) as session:
            seed_demo_agents(session, var_dir)
        engine.dispose()
        hours = var_dir / "business_hours.yml"
        hours.write_text(ALWAYS_OPEN, encoding="utf-8")
        env = stack_environment(
            var_dir, database_url=url, BILLING_MODEL_PATH=str(trained_model), BILLING_AUTH_SECRET=TEST_SECRET,
            BILLING_BUSINESS_HOURS_FILE=str(hours),
            BILLING_MAILROOM_CONFIG=str(_mailroom_config(var_dir, dovecot, stack_smtp)),
            STACK_PW_CA=MAIL_USERS["stack-ca"], STACK_PW_US=MAIL_USERS["stack-us"],
        )
        running = Stack(env).start()
        yield running
        assert running.stop() == 0, "the stack did not stop cleanly on Ctrl-C"


@pytest.fixture(scope="session")
def demo_agents_of() -> Any:
    """The demo agents of a stack (email, password, team, role, language), by team and language."""
    def agents(stack: Stack) -> list[dict[str, str]]:
        return demo_agents(stack.settings.var_dir)
    return agents


@pytest.fixture
def agents(stack: Stack, demo_agents_of: Callable[[Stack], list[dict[str, str]]]) -> dict[str, dict[str, str]]:
    """The stack's demo agents by a short name: ca_en, ca_fr, us, supervisor."""
    found = {}
    for agent in demo_agents_of(stack):
        key = "supervisor" if agent["role"] == "supervisor" else ("us" if agent["team"] == "US" else f"ca_{agent['language']}")
        found[key] = agent
    return found


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[[], Page]]:
    contexts = []

    def make() -> Page:
        context = browser.new_context(viewport={"width": 1400, "height": 950})
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
        return page
    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def database(stack: Stack) -> Iterator[sa.engine.Engine]:
    engine = sa.create_engine(stack.settings.database_url, future=True)
    yield engine
    engine.dispose()


class Responses:
    """The texts the assistant may send, by response name and language (from domain.yml and the articles)."""

    def __init__(self) -> None:
        self.texts: dict[tuple[str, str], list[str]] = {}
        responses = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))["responses"]
        for name, variations in responses.items():
            for variation in variations:
                language = "fr" if variation.get("condition") else "en"
                self.texts.setdefault((name, language), []).append(" ".join(variation["text"].split()))
        for article in load_articles(PROJECT_ROOT / "knowledge"):
            for language, answer in article.answer.items():
                self.texts[(article.response, language)] = [answer]

    def name_of(self, text: str, language: str) -> str | None:
        """Which response (in ``language``) ``text`` is; placeholders such as {reference} match anything."""
        text = " ".join(text.split())
        for (name, lang), candidates in self.texts.items():
            if lang != language:
                continue
            for candidate in candidates:
                pattern = re.escape(candidate)
                pattern = re.sub(r"\\\{\w+\\\}", ".+", pattern)
                if re.fullmatch(pattern, text):
                    return name
        return None


@pytest.fixture(scope="session")
def responses() -> Responses:
    return Responses()


class Chat:
    """One conversation over the REST channel."""

    def __init__(self, stack: Stack, responses: Responses) -> None:
        self.stack = stack
        self.responses = responses
        self.sender = f"e2e-{next(_counter)}-{id(self)}"

    def say(self, text: str, metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return send(self.stack.rest_url, self.sender, text, metadata)

    def names(self, text: str, language: str, metadata: dict[str, Any] | None = None) -> list[str | None]:
        """Send ``text``; the name of each reply, None for a reply that is not a response in ``language``."""
        return [self.responses.name_of(reply.get("text", ""), language) for reply in self.say(text, metadata)]


@pytest.fixture
def chat(stack: Stack, responses: Responses) -> Chat:
    return Chat(stack, responses)
