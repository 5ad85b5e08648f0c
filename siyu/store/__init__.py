"""The operational store: SQLAlchemy 2 models, sessions, Alembic migrations.

SQLite (WAL, foreign keys on) by default; PostgreSQL through psycopg 3.
"""

from siyu.store.base import Base, TimestampMixin
from siyu.store.engine import Database, open_database

__all__ = ["Base", "Database", "TimestampMixin", "open_database"]
