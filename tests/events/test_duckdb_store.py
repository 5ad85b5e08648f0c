"""The DuckDB event store: append, read through Ibis, exact dedup, atomic appends, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from siyu.core.clock import frozen
from siyu.core.errors import (
    ConfigError,
    EventStoreCorruptError,
    EventStoreError,
    EventStoreLockedError,
    InvalidEventsError,
)
from siyu.events import EVENTS_SCHEMA, open_event_store
from siyu.events.duckdb import DuckDBEventStore
from siyu.events.duckdb.store import path_of
from siyu.events.id_index import IdHashIndex

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def batch(ids: list[str], name: str = "page_view", **columns: list[Any]) -> pa.Table:
    """Events with the given ids, one minute apart from T0, plus any extra columns."""
    data: dict[str, list[Any]] = {
        "event_id": ids,
        "name": [name] * len(ids),
        "ts": [T0 + timedelta(minutes=i) for i in range(len(ids))],
    }
    data.update(columns)
    return pa.table(data)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "events.duckdb"


@pytest.fixture
def store(path: Path) -> Iterator[DuckDBEventStore]:
    opened = open_event_store(f"duckdb:///{path}")
    assert isinstance(opened, DuckDBEventStore)
    try:
        yield opened
    finally:
        opened.close()


def stored_ids(store: DuckDBEventStore) -> list[str]:
    events = store.table()
    return sorted(events.order_by(events.event_id).event_id.to_pyarrow().to_pylist())


# -- append and read --------------------------------------------------------------------------


def test_append_and_read_back_through_ibis(store: DuckDBEventStore) -> None:
    result = store.append(
        batch(
            ["e1", "e2", "e3"],
            channel=["wecom", "web", None],
            user_id=["phone:138", None, "member_no:7"],
        )
    )

    assert (result.received, result.inserted, result.duplicates) == (3, 3, 0)
    events = store.table()
    assert events.count().execute() == 3
    assert store.count() == 3
    assert set(events.columns) == set(EVENTS_SCHEMA.names)
    by_channel = events.filter(events.channel == "wecom").select("event_id", "user_id").to_pyarrow()
    assert by_channel.to_pylist() == [{"event_id": "e1", "user_id": "phone:138"}]
    first = events.order_by(events.ts).limit(1).to_pyarrow().to_pylist()[0]
    assert first["ts"] == T0
    assert first["name"] == "page_view"


def test_an_in_memory_store_works_too() -> None:
    with open_event_store("duckdb:///:memory:") as memory:
        memory.append(batch(["a", "b"]))
        assert memory.table().count().execute() == 2


def test_duplicates_inside_a_batch_keep_the_first_row(store: DuckDBEventStore) -> None:
    result = store.append(batch(["a", "b", "a", "a"], source=["first", "x", "second", "third"]))

    assert (result.received, result.inserted, result.duplicates) == (4, 2, 2)
    events = store.table()
    assert events.filter(events.event_id == "a").source.to_pyarrow().to_pylist() == ["first"]


def test_duplicates_across_batches_are_skipped(store: DuckDBEventStore) -> None:
    store.append(batch(["a", "b"]))

    result = store.append(batch(["b", "c", "a", "d"]))

    assert (result.inserted, result.duplicates) == (2, 2)
    assert stored_ids(store) == ["a", "b", "c", "d"]


def test_dedup_survives_a_restart(path: Path) -> None:
    url = f"duckdb:///{path}"
    with open_event_store(url) as first:
        assert first.append(batch([f"id-{i}" for i in range(500)])).inserted == 500

    with open_event_store(url) as reopened:
        again = reopened.append(batch([f"id-{i}" for i in range(500)]))
        mixed = reopened.append(batch(["id-0", "new-1", "id-499", "new-2"]))

        assert (again.inserted, again.duplicates) == (0, 500)
        assert (mixed.inserted, mixed.duplicates) == (2, 2)
        assert reopened.count() == 502


def test_an_empty_batch_is_a_no_op(store: DuckDBEventStore) -> None:
    result = store.append(batch([]))
    assert (result.received, result.inserted, result.duplicates) == (0, 0, 0)
    assert store.count() == 0


# -- the id hash index and exact confirmation ---------------------------------------------------


class _EverythingCollides(IdHashIndex):
    """An index that reports every id as a candidate: the worst case of hash collisions."""

    def contains(self, hashes: Any) -> Any:
        return np.ones(len(hashes), dtype=bool)


def test_hash_collisions_never_drop_an_event(store: DuckDBEventStore) -> None:
    store.append(batch(["kept-1", "kept-2"]))
    store._index = _EverythingCollides()

    result = store.append(batch(["new-1", "kept-1", "new-2", "kept-2", "new-3"]))

    assert (result.inserted, result.duplicates) == (3, 2)
    assert stored_ids(store) == ["kept-1", "kept-2", "new-1", "new-2", "new-3"]


def test_a_colliding_hash_of_an_unstored_id_is_confirmed_absent(store: DuckDBEventStore) -> None:
    store.append(batch(["stored"]))
    hashes = store._con.execute("SELECT hash('not-stored-yet') AS h").fetchnumpy()["h"]
    index = store._index
    assert index is not None
    index.add(np.asarray(hashes, dtype=np.uint64))  # as if another id had the same hash

    result = store.append(batch(["not-stored-yet", "stored"]))

    assert (result.inserted, result.duplicates) == (1, 1)
    assert stored_ids(store) == ["not-stored-yet", "stored"]


hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# Small values collide often; the top of the uint64 range catches signed/unsigned slips.
_hash = st.one_of(st.integers(0, 40), st.integers(2**64 - 8, 2**64 - 1))


@settings(max_examples=100, deadline=None)
@given(
    initial=st.lists(_hash, max_size=30),
    batches=st.lists(st.lists(_hash, max_size=20), max_size=12),
    probes=st.lists(_hash, max_size=40),
)
def test_id_hash_index_agrees_with_a_set(
    initial: list[int], batches: list[list[int]], probes: list[int]
) -> None:
    index = IdHashIndex(np.array(initial, dtype=np.uint64))
    reference = set(initial)
    added = len(initial)
    for hashes in batches:
        before = index.contains(np.array(hashes, dtype=np.uint64))
        assert before.tolist() == [value in reference for value in hashes]
        index.add(np.array(hashes, dtype=np.uint64))
        reference.update(hashes)
        added += len(hashes)
    assert len(index) == added
    found = index.contains(np.array(probes, dtype=np.uint64))
    assert found.tolist() == [value in reference for value in probes]
    # Runs stay sorted and shrink geometrically: a lookup touches O(log n) runs.
    for run in index._runs:
        assert np.all(run[:-1] <= run[1:])
    sizes = [len(run) for run in index._runs]
    assert all(earlier > later for earlier, later in pairwise(sizes))


# -- conforming to the schema --------------------------------------------------------------------


def test_conform_lists_every_problem(store: DuckDBEventStore) -> None:
    bad = pa.table(
        {
            "event_id": ["a", None],
            "ts": ["abc", "2026-01-01"],
            "colour": ["red", "blue"],
            "quantity": ["one", "2"],
        }
    )

    with pytest.raises(InvalidEventsError) as caught:
        store.append(bad)

    problems = {
        (problem["field"], problem["reason"].split(":")[0]) for problem in caught.value.errors
    }
    assert ("colour", "unknown column") in problems
    assert ("event_id", "required, missing in 1 rows") in problems
    assert ("name", "required, missing in 2 rows") in problems
    assert ("ts", "cannot be read as timestamp[us, tz=UTC]") in problems
    assert ("quantity", "cannot be read as int32") in problems
    assert caught.value.status == 422
    assert caught.value.context["count"] == len(caught.value.errors) >= 5
    assert store.count() == 0  # nothing half-stored


def test_missing_required_columns(store: DuckDBEventStore) -> None:
    with pytest.raises(InvalidEventsError) as caught:
        store.append(pa.table({"event_id": ["a"]}))
    assert {problem["field"] for problem in caught.value.errors} == {"name", "ts"}


def test_received_at_defaults_to_now_and_keeps_a_given_value(store: DuckDBEventStore) -> None:
    now = datetime(2026, 5, 2, 12, 0, tzinfo=UTC)
    given_at = datetime(2026, 5, 1, 23, 0, tzinfo=UTC)

    with frozen(now):
        store.append(batch(["defaulted"]))
        store.append(batch(["partly-1", "partly-2"], received_at=[given_at, None]))

    events = store.table()
    rows = events.select("event_id", "received_at").to_pyarrow().to_pylist()
    assert {row["event_id"]: row["received_at"] for row in rows} == {
        "defaulted": now,
        "partly-1": given_at,
        "partly-2": now,
    }


def test_amounts_are_exact_decimals(store: DuckDBEventStore) -> None:
    amounts = [Decimal("0.10"), Decimal("0.20"), Decimal("19999999.99"), Decimal("-0.30")]
    store.append(
        batch(
            ["o1", "o2", "o3", "o4"],
            name="order_paid",
            amount=pa.array(amounts, type=pa.decimal128(18, 2)),
            currency=["CNY"] * 4,
        )
    )

    events = store.table()
    total = events.amount.sum().execute()
    assert isinstance(total, Decimal)
    assert total == Decimal("19999999.99")
    small = events.filter(events.event_id.isin(["o1", "o2"])).amount.sum().execute()
    assert small == Decimal("0.30")
    assert sorted(events.amount.to_pyarrow().to_pylist()) == sorted(amounts)


def test_amounts_given_as_text_are_read_exactly(store: DuckDBEventStore) -> None:
    store.append(batch(["o1"], name="order_paid", amount=pa.array(["88.80"])))
    assert store.table().amount.execute().iloc[0] == Decimal("88.80")


def test_chinese_properties_round_trip(store: DuckDBEventStore) -> None:
    properties = {"商品": "西湖龙井", "备注": "送礼 🎁", "数量": 2}
    store.append(
        batch(
            ["cn-1"],
            name="product_view",
            properties=[json.dumps(properties, ensure_ascii=False)],
            category=["茶叶"],
        )
    )

    row = store.table().select("properties", "category").to_pyarrow().to_pylist()[0]
    assert json.loads(row["properties"]) == properties
    assert row["category"] == "茶叶"


# -- atomic appends --------------------------------------------------------------------------------


def test_readers_never_see_half_an_append(store: DuckDBEventStore) -> None:
    rows_per_batch, batches = 200, 30
    store.append(batch([f"warm-{i}" for i in range(rows_per_batch)]))  # builds the index
    observed: list[int] = []
    failures: list[BaseException] = []
    done = threading.Event()
    reads = threading.Semaphore(0)

    def write() -> None:
        try:
            for number in range(batches):
                store.append(batch([f"b{number}-{i}" for i in range(rows_per_batch)]))
                # Let the reader in between appends too, so its reads overlap the next append.
                reads.acquire(timeout=5)
        except BaseException as exc:
            failures.append(exc)
        finally:
            done.set()

    def read() -> None:
        try:
            events = store.table()
            while not done.is_set():
                observed.append(int(events.count().execute()))
                reads.release()
            observed.append(int(events.count().execute()))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == []
    total = rows_per_batch * (batches + 1)
    assert observed[-1] == total
    assert [count for count in observed if count % rows_per_batch] == []
    assert observed == sorted(observed)  # appends only grow the table
    assert len(set(observed)) >= 3  # the reader really ran while the writer appended


# -- failures ----------------------------------------------------------------------


def test_a_corrupt_file_is_named(path: Path) -> None:
    path.write_bytes(np.random.default_rng(7).bytes(64 * 1024))

    with pytest.raises(EventStoreCorruptError) as caught:
        open_event_store(f"duckdb:///{path}")

    error = caught.value
    assert str(path) in error.render("en")
    assert error.context["setting"] == "SIYU_EVENTS_URL"
    assert error.render_hint("en")
    assert error.render_title("zh-CN") == "事件库已损坏"


_HOLD_FILE = """
import sys, duckdb
connection = duckdb.connect(sys.argv[1])
connection.execute("CREATE TABLE IF NOT EXISTS held (x INTEGER)")
print("holding", flush=True)
sys.stdin.read()
"""


def test_a_file_held_by_another_process_is_reported_as_locked(path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_FILE, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"

        with pytest.raises(EventStoreLockedError) as caught:
            open_event_store(f"duckdb:///{path}")
    finally:
        holder.communicate("", timeout=30)

    error = caught.value
    message = error.render("en")
    assert "in use by another process" in message
    assert str(path) in message
    assert "SIYU_EVENTS_URL" in (error.render_hint("en") or "")
    # Released: the file opens once the other process is gone.
    with open_event_store(f"duckdb:///{path}") as reopened:
        assert reopened.count() == 0


def test_an_unsupported_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        open_event_store("clickhouse://somewhere")
    assert caught.value.context["setting"] == "SIYU_EVENTS_URL"


def test_a_read_only_store_reads_and_refuses_writes(path: Path) -> None:
    url = f"duckdb:///{path}"
    with open_event_store(url) as writer:
        writer.append(batch(["a"]))

    with open_event_store(url, read_only=True) as reader:
        assert reader.table().count().execute() == 1
        reader.ping()
        with pytest.raises(EventStoreError):
            reader.append(batch(["b"]))


# -- dimension tables --------------------------------------------------------------


def test_replace_table_and_has_table(store: DuckDBEventStore) -> None:
    assert store.has_table("events")
    assert not store.has_table("product")

    store.replace_table("product", pa.table({"sku": ["s1", "s2"], "title": ["龙井", "普洱"]}))
    assert store.has_table("product")
    assert store.table("product").count().execute() == 2

    store.replace_table("product", pa.table({"sku": ["s3"], "title": ["白茶"]}))
    product = store.table("product").to_pyarrow().to_pylist()
    assert product == [{"sku": "s3", "title": "白茶"}]


def test_events_cannot_be_replaced(store: DuckDBEventStore) -> None:
    store.append(batch(["a"]))
    with pytest.raises(EventStoreError) as caught:
        store.replace_table("events", pa.table({"x": [1]}))
    assert "append-only" in caught.value.render("en")
    assert store.count() == 1


@pytest.mark.parametrize("name", ["Product", "drop table x", "1abc", "a" * 64, "x;--"])
def test_table_names_are_checked(store: DuckDBEventStore, name: str) -> None:
    with pytest.raises(InvalidEventsError):
        store.replace_table(name, pa.table({"x": [1]}))
    with pytest.raises(InvalidEventsError):
        store.has_table(name)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("duckdb:///:memory:", ":memory:"),
        ("duckdb://", ":memory:"),
        ("duckdb:///srv/siyu/events.duckdb", "/srv/siyu/events.duckdb"),
        ("duckdb:////srv/siyu/events.duckdb", "/srv/siyu/events.duckdb"),
        ("duckdb:///srv/siyu/../siyu/events.duckdb", "/srv/siyu/events.duckdb"),
    ],
)
def test_path_of_gives_one_spelling_per_file(url: str, expected: str) -> None:
    assert path_of(url) == expected


def test_relative_paths_are_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert path_of("duckdb://data/events.duckdb") == str(
        tmp_path.resolve() / "data" / "events.duckdb"
    )
