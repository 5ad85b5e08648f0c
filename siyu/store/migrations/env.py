"""Alembic environment: uses the engine handed over by ``siyu.store.migrate``."""

from __future__ import annotations

from alembic import context

from siyu.store.registry import load_metadata

target_metadata = load_metadata()
engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
