"""Alembic environment: migrates the shared store at the URL given by ``core.db.migrate``."""

from __future__ import annotations

from typing import Any

from alembic import context

from core.db.engine import make_engine
from core.db.models import Base

# Tables other programs own in the same database (Rasa's tracker store): never touched by our migrations.
FOREIGN_TABLES = frozenset({"events"})


def include_object(obj: Any, name: str | None, type_: Any, reflected: bool, compare_to: Any) -> bool:
    """Keep autogenerate away from tables that are not ours."""
    return not (type_ == "table" and name in FOREIGN_TABLES)


def run_migrations() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(str(url))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            include_object=include_object,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
