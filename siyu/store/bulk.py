"""Bulk writes of Arrow tables into the operational store, per dialect.

The ORM (and even Core executemany with type processing) spends far more time per row than
the database does. For large derived tables (identifiers, people) we write columns straight
through the driver: PostgreSQL's COPY, SQLite's executemany with values already in the
storage format SQLAlchemy reads back, many rows per statement.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection, Table, func, select
from sqlalchemy.orm import Session

from siyu.store.base import Base

CHUNK_ROWS = 50_000
# SQLite binds at most 999 parameters per statement in older builds; stay under that.
SQLITE_MAX_PARAMS = 999
# Below this many rows, rebuilding secondary indexes costs more than it saves.
REBUILD_INDEXES_ROWS = 50_000
# Page cache for one large SQLite insert (KiB), so a growing index stays in memory instead of
# being evicted to the write-ahead log and read back again and again.
SQLITE_BULK_CACHE_KIB = 1_048_576


def bulk_insert(session: Session, table_name: str, data: pa.Table) -> None:
    """Insert every row of ``data`` into ``table_name`` in the session's transaction.

    Table and column names must be declared in the models (checked), so the statement text
    below is built from our own identifiers only.
    """
    if data.num_rows == 0:
        return
    table = Base.metadata.tables[table_name]
    unknown = set(data.column_names) - set(table.columns.keys())
    if unknown:
        raise ValueError(f"{table_name} has no columns {sorted(unknown)}")
    connection = session.connection()
    names = ", ".join(f'"{name}"' for name in data.column_names)
    if connection.dialect.name == "postgresql":
        driver: Any = connection.connection.driver_connection  # a psycopg Connection
        copy_sql = f'COPY "{table.name}" ({names}) FROM STDIN'
        with driver.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for batch in data.to_batches(CHUNK_ROWS):
                for row in zip(*(column.to_pylist() for column in batch.columns), strict=True):
                    copy.write_row(row)
        return
    columns = [_sqlite_storage(column) for column in data.columns]
    width = len(columns)
    per_statement = max(1, SQLITE_MAX_PARAMS // width)
    one = "(" + ", ".join("?" for _ in columns) + ")"
    insert = f'INSERT INTO "{table.name}" ({names}) VALUES '  # noqa: S608
    sqlite: Any = connection.connection.driver_connection  # a sqlite3 Connection
    with _sqlite_bulk_mode(connection, table, data.num_rows):
        for start in range(0, data.num_rows, CHUNK_ROWS):
            values = np.empty((min(CHUNK_ROWS, data.num_rows - start), width), dtype=object)
            for i, column in enumerate(columns):
                values[:, i] = column.slice(start, CHUNK_ROWS).to_pylist()
            whole = len(values) // per_statement * per_statement
            if whole:
                sqlite.executemany(
                    insert + ", ".join([one] * per_statement),
                    values[:whole].reshape(-1, per_statement * width).tolist(),
                )
            if whole < len(values):
                sqlite.executemany(insert + one, values[whole:].tolist())


def _sqlite_storage(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Timestamps as the text SQLAlchemy stores in SQLite (UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``);
    Arrow's cast to text writes exactly that for naive microsecond timestamps."""
    if pa.types.is_timestamp(column.type):
        return column.cast(pa.timestamp("us")).cast(pa.string())
    return column


@contextmanager
def _sqlite_bulk_mode(connection: Connection, table: Table, rows: int) -> Iterator[None]:
    """A large page cache for the insert and, when the insert at least doubles the table,
    its secondary indexes dropped and built again afterwards (one sort instead of a random
    B-tree insert per row). Both are undone before returning, inside the same transaction,
    so durability and the schema at commit are unchanged."""
    previous_cache = connection.exec_driver_sql("PRAGMA cache_size").scalar_one()
    connection.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_BULK_CACHE_KIB}")
    rebuilt = []
    if rows >= REBUILD_INDEXES_ROWS:
        existing = connection.execute(select(func.count()).select_from(table)).scalar_one()
        if rows > existing:
            rebuilt = [index for index in table.indexes if not index.unique]
    try:
        for index in rebuilt:
            index.drop(connection)
        yield
        for index in rebuilt:
            index.create(connection)
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {int(previous_cache)}")
