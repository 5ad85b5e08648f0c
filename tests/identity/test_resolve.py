"""OneID resolution on small, readable worlds, on SQLite and PostgreSQL, with a real DuckDB."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu.events import EventStore, open_event_store
from siyu.identity import service
from siyu.identity.models import Identifier, MergeLog, Person
from siyu.identity.observations import _normalized
from siyu.identity.rules import normalize, priority
from siyu.store import Database

HASH_KEY = service.derive_hash_key("k" * 40)
T0 = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
_ids = itertools.count()


def event(
    name: str = "identify",
    *,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    **identifiers: str,
) -> dict[str, Any]:
    number = next(_ids)
    if user_id is None and anonymous_id is None and identifiers:
        # Who did it, as a client would send it: the strongest identifier it has.
        kind = min(identifiers, key=priority)
        user_id = f"{kind}:{identifiers[kind]}"
    return {
        "event_id": f"t-{number}",
        "name": name,
        "ts": T0 + timedelta(minutes=number),
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "identifiers": json.dumps(identifiers) if identifiers else None,
        "properties": None,
    }


@pytest.fixture
def events(tmp_path: Path) -> Iterator[EventStore]:
    store = open_event_store(f"duckdb:///{tmp_path / 'events.duckdb'}")
    yield store
    store.close()


def append(store: EventStore, *rows: dict[str, Any]) -> None:
    store.append(pa.Table.from_pylist(list(rows)))


def resolve(database: Database, store: EventStore) -> service.ResolveSummary:
    with database.unit_of_work() as session:
        return service.resolve(db_session=session, events=store, hash_key=HASH_KEY)


def person_of(database: Database, kind: str, value: str) -> str | None:
    with database.unit_of_work() as session:
        person = service.find_by_identifier(
            db_session=session, hash_key=HASH_KEY, kind=kind, value=value
        )
        return person.id if person else None


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("phone", "138-0013-8000", "+8613800138000"),
        ("phone", "+86 138 0013 8000", "+8613800138000"),
        ("phone", "8613800138000", "+8613800138000"),
        ("phone", "+1 415 555 0100", "+14155550100"),
        ("phone", "abc", None),
        ("phone", "12345", None),
        ("email", "  Li.Na@QQ.com ", "li.na@qq.com"),
        ("email", "not-an-email", None),
        ("openid", " oX123 ", "oX123"),
        ("member_no", "", None),
    ],
)
def test_normalize(kind: str, raw: str, expected: str | None) -> None:
    assert normalize(kind, raw) == expected


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["phone", "email", "openid"]),
            st.one_of(
                st.from_regex(r"\+?(86)?[ -]?1[3-9]\d[ -]?\d{4}[ -]?\d{4}", fullmatch=True),
                st.from_regex(r"[A-Za-z.]{1,6}@[a-z]{1,5}\.(com|cn)", fullmatch=True),
                st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=12),
            ),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_ibis_normalisation_matches_python(pairs: list[tuple[str, str]]) -> None:
    table = ibis.memtable({"kind": [k for k, _ in pairs], "value": [v for _, v in pairs]})
    result = table.select(out=_normalized(table.kind, table.value)).to_pyarrow()
    got = result.column("out").to_pylist()
    assert got == [normalize(k, v) for k, v in pairs]


def test_channels_join_into_one_person(database: Database, events: EventStore) -> None:
    append(
        events,
        event(user_id="openid:oA", openid="oA", unionid="u1", phone="+86 138 0013 8000"),
        event(user_id="member_no:M1", member_no="M1", phone="13800138000"),
        event(
            "wecom_add_contact",
            user_id="wecom_external_userid:wmA",
            wecom_external_userid="wmA",
            unionid="u1",
        ),
        event("order_paid", user_id="member_no:M1"),
        event("page_view", anonymous_id="dev-1"),
        event("login", user_id="phone:138-0013-8000", anonymous_id="dev-1"),
        event(user_id="openid:oB", openid="oB"),  # somebody else
    )
    summary = resolve(database, events)
    assert summary.identifiers == 7  # oA, u1, the phone (two spellings), M1, wmA, dev-1, oB
    first = person_of(database, "member_no", "M1")
    assert first is not None
    for kind, value in [
        ("openid", "oA"),
        ("unionid", "u1"),
        ("phone", "138 0013 8000"),
        ("wecom_external_userid", "wmA"),
        ("anonymous_id", "dev-1"),
    ]:
        assert person_of(database, kind, value) == first, kind
    assert person_of(database, "openid", "oB") not in (None, first)
    resolved = service.person_events(events).to_pyarrow().to_pylist()
    assert all(row["person_id"] for row in resolved)
    assert {r["person_id"] for r in resolved if r["user_id"] != "openid:oB"} == {first}


def test_identifiers_are_stored_masked_and_hashed(database: Database, events: EventStore) -> None:
    append(
        events, event(user_id="member_no:M77", member_no="M77", phone="13912345678", email="A@b.cn")
    )
    resolve(database, events)
    with database.unit_of_work() as session:
        rows = {i.type: i for i in session.query(Identifier)}
    assert rows["phone"].masked == "139****5678"
    assert rows["email"].masked == "a***@b.cn"
    assert all("13912345678" not in (i.key_hash + i.masked) for i in rows.values())


def test_alias_links_the_previous_id(database: Database, events: EventStore) -> None:
    page = event("page_view", anonymous_id="anon-7")
    alias = event("alias", user_id="member_no:M700")
    alias["properties"] = json.dumps({"previous_id": "anon-7"})
    typed = event("alias", user_id="member_no:M700")
    typed["properties"] = json.dumps({"previous_id": "openid:oOld"})
    append(events, page, alias, typed, event("page_view", user_id="openid:oOld"))
    resolve(database, events)
    member = person_of(database, "member_no", "M700")
    assert member is not None
    assert person_of(database, "anonymous_id", "anon-7") == member
    assert person_of(database, "openid", "oOld") == member


def test_shared_devices_do_not_fuse_strangers(database: Database, events: EventStore) -> None:
    rows = [
        event(user_id=f"member_no:K{i}", member_no=f"K{i}", device_id="KIOSK-1") for i in range(5)
    ]
    append(events, *rows)
    summary = resolve(database, events)
    assert summary.shared_devices == 1
    people = {person_of(database, "member_no", f"K{i}") for i in range(5)}
    assert len(people) == 5
    # A device shared by few enough people is a normal link.
    append(
        events,
        event(member_no="K9", device_id="TABLET"),
        event(phone="13700000000", device_id="TABLET"),
    )
    resolve(database, events)
    assert person_of(database, "member_no", "K9") == person_of(database, "phone", "13700000000")


def test_a_person_holds_one_member_number(database: Database, events: EventStore) -> None:
    append(
        events,
        event(member_no="M1", phone="13800000001"),
        event(member_no="M2", openid="o2"),
        event(openid="o2", phone="13800000001"),  # a weak link that would fuse M1 and M2
    )
    summary = resolve(database, events)
    assert summary.splits == 1
    assert person_of(database, "member_no", "M1") != person_of(database, "member_no", "M2")


def test_merge_is_logged_and_unmerge_restores_and_sticks(
    database: Database, events: EventStore
) -> None:
    append(events, event(member_no="A1", phone="13800000002"), event(openid="oZ", unionid="uZ"))
    resolve(database, events)
    a, z = person_of(database, "member_no", "A1"), person_of(database, "openid", "oZ")
    assert a != z
    append(events, event(unionid="uZ", phone="138 0000 0002"))  # new evidence links them
    summary = resolve(database, events)
    assert summary.merges == 1
    with database.unit_of_work() as session:
        merge = session.query(MergeLog).one()
        assert merge.rule == "shared_identifier"
        survivor, merged = merge.person_id, merge.merged_id
        assert {survivor, merged} == {a, z}
        expected_types = {"openid", "unionid"} if merged == z else {"member_no", "phone"}
        assert set(merge.evidence["types"]) == expected_types
        assert session.get(Person, merged).merged_into == survivor
        assert service.get_person(db_session=session, person_id=merged).id == survivor
    assert person_of(database, "openid", "oZ") == survivor
    ids_before = {person_of(database, "phone", "13800000002")}

    with database.unit_of_work() as session:
        service.unmerge(db_session=session, merge_id=merge.id)
    resolve(database, events)  # the same evidence is still there: the split must hold
    restored = {"openid": z, "member_no": a}
    assert person_of(database, "openid", "oZ") == restored["openid"]
    assert person_of(database, "member_no", "A1") == restored["member_no"]
    assert ids_before == {survivor}
    resolved = service.person_events(events).to_pyarrow().to_pylist()
    assert {r["person_id"] for r in resolved} <= {survivor, merged}


def test_ids_are_stable_across_runs(database: Database, events: EventStore) -> None:
    append(events, event(member_no="S1", phone="13600000000"), event(openid="oS"))
    resolve(database, events)
    before = (person_of(database, "member_no", "S1"), person_of(database, "openid", "oS"))
    second = resolve(database, events)
    assert second.new_people == 0 and second.merges == 0
    assert (person_of(database, "member_no", "S1"), person_of(database, "openid", "oS")) == before


POOL = [
    "member_no:M1",
    "member_no:M2",
    "phone:13800000001",
    "phone:13800000002",
    "openid:o1",
    "openid:o2",
    "unionid:u1",
    "device_id:d1",
]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.one_of(
            st.tuples(
                st.just("identify"),
                st.lists(st.sampled_from(POOL), min_size=1, max_size=3, unique=True),
            ),
            st.tuples(st.just("unmerge"), st.integers(0, 5)),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_sequence_leaves_a_consistent_graph(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, Any]]
) -> None:
    from siyu.store import open_database
    from siyu.store.migrate import upgrade

    folder = tmp_path_factory.mktemp("seq")
    database = open_database(f"sqlite:///{folder / 's.db'}")
    upgrade(database)
    store = open_event_store("duckdb:///:memory:")
    undone: list[tuple[set[str], set[str]]] = []
    try:
        for action, argument in steps:
            if action == "identify":
                pairs = dict(key.split(":", 1) for key in argument)
                append(store, event(**pairs))
            else:
                with database.unit_of_work() as session:
                    merges = (
                        session.query(MergeLog)
                        .filter(MergeLog.undone_at.is_(None))
                        .order_by(MergeLog.id)
                        .all()
                    )
                    if merges:
                        chosen = merges[argument % len(merges)]
                        undone.append(
                            (
                                set(chosen.evidence["kept_identifiers"]),
                                set(chosen.evidence["identifiers"]),
                            )
                        )
                        service.unmerge(db_session=session, merge_id=chosen.id)
            resolve(database, store)
            with database.unit_of_work() as session:
                people = {p.id: p for p in session.query(Person)}
                identifiers = session.query(Identifier).all()
                owner = {i.key_hash: i.person_id for i in identifiers}
                for identifier in identifiers:  # every identifier belongs to an active person
                    assert people[identifier.person_id].merged_into is None
                for person in people.values():  # merges end at active people
                    if person.merged_into:
                        assert (
                            service.get_person(db_session=session, person_id=person.id).merged_into
                            is None
                        )
                per_person: dict[str, int] = {}
                for identifier in identifiers:
                    if identifier.type == "member_no":
                        per_person[identifier.person_id] = (
                            per_person.get(identifier.person_id, 0) + 1
                        )
                assert max(per_person.values(), default=0) <= 1
                for kept, moved in undone:  # an undone merge stays undone
                    kept_people = {owner[h] for h in kept if h in owner}
                    moved_people = {owner[h] for h in moved if h in owner}
                    assert not (kept_people & moved_people)
            # Every event resolves, but those only a shared device could attribute.
            resolved = service.person_events(store).to_pyarrow().to_pylist()
            assert all(r["person_id"] or r["user_id"].startswith("device_id:") for r in resolved)
    finally:
        store.close()
        database.dispose()
