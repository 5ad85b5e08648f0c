"""Bulk writes of Arrow tables into the operational store, per dialect.

The ORM (and even Core executemany with type processing) spends far more time per row than
the database does. For large derived tables (identifiers, people) we write columns straight
through the driver: PostgreSQL's COPY, SQLite's executemany with values already in the
storage format SQLAlchemy reads back.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.orm import Session

from siyu.store.base import Base

SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S"  # Arrow renders microseconds for µs timestamps
CHUNK_ROWS = 50_000


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
    columns = [
        pc.strftime(column, SQLITE_DATETIME) if pa.types.is_timestamp(column.type) else column
        for column in data.columns
    ]
    marks = ", ".join("?" for _ in columns)
    statement = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'  # noqa: S608
    for start in range(0, data.num_rows, CHUNK_ROWS):
        rows = list(
            zip(*(column.slice(start, CHUNK_ROWS).to_pylist() for column in columns), strict=True)
        )
        connection.exec_driver_sql(statement, rows)
