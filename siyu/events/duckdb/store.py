"""The embedded default: events in one DuckDB file."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import ibis
import ibis.expr.operations as ops
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siyu.core.errors import EventStoreCorruptError, EventStoreError, EventStoreLockedError
from siyu.core.i18n import N_
from siyu.events.base import AppendResult, EventStore, check_table_name, conform, first_of_each_id
from siyu.events.id_index import IdHashIndex
from siyu.events.schema import EVENTS_SCHEMA, JSON_COLUMNS

_DUCKDB_TYPES = {
    pa.string(): "VARCHAR",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
    pa.decimal128(18, 2): "DECIMAL(18,2)",
    pa.int32(): "INTEGER",
}


def events_ddl() -> str:
    columns = []
    for field in EVENTS_SCHEMA:
        sql_type = "JSON" if field.name in JSON_COLUMNS else _DUCKDB_TYPES[field.type]
        null = "" if field.nullable else " NOT NULL"
        columns.append(f'"{field.name}" {sql_type}{null}')
    return "CREATE TABLE IF NOT EXISTS events (" + ", ".join(columns) + ")"


def path_of(url: str) -> str:
    """The file a ``duckdb://`` URL names, absolute and canonical; or ``:memory:``.

    ``duckdb:///abs/events.duckdb`` and ``duckdb:////abs/events.duckdb`` (the SQLAlchemy
    spelling, which settings produce) both give ``/abs/events.duckdb``, ``duckdb://rel.duckdb``
    is relative to the working directory. One file has one spelling, so DuckDB never opens it
    twice in a process under two names.
    """
    rest = url.removeprefix("duckdb://")
    if rest in ("", "/:memory:", ":memory:"):
        return ":memory:"
    if rest.startswith("/"):
        rest = "/" + rest.lstrip("/")
    return str(Path(rest).expanduser().resolve())


class DuckDBEventStore(EventStore):
    DIALECT = "duckdb"

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        super().__init__(url)
        self.path = path_of(url)
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._index: IdHashIndex | None = None
        self._con = self._connect(read_only)
        try:
            self._con.execute("SET TimeZone = 'UTC'")
            self._con.execute("SET enable_progress_bar = false")
            if not read_only:
                self._con.execute(events_ddl())
        except duckdb.Error as exc:
            self._con.close()
            raise self._error(exc) from None

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            return duckdb.connect(self.path, read_only=read_only)
        except duckdb.Error as exc:
            raise self._error(exc) from None

    def _error(self, exc: BaseException) -> EventStoreError:
        reason = str(exc).strip().splitlines()[0]
        lowered = reason.lower()
        context: dict[str, Any] = {
            "setting": "SIYU_EVENTS_URL",
            "path": self.path,
            "reason": reason,
        }
        if "lock" in lowered:
            return EventStoreLockedError(
                N_("The event store {path} is in use by another process: {reason}"),
                hint=N_(
                    "Stop the other siyu process (server or command), "
                    "or point SIYU_EVENTS_URL elsewhere."
                ),
                **context,
            )
        if "not a valid duckdb" in lowered or "corrupt" in lowered or "checksum" in lowered:
            return EventStoreCorruptError(
                N_("The event store file {path} is damaged or not a DuckDB file: {reason}"),
                hint=N_(
                    "Move the file aside and restore a backup, "
                    "or run `siyu demo --reset` for demo data."
                ),
                **context,
            )
        return EventStoreError(
            N_("The event store {path} cannot be used: {reason}"),
            hint=N_("Check SIYU_EVENTS_URL and that the file and its directory are writable."),
            **context,
        )

    # -- reading ---------------------------------------------------------------------

    def _reader(self) -> Any:
        backend = getattr(self._local, "backend", None)
        if backend is None:
            backend = ibis.duckdb.from_connection(self._con.cursor())
            self._local.backend = backend
        return backend

    def table(self, name: str = "events") -> Any:
        try:
            return self._reader().table(check_table_name(name))
        except duckdb.Error as exc:
            raise self._error(exc) from None

    def has_table(self, name: str) -> bool:
        check_table_name(name)
        with self._con.cursor() as cursor:
            rows = cursor.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_name = ?", [name]
            )
            return rows.fetchone() is not None

    def count(self) -> int:
        with self._con.cursor() as cursor:
            row = cursor.execute("SELECT count(*) FROM events").fetchone()
        return int(row[0]) if row else 0

    def ping(self) -> None:
        try:
            with self._con.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM events LIMIT 1").fetchone()
        except duckdb.Error as exc:
            raise self._error(exc) from None

    # -- writing ---------------------------------------------------------------------

    def _id_index(self, cursor: duckdb.DuckDBPyConnection) -> IdHashIndex:
        if self._index is None:
            hashes = cursor.execute("SELECT hash(event_id) AS h FROM events").fetchnumpy()["h"]
            self._index = IdHashIndex(np.asarray(hashes, dtype=np.uint64))
        return self._index

    def append(self, events: pa.Table) -> AppendResult:
        received = events.num_rows
        batch = conform(events)
        if batch.num_rows == 0:
            return AppendResult(received=0, inserted=0, duplicates=0)
        cursor = self._con.cursor()
        skipped = None
        try:
            hashes = _id_hashes(cursor, batch)
            if len(np.unique(hashes)) < len(hashes):  # maybe repeated ids: settle it exactly
                batch = first_of_each_id(batch)
                hashes = _id_hashes(cursor, batch)
            with self._write_lock:
                index = self._id_index(cursor)
                candidates = index.contains(hashes)
                if candidates.any():
                    suspects = batch.filter(pa.array(candidates))
                    keep = ~self._stored(cursor, suspects)
                    if not keep.all():
                        skipped = suspects.column("event_id").filter(pa.array(~keep))
                    fresh = np.ones(batch.num_rows, dtype=bool)
                    fresh[np.flatnonzero(candidates)] = keep
                    batch, hashes = batch.filter(pa.array(fresh)), hashes[fresh]
                cursor.register("__batch", batch)
                cursor.execute("BEGIN TRANSACTION")
                cursor.execute("INSERT INTO events BY NAME SELECT * FROM __batch")
                cursor.execute("COMMIT")
                index.add(hashes)
        except duckdb.Error as exc:
            _rollback_quietly(cursor)
            raise self._error(exc) from None
        finally:
            cursor.close()
        return AppendResult(
            received=received,
            inserted=batch.num_rows,
            duplicates=received - batch.num_rows,
            skipped_ids=skipped,
        )

    @staticmethod
    def _stored(cursor: duckdb.DuckDBPyConnection, candidates: pa.Table) -> np.ndarray:
        """Which candidate rows' event ids are really stored (hash hits confirmed exactly)."""
        ids = candidates.select(["event_id"])
        cursor.register("__candidates", ids)
        stored = cursor.execute(
            "SELECT event_id FROM events WHERE event_id IN (SELECT event_id FROM __candidates)"
        ).fetchnumpy()["event_id"]
        cursor.unregister("__candidates")
        value_set = pa.array(np.asarray(stored, dtype=object), type=pa.string())
        return np.asarray(pc.is_in(ids.column("event_id"), value_set=value_set))

    def replace_table(self, name: str, data: pa.Table) -> None:
        check_table_name(name)
        if name == "events":
            raise EventStoreError(N_("The events table is append-only"), path=self.path)
        with self._write_lock:
            cursor = self._con.cursor()
            try:
                cursor.register("__data", data)
                cursor.execute("BEGIN TRANSACTION")
                # The name passed check_table_name ([a-z][a-z0-9_]*), so quoting it is safe.
                cursor.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM __data')  # noqa: S608
                cursor.execute("COMMIT")
                self.generation += 1
            except duckdb.Error as exc:
                _rollback_quietly(cursor)
                raise self._error(exc) from None
            finally:
                cursor.close()

    def materialize(self, name: str, expr: Any) -> int:
        check_table_name(name)
        if name == "events":
            raise EventStoreError(N_("The events table is append-only"), path=self.path)
        reader = self._reader()
        with self._write_lock:
            try:
                # A staging table's row order means nothing; not keeping it lets the engine
                # write from every thread without buffering (less time and memory).
                reader.raw_sql("SET preserve_insertion_order = false")
                try:
                    reader.create_table(name, obj=expr, overwrite=True)
                finally:
                    reader.raw_sql("RESET preserve_insertion_order")
                with self._con.cursor() as cursor:
                    row = cursor.execute(f'SELECT count(*) FROM "{name}"').fetchone()  # noqa: S608
            except duckdb.Error as exc:
                raise self._error(exc) from None
        return int(row[0]) if row else 0

    def publish(
        self,
        *,
        append: Mapping[str, Any] | None = None,
        replace: Mapping[str, Any] | None = None,
        drop: Sequence[str] = (),
    ) -> dict[str, int]:
        append, replace = dict(append or {}), dict(replace or {})
        for name in [*append, *replace, *drop]:
            check_table_name(name)
            if name == "events":
                raise EventStoreError(N_("The events table is append-only"), path=self.path)
        # Compile first, so a bad expression fails before the transaction starts. Names
        # passed check_table_name ([a-z][a-z0-9_]*), so quoting them is safe.
        appends = {n: self._reader().compile(e) for n, e in append.items()}
        replaces = {n: self._reader().compile(e) for n, e in replace.items()}
        # Replacing a table by a whole staged table that is dropped afterwards: rename it.
        renames = {
            n: staged
            for n, e in replace.items()
            if (staged := _whole_table(e)) is not None and staged in drop and staged not in append
        }
        renamed = set(renames.values())
        counts: dict[str, int] = {}
        with self._write_lock:
            cursor = self._con.cursor()
            try:
                cursor.execute("BEGIN TRANSACTION")
                for name, sql in appends.items():
                    cursor.execute(
                        f'CREATE TABLE IF NOT EXISTS "{name}" AS SELECT * FROM ({sql}) LIMIT 0'  # noqa: S608
                    )
                    row = cursor.execute(
                        f'INSERT INTO "{name}" BY NAME SELECT * FROM ({sql})'  # noqa: S608
                    ).fetchone()
                    counts[name] = int(row[0]) if row else 0
                for name, sql in replaces.items():
                    staged = renames.get(name)
                    if staged is None:
                        cursor.execute(f'CREATE OR REPLACE TABLE "{name}" AS {sql}')
                    else:  # the staged table becomes the table: no copy of its rows
                        cursor.execute(f'DROP TABLE IF EXISTS "{name}"')
                        cursor.execute(f'ALTER TABLE "{staged}" RENAME TO "{name}"')
                for name in drop:
                    if name not in renamed:
                        cursor.execute(f'DROP TABLE IF EXISTS "{name}"')
                cursor.execute("COMMIT")
                self.generation += 1
            except duckdb.Error as exc:
                _rollback_quietly(cursor)
                raise self._error(exc) from None
            finally:
                cursor.close()
        return counts

    def checkpoint(self) -> None:
        with self._write_lock:
            self._con.execute("CHECKPOINT")

    def close(self) -> None:
        self._con.close()


def _whole_table(expr: Any) -> str | None:
    """The name of the stored table an Ibis expression is, unchanged; else None."""
    op = expr.op() if hasattr(expr, "op") else None
    if isinstance(op, ops.DatabaseTable):
        return str(op.name)
    return None


def _id_hashes(cursor: duckdb.DuckDBPyConnection, batch: pa.Table) -> np.ndarray:
    """DuckDB's 64-bit hash of each event id (the same function that built the index)."""
    cursor.register("__ids", batch.select(["event_id"]))
    try:
        hashes = cursor.execute("SELECT hash(event_id) AS h FROM __ids").fetchnumpy()["h"]
    finally:
        cursor.unregister("__ids")
    return np.asarray(hashes, dtype=np.uint64)


def _rollback_quietly(cursor: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):
        cursor.execute("ROLLBACK")
