"""Interrupted imports resume after the last checkpoint and end as a clean import would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from siyu.collect.importer import ImportKind, ImportRequest, JobStatus, list_jobs, run_import
from siyu.collect.importer.errors import ImportJobConflictError
from siyu.collect.importer.formats import read_batches
from siyu.collect.importer.models import ImportFormat, ImportJob
from siyu.events import AppendResult, EventStore, open_event_store
from siyu.store import Database
from tests.collect.importer.conftest import write_rows


def _orders(count: int) -> list[dict[str, Any]]:
    return [
        {"order_id": f"A{n:04d}", "member_no": f"M{n % 7}", "amount": f"{n}.50",
         "paid_at": "2024-05-01 10:00:00", "note": "bad" if n % 10 == 0 else "ok"}
        for n in range(count)
    ]  # fmt: skip


class CrashError(Exception):
    pass


def test_an_interrupted_import_resumes_and_matches_a_clean_one(
    tmp_path: Path, db: Database, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _orders(100)
    rows[5]["amount"] = "-1"  # one rejected row
    path = write_rows(tmp_path / "orders.csv", rows)
    request = ImportRequest(kind=ImportKind.orders, path=path, batch_size=10)
    real_append = store.append
    calls = 0

    def crashing_append(events: pa.Table) -> AppendResult:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise CrashError("power cut")
        return real_append(events)

    monkeypatch.setattr(store, "append", crashing_append)
    with pytest.raises(CrashError):
        run_import(database=db, events=store, request=request)
    monkeypatch.setattr(store, "append", real_append)

    with db.unit_of_work() as session:
        [failed] = list_jobs(db_session=session)
        assert failed.status is JobStatus.failed
        assert failed.batches_done == 3
        assert "power cut" in (failed.error or "")

    resumed = run_import(database=db, events=store, request=request)

    assert resumed.resumed is True
    assert resumed.job_id == failed.id
    assert (resumed.rows_read, resumed.accepted, resumed.duplicates, resumed.rejected) == (
        100,
        99,
        0,
        1,
    )
    assert store.count() == 99

    with open_event_store(f"duckdb:///{tmp_path / 'clean.duckdb'}") as clean:
        fresh = run_import(
            database=db,
            events=clean,
            request=ImportRequest(kind=ImportKind.orders, path=path, batch_size=10, resume=False),
        )
        assert (fresh.rows_read, fresh.accepted, fresh.rejected) == (100, 99, 1)
        ids = clean.table().select("event_id").to_pyarrow().column(0).to_pylist()
    stored_ids = store.table().select("event_id").to_pyarrow().column(0).to_pylist()
    assert sorted(stored_ids) == sorted(ids)
    report = path.with_name(path.name + ".import-report.jsonl").read_text().splitlines()
    assert len(report) == 1


def test_a_crash_between_append_and_checkpoint_stores_nothing_twice(
    tmp_path: Path, db: Database, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_rows(tmp_path / "orders.jsonl", _orders(30))
    request = ImportRequest(kind=ImportKind.orders, path=path, batch_size=10)
    from siyu.collect.importer import service

    real_save = service._save
    saves = 0

    def crashing_save(database: Database, job: ImportJob) -> None:
        nonlocal saves
        saves += 1
        if saves >= 2:  # the process dies after appending the second batch
            raise CrashError("killed")
        real_save(database, job)

    monkeypatch.setattr(service, "_save", crashing_save)
    with pytest.raises(CrashError):
        run_import(database=db, events=store, request=request)
    monkeypatch.setattr(service, "_save", real_save)
    with db.unit_of_work() as session:
        # The failure could not be recorded either: the job still says running, 1 batch done.
        [job] = list_jobs(db_session=session)
        assert (job.status, job.batches_done) == (JobStatus.running, 1)

    resumed = run_import(database=db, events=store, request=request)

    assert resumed.resumed
    assert store.count() == 30
    assert (resumed.accepted, resumed.duplicates) == (20, 10)


def test_resume_without_an_unfinished_job_is_refused(
    tmp_path: Path, db: Database, store: EventStore
) -> None:
    path = write_rows(tmp_path / "orders.csv", _orders(3))
    request = ImportRequest(kind=ImportKind.orders, path=path, resume=True)

    with pytest.raises(ImportJobConflictError):
        run_import(database=db, events=store, request=request)


@pytest.mark.parametrize("start", [0, 1, 4, 7, 14, 15])
def test_parquet_resume_starts_at_the_row_group_holding_the_batch(
    tmp_path: Path, start: int
) -> None:
    path = tmp_path / "numbers.parquet"
    pq.write_table(pa.table({"n": pa.arange(0, 1000)}), path, row_group_size=130)
    whole = list(read_batches(path, ImportFormat.parquet, batch_size=70))

    resumed = list(read_batches(path, ImportFormat.parquet, batch_size=70, start=start))

    assert [batch.index for batch in resumed] == list(range(start, len(whole)))
    for batch in resumed:
        expected = whole[batch.index].table
        assert batch.table.to_pydict() == expected.to_pydict()
