"""What the actions need at run time, built once on first use (never at import).

rasa-sdk instantiates action classes without arguments, so production actions reach their dependencies through
``get_services()``; tests pass their own ``Services`` (a test database, a folder of articles) to the action's
constructor instead.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy.orm import sessionmaker

from core.db.engine import make_engine, make_session_factory
from core.knowledge import Article, load_articles
from core.settings import Settings


@dataclass(frozen=True)
class Services:
    """Dependencies of the actions.

    Attributes:
        settings: the process settings.
        sessions: factory of database sessions on the shared store.
        articles: the knowledge base by article id.
    """

    settings: Settings
    sessions: sessionmaker
    articles: dict[str, Article]

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        """Connect to the database and load the articles named by ``settings``."""
        sessions = make_session_factory(make_engine(settings.database_url))
        articles = {article.id: article for article in load_articles(settings.knowledge_dir)}
        return cls(settings, sessions, articles)


_lock = threading.Lock()
_services: Services | None = None


def get_services() -> Services:
    """The process-wide services, built from the environment on first call."""
    global _services
    with _lock:
        if _services is None:
            _services = Services.from_settings(Settings.from_env())
        return _services
