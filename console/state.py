"""What the console builds once per process (the store's engine, the suggester, the live hub) and the database
session of each request.

One session per request (``db()``): a request that changed something is committed before its response leaves
(``commit_request``, an ``after_request`` hook, so a failed commit is a failed request, never a page that says
"done"); any other outcome is rolled back when the request ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, g
from sqlalchemy.orm import Session, sessionmaker

from console.bot_client import ClaimWatch
from console.counts import CountsCache
from console.hub import LiveHub
from core.activity import on_commit
from core.db.engine import make_engine, make_session_factory
from core.db.migrate import upgrade
from core.knowledge import Article, load_articles
from core.settings import Settings
from core.suggest import Suggester
from core.ticket_actions import Mailer


@dataclass
class ConsoleState:
    settings: Settings
    factory: sessionmaker[Session]
    suggester: Suggester
    mailer: Mailer
    hub: LiveHub
    articles: dict[str, Article]
    counts: CountsCache
    claim_watch: ClaimWatch

    @classmethod
    def build(cls, settings: Settings) -> ConsoleState:
        upgrade(settings.database_url)  # a replica may start first: the schema is migrated by whoever is first
        engine = make_engine(settings.database_url)
        factory = make_session_factory(engine)
        articles = load_articles(settings.knowledge_dir)
        hub = LiveHub(factory, engine.dialect.name)
        on_commit(factory, hub.ring)
        return cls(settings, factory, Suggester(articles), Mailer(settings, settings.signing_secret()),
                   hub, {a.id: a for a in articles}, CountsCache(factory),
                   ClaimWatch(factory, settings))

    def close(self) -> None:
        """Stop the threads and release the store's connections (an application being discarded)."""
        self.hub.stop()
        self.claim_watch.stop()
        self.factory.kw["bind"].dispose()


def state() -> ConsoleState:
    """The current application's state."""
    built: ConsoleState = current_app.extensions["billing"]
    return built


def db() -> Session:
    """This request's database session."""
    if "db" not in g:
        g.db = state().factory()
    session: Session = g.db
    return session


def commit_request(response: Response) -> Response:
    session: Session | None = g.get("db")
    if session is not None and response.status_code < 400:
        session.commit()
    return response


def close_request(error: BaseException | None) -> None:
    session: Session | None = g.pop("db", None)
    if session is not None:
        session.rollback()
        session.close()


def install(app: Flask) -> None:
    app.after_request(commit_request)
    app.teardown_request(close_request)


def settings() -> Any:
    return state().settings
