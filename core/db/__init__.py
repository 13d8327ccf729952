"""The one shared store: SQLAlchemy models, engine and sessions, Alembic migrations.

SQLite file by default, PostgreSQL in production (``DATABASE_URL``). Rasa's tracker store lives in the same
database (its own ``events`` table, created by Rasa).
"""
