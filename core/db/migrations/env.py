"""Alembic environment: migrates the shared store at the URL given by ``core.db.migrate``."""

from __future__ import annotations

from alembic import context

from core.db.engine import make_engine
from core.db.migrate import include_object
from core.db.models import Base


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
