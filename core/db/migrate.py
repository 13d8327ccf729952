"""Database migrations (Alembic) and their command line: ``python -m core.db.migrate [upgrade|current]``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

from core.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Tables other programs own in the same database (Rasa's tracker store): never touched by our migrations.
FOREIGN_TABLES = frozenset({"events"})


def include_object(obj: Any, name: str | None, type_: Any, reflected: bool, compare_to: Any) -> bool:
    """Keep autogenerate and schema comparison away from tables that are not ours."""
    return not (type_ == "table" and name in FOREIGN_TABLES)


def alembic_config(url: str) -> Config:
    """An Alembic configuration for the store at ``url`` (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the store at ``url`` to ``revision`` (creates the SQLite file if needed)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Take the store at ``url`` back to ``revision`` ("base": empty)."""
    command.downgrade(alembic_config(url), revision)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    action = args[0] if args else "upgrade"
    settings = Settings.from_env()
    if action == "upgrade":
        upgrade(settings.database_url)
    elif action == "current":
        command.current(alembic_config(settings.database_url), verbose=True)
    else:
        print(f"unknown action {action!r}; expected upgrade or current", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
