"""Resolve identifiers into people, keep the identity map, unmerge. Callers own the transaction.

``resolve`` is a full, deterministic pass over the event store: the graph is rebuilt from the
events every time, so a rule change or an unmerge takes effect everywhere at once, and people
keep their ids from one pass to the next (a person's id follows the larger part of its
identifiers). The result lands in the operational store (people, hashed identifiers, merges)
and in the event store as ``identity_map`` (every raw key → person), which read-time
resolution joins.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.core.errors import NotFoundError
from siyu.core.i18n import N_
from siyu.core.ids import new_id
from siyu.events import EventStore
from siyu.events.schema import ONEID_PREFIX
from siyu.identity import graph
from siyu.identity.models import Identifier, MergeLog, Person, ResolveSummary
from siyu.identity.observations import identity_tables
from siyu.identity.rules import DEVICE_TYPES, IdentityRules, normalize, priority
from siyu.store.bulk import bulk_insert

IDENTITY_MAP_TABLE = "identity_map"
_SPLIT_FAMILY_BASE = 1_000_000


def key_hash(hash_key: bytes, key: str) -> str:
    """The blind index of a normalised identifier key (``phone:+8613800138000``): SHA-256 of
    the secret-derived prefix and the key. The same is computed in the engine for millions of
    keys at once (:func:`siyu.identity.observations.identity_tables`); equality lookups are
    all it serves."""
    return hashlib.sha256((hash_key.hex() + key).encode()).hexdigest()


def derive_hash_key(secret: str) -> bytes:
    return hashlib.sha256(b"siyu identity blind index\x00" + secret.encode()).digest()


# -- resolution -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Nodes:
    """The identifiers found in the events, numbered by row (see ``identity_tables``)."""

    table: pa.Table  # kind, key_hash, masked, first_seen, last_seen
    kind_code: np.ndarray  # index into kind_names, per node
    kind_names: np.ndarray  # the distinct kinds
    hashes: np.ndarray  # key_hash per node (object array of str)

    @classmethod
    def of(cls, table: pa.Table) -> _Nodes:
        encoded = pc.dictionary_encode(table.column("kind")).combine_chunks()
        return cls(
            table=table,
            kind_code=encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64),
            kind_names=np.array(encoded.dictionary.to_pylist(), dtype=object),
            hashes=table.column("key_hash").to_numpy(zero_copy_only=False),
        )

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def of_kind(self, kinds: Iterable[str]) -> np.ndarray:
        """Whether each node's kind is one of ``kinds``."""
        return np.isin(self.kind_names, list(kinds))[self.kind_code]  # type: ignore[no-any-return]

    def priorities(self) -> np.ndarray:
        by_kind = np.array([priority(k) for k in self.kind_names], dtype=np.int64)
        return by_kind[self.kind_code]  # type: ignore[no-any-return]

    def kind(self, node: int) -> str:
        return str(self.kind_names[self.kind_code[node]])


def resolve(
    *, db_session: Session, events: EventStore, hash_key: bytes, rules: IdentityRules | None = None
) -> ResolveSummary:
    started = time.perf_counter()
    rules = rules or IdentityRules()
    tables = identity_tables(events.table(), hash_prefix=hash_key.hex())
    nodes = _Nodes.of(tables["nodes"])
    a = _int_column(tables["links"], "a")
    b = _int_column(tables["links"], "b")

    a, b, shared = _drop_shared_devices(
        a, b, nodes.of_kind(DEVICE_TYPES), rules.shared_device_limit
    )
    node_priority = nodes.priorities()
    rank = np.maximum(node_priority[a], node_priority[b])
    label_node, label_family, label_value = _labels(db_session, nodes, rules)
    comp, splits = graph.components(len(nodes), a, b, rank, label_node, label_family, label_value)

    known = _known_identifiers(db_session, nodes.hashes)
    person_of_comp, new_people, merges = _assign_people(db_session, comp, nodes, known)
    person_of_node = person_of_comp.take(pa.array(comp))
    _store_identifiers(db_session, nodes, known, person_of_node)
    _publish_map(events, tables["spellings"], person_of_node, shared)
    return ResolveSummary(
        identifiers=len(nodes),
        people=len(person_of_comp),
        new_people=new_people,
        merges=merges,
        splits=splits,
        shared_devices=int(shared.sum()),
        invalid_values=tables["invalid"],
        seconds=round(time.perf_counter() - started, 3),
    )


def _int_column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy().astype(np.int64, copy=False)  # type: ignore[no-any-return]


def _drop_shared_devices(
    a: np.ndarray, b: np.ndarray, is_device: np.ndarray, limit: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Remove every link of a device seen with more than ``limit`` non-device identifiers."""
    shared = np.zeros(len(is_device), dtype=bool)
    if len(a) == 0:
        return a, b, shared
    device = np.concatenate([a, b])
    other = np.concatenate([b, a])
    keep = is_device[device] & ~is_device[other]
    if keep.any():
        # Distinct (device, other) pairs, as one integer each.
        pairs = np.unique(device[keep] * len(is_device) + other[keep])
        devices, counts = np.unique(pairs // len(is_device), return_counts=True)
        shared[devices[counts > limit]] = True
    kept = ~(shared[a] | shared[b])
    return a[kept], b[kept], shared


def _labels(
    db_session: Session, nodes: _Nodes, rules: IdentityRules
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exclusion labels: each value of a type limited to one per person, and both sides of
    every undone merge (so an unmerge is never silently redone)."""
    labelled, families, values = [], [], []
    for family, (kind, limit) in enumerate(sorted(rules.limits.items())):
        if limit == 1:
            members = np.flatnonzero(nodes.of_kind([kind]))
            labelled.append(members)
            families.append(np.full(len(members), family))
            values.append(members)
    undone = db_session.scalars(select(MergeLog).where(MergeLog.undone_at.is_not(None))).all()
    if undone:
        position = pd.Index(nodes.hashes)
        for merge in undone:
            for side, field in ((0, "kept_identifiers"), (1, "identifiers")):
                found = _positions(position, merge.evidence.get(field, []))
                labelled.append(found)
                families.append(np.full(len(found), _SPLIT_FAMILY_BASE + merge.id))
                values.append(np.full(len(found), side))
    if not labelled:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return (
        np.concatenate(labelled).astype(np.int64),
        np.concatenate(families).astype(np.int64),
        np.concatenate(values).astype(np.int64),
    )


def _positions(index: pd.Index, wanted: list[str]) -> np.ndarray:
    """Positions in ``index`` of the ``wanted`` values it holds, in ``wanted`` order."""
    if not wanted:
        return np.zeros(0, dtype=np.int64)
    found = index.get_indexer(pd.Index(wanted))
    return found[found >= 0].astype(np.int64)


@dataclass(frozen=True)
class _Known:
    """What the store already knows of each node: its identifier's person (canonical, after
    following merges; "" for a new identifier) and the person stored on the row."""

    found: np.ndarray  # bool per node
    stored: np.ndarray  # person_id on the identifier row (object; "" when new)
    canonical: np.ndarray  # active person the row's person ends at (object; "" when new)


def _known_identifiers(db_session: Session, hashes: np.ndarray) -> _Known:
    rows = db_session.execute(select(Identifier.key_hash, Identifier.person_id)).all()
    stored = np.full(len(hashes), "", dtype=object)
    if not rows:
        return _Known(np.zeros(len(hashes), dtype=bool), stored, stored)
    known_hashes, known_people = (
        np.array(column, dtype=object) for column in zip(*rows, strict=True)
    )
    index = pd.Index(known_hashes)
    if not index.is_unique:
        last = ~index.duplicated(keep="last")
        index, known_people = index[last], known_people[last]
    position = index.get_indexer(pd.Index(hashes))
    found = position >= 0
    stored[found] = known_people[position[found]]
    canonical = stored.copy()
    pointers = _canonical_people(db_session)
    if pointers:
        canonical[found] = pd.Series(stored[found]).map(lambda p: pointers.get(p, p)).to_numpy()
    return _Known(found, stored, canonical)


def _created(db_session: Session, people: list[str]) -> dict[str, tuple[Any, str]]:
    """person id → (created_at, id) for those of ``people`` not merged into anyone."""
    created: dict[str, tuple[Any, str]] = {}
    for start in range(0, len(people), 500):
        chunk = people[start : start + 500]
        rows = db_session.execute(
            select(Person.id, Person.created_at).where(
                Person.merged_into.is_(None), Person.id.in_(chunk)
            )
        ).all()
        created.update((pid, (at, pid)) for pid, at in rows)
    return created


def _assign_people(
    db_session: Session, comp: np.ndarray, nodes: _Nodes, known: _Known
) -> tuple[pa.Array, int, int]:
    """Give every component a person: the one most of its identifiers had, merging others in.

    Returns the person of each component, how many people are new, and how many merged."""
    n_comps = int(comp.max()) + 1 if len(comp) else 0
    person_by_comp = np.full(n_comps, None, dtype=object)
    owned = np.flatnonzero(known.found)
    old_code, old_ids = pd.factorize(known.canonical[owned])
    # A previous person keeps its id in the component holding most of its identifiers (the
    # lowest numbered one on a tie).
    pairs, sizes = np.unique(old_code.astype(np.int64) * n_comps + comp[owned], return_counts=True)
    pair_old, pair_comp = pairs // n_comps, pairs % n_comps
    order = np.lexsort((pair_comp, -sizes, pair_old))
    first = np.ones(len(order), dtype=bool)
    first[1:] = pair_old[order][1:] != pair_old[order][:-1]
    home_old, home_comp = pair_old[order][first], pair_comp[order][first]
    contenders = np.bincount(home_comp, minlength=n_comps)[home_comp]
    alone = contenders == 1
    person_by_comp[home_comp[alone]] = np.asarray(old_ids, dtype=object)[home_old[alone]]
    merges = 0
    if not alone.all():
        contested = pd.DataFrame(
            {"comp": home_comp[~alone], "old": np.asarray(old_ids, dtype=object)[home_old[~alone]]}
        )
        created = _created(db_session, sorted(set(contested["old"])))
        involved = np.isin(comp[owned], contested["comp"].to_numpy())
        frame = pd.DataFrame(
            {
                "comp": comp[owned][involved],
                "old": known.canonical[owned][involved],
                "node": owned[involved],
            }
        )
        held = {
            key: frame["node"].to_numpy()[rows]
            for key, rows in frame.groupby(["comp", "old"]).indices.items()
        }
        for comp_id, olds in contested.groupby("comp")["old"]:
            number = int(str(comp_id))
            candidates = sorted(olds, key=lambda p: created.get(p, (utcnow(), p)))
            survivor, absorbed = candidates[0], candidates[1:]
            person_by_comp[number] = survivor
            for merged in absorbed:
                _merge(
                    db_session,
                    survivor,
                    merged,
                    mine=held[(number, merged)],
                    kept=held[(number, survivor)],
                    nodes=nodes,
                )
                merges += 1
    is_fresh = pd.isna(person_by_comp)
    fresh = np.flatnonzero(is_fresh)
    new_ids = new_person_ids(len(fresh))
    bulk_insert(
        db_session,
        Person.__tablename__,
        pa.table(
            {
                "id": new_ids,
                "created_at": pa.array(np.full(len(fresh), utcnow()), pa.timestamp("us", tz="UTC")),
            }
        ),
    )
    kept = pa.array(person_by_comp[~is_fresh], pa.string())
    order = np.empty(n_comps, dtype=np.int64)
    order[~is_fresh] = np.arange(len(kept))
    order[fresh] = len(kept) + np.arange(len(fresh))
    person_of_comp = pa.concat_arrays([kept, new_ids]).take(pa.array(order))
    return person_of_comp, len(fresh), merges


def new_person_ids(count: int) -> pa.StringArray:
    """``count`` new OneIDs: ``p_`` + the time (as in :func:`siyu.core.ids.new_id`) + 64
    random bits, in ascending order so that inserting them appends to the person index.
    Made as one buffer of characters, not as Python strings."""
    stamp = np.frombuffer(new_id("p")[:12].encode(), dtype=np.uint8)
    random = np.sort(np.frombuffer(secrets.token_bytes(8 * count), dtype=np.uint64))
    digits = np.frombuffer(random.astype(">u8").tobytes().hex().encode(), dtype=np.uint8)
    width = len(stamp) + 16
    chars = np.empty((count, width), dtype=np.uint8)
    chars[:, : len(stamp)] = stamp
    chars[:, len(stamp) :] = digits.reshape(count, 16)
    offsets = np.arange(0, width * (count + 1), width, dtype=np.int32)
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(chars))


def _canonical_people(db_session: Session) -> dict[str, str]:
    """Every merged person id → the active person it ends at after following merges."""
    rows = db_session.execute(
        select(Person.id, Person.merged_into).where(Person.merged_into.is_not(None))
    ).all()
    pointers = {pid: into for pid, into in rows if into}

    def follow(pid: str) -> str:
        seen = set()
        while pointers.get(pid) and pid not in seen:
            seen.add(pid)
            pid = pointers[pid] or pid
        return pid

    return {pid: follow(pid) for pid in pointers}


def _merge(
    db_session: Session,
    survivor: str,
    merged: str,
    *,
    mine: np.ndarray,
    kept: np.ndarray,
    nodes: _Nodes,
) -> None:
    db_session.execute(update(Person).where(Person.id == merged).values(merged_into=survivor))
    db_session.add(
        MergeLog(
            person_id=survivor,
            merged_id=merged,
            rule="shared_identifier",
            evidence={
                "identifiers": [str(nodes.hashes[i]) for i in mine],
                "kept_identifiers": [str(nodes.hashes[i]) for i in kept],
                "types": sorted({nodes.kind(i) for i in mine}),
                "kept_types": sorted({nodes.kind(i) for i in kept}),
            },
        )
    )


def _store_identifiers(
    db_session: Session, nodes: _Nodes, known: _Known, person_of_node: pa.Array
) -> None:
    """Insert new identifiers in bulk; move the few whose person changed."""
    columns = ["kind", "key_hash", "masked", "first_seen", "last_seen"]
    fresh = nodes.table.select(columns).append_column("person_id", person_of_node)
    if known.found.any():
        fresh = fresh.filter(pa.array(~known.found))
    # Nodes come in the order of the (type, key_hash) index, so the inserts append to it.
    fresh = fresh.rename_columns(["type", *columns[1:], "person_id"])
    bulk_insert(db_session, Identifier.__tablename__, fresh)
    person = person_of_node.to_numpy(zero_copy_only=False)
    moved = np.flatnonzero(known.found & (known.stored != person))
    if len(moved):
        last = nodes.table.column("last_seen").take(pa.array(moved)).to_pylist()
        table = cast(Table, Identifier.__table__)
        db_session.execute(
            update(table)
            .where(table.c.key_hash == bindparam("moved_hash"))
            .values(person_id=bindparam("moved_person"), last_seen=bindparam("moved_last")),
            [
                {"moved_hash": nodes.hashes[i], "moved_person": person[i], "moved_last": seen}
                for i, seen in zip(moved.tolist(), last, strict=True)
            ],
        )
    db_session.flush()


def _publish_map(
    events: EventStore, spellings: pa.Table, person_of_node: pa.Array, shared: np.ndarray
) -> None:
    """Write ``identity_map`` (raw key as in events → person) for read-time resolution."""
    node = _int_column(spellings, "node")
    usable = ~shared[node]
    table = pa.table(
        {
            "key": spellings.column("raw_key").filter(pa.array(usable)),
            "person_id": person_of_node.take(pa.array(node[usable])),
        }
    )
    events.replace_table(IDENTITY_MAP_TABLE, table)


# -- reading ------------------------------------------------------------------------------


def people(events: EventStore) -> Any:
    """Every resolved person once (Ibis, column ``person_id``); empty before any resolution."""
    if not events.has_table(IDENTITY_MAP_TABLE):
        return ibis.memtable(pa.table({"person_id": pa.array([], pa.string())}))
    return events.table(IDENTITY_MAP_TABLE).select("person_id").distinct()


def person_events(events: EventStore, table: Any = None) -> Any:
    """The events table (or ``table``, a filtered view of it) with ``person_id`` resolved
    through the identity map (Ibis); events siyu records about a person
    (``oneid:<person_id>``) resolve to that person."""
    table = events.table() if table is None else table
    if not events.has_table(IDENTITY_MAP_TABLE):
        return table.mutate(person_id=ibis.null(str))
    identity = events.table(IDENTITY_MAP_TABLE)
    by_user = identity.rename(user_person="person_id", user_key="key")
    by_device = identity.rename(device_person="person_id", device_key="key")
    joined = table.left_join(by_user, table.user_id == by_user.user_key).left_join(
        by_device, ("anonymous_id:" + table.anonymous_id) == by_device.device_key
    )
    named = ibis.cases(
        (joined.user_id.startswith(ONEID_PREFIX), joined.user_id.substr(len(ONEID_PREFIX))),
        else_=ibis.null(str),
    )
    person = joined.user_person.coalesce(joined.device_person, named)
    return joined.mutate(person_id=person).drop(
        "user_person", "user_key", "device_person", "device_key"
    )


def get_person(*, db_session: Session, person_id: str) -> Person | None:
    """The person, following merges to the one it now belongs to."""
    person = db_session.get(Person, person_id)
    seen: set[str] = set()
    while person is not None and person.merged_into and person.id not in seen:
        seen.add(person.id)
        person = db_session.get(Person, person.merged_into)
    return person


def get_person_or_raise(*, db_session: Session, person_id: str) -> Person:
    person = get_person(db_session=db_session, person_id=person_id)
    if person is None:
        raise NotFoundError(N_("No person {person_id}"), person_id=person_id)
    return person


def find_by_identifier(
    *, db_session: Session, hash_key: bytes, kind: str, value: str
) -> Person | None:
    normal = normalize(kind, value)
    if normal is None:
        return None
    identifier = db_session.scalars(
        select(Identifier).where(
            Identifier.type == kind, Identifier.key_hash == key_hash(hash_key, f"{kind}:{normal}")
        )
    ).one_or_none()
    if identifier is None:
        return None
    return get_person(db_session=db_session, person_id=identifier.person_id)


def people_by_identifiers(
    *, db_session: Session, hash_key: bytes, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """(type, raw value) → person id, for many identifiers in a few queries (a list upload)."""
    wanted: dict[str, tuple[str, str]] = {}
    for kind, value in pairs:
        normal = normalize(kind, value)
        if normal is not None:
            wanted[key_hash(hash_key, f"{kind}:{normal}")] = (kind, value)
    found: dict[tuple[str, str], str] = {}
    hashes = list(wanted)
    for start in range(0, len(hashes), 5000):
        chunk = hashes[start : start + 5000]
        for digest, person_id in db_session.execute(
            select(Identifier.key_hash, Identifier.person_id).where(Identifier.key_hash.in_(chunk))
        ):
            found[wanted[digest]] = person_id
    return found


def masked_identifiers(*, db_session: Session, person_ids: list[str]) -> dict[str, list[str]]:
    """Each person's identifiers as ``type:masked`` (138****5678), ordered by type."""
    found: dict[str, list[str]] = {}
    for start in range(0, len(person_ids), 5000):
        chunk = person_ids[start : start + 5000]
        for person_id, kind, masked in db_session.execute(
            select(Identifier.person_id, Identifier.type, Identifier.masked)
            .where(Identifier.person_id.in_(chunk))
            .order_by(Identifier.person_id, Identifier.type, Identifier.id)
        ):
            found.setdefault(person_id, []).append(f"{kind}:{masked}")
    return found


def identifiers_of(*, db_session: Session, person_id: str) -> list[Identifier]:
    return list(
        db_session.scalars(
            select(Identifier)
            .where(Identifier.person_id == person_id)
            .order_by(Identifier.type, Identifier.first_seen, Identifier.id)
        )
    )


def list_merges(
    *, db_session: Session, person_id: str | None = None, limit: int = 50
) -> list[MergeLog]:
    query = select(MergeLog).order_by(MergeLog.id.desc()).limit(limit)
    if person_id:
        query = query.where((MergeLog.person_id == person_id) | (MergeLog.merged_id == person_id))
    return list(db_session.scalars(query))


def unmerge(*, db_session: Session, merge_id: int) -> MergeLog:
    """Undo a merge: the merged person is restored with the identifiers it brought.

    The merge is marked undone; later resolutions keep the two sides apart.
    """
    merge = db_session.get(MergeLog, merge_id)
    if merge is None:
        raise NotFoundError(N_("No merge {merge_id}"), merge_id=merge_id)
    if merge.undone_at is not None:
        return merge
    db_session.execute(update(Person).where(Person.id == merge.merged_id).values(merged_into=None))
    moved: Iterable[str] = merge.evidence.get("identifiers", [])
    for start in range(0, len(list(moved)), 500):
        chunk = list(moved)[start : start + 500]
        db_session.execute(
            update(Identifier)
            .where(Identifier.key_hash.in_(chunk))
            .values(person_id=merge.merged_id)
        )
    merge.undone_at = utcnow()
    db_session.flush()
    return merge


def events_of(events: EventStore, person_id: str) -> Any:
    """One person's events (Ibis): those whose user or device key maps to them, and the events
    siyu recorded about them (tier changes, segment entries, exposures)."""
    table = events.table()
    if not events.has_table(IDENTITY_MAP_TABLE):
        return table.filter(ibis.literal(False))
    identity = events.table(IDENTITY_MAP_TABLE)
    keys = identity.filter(identity.person_id == person_id).key
    return table.filter(
        table.user_id.isin(keys)
        | ("anonymous_id:" + table.anonymous_id).isin(keys)
        | (table.user_id == f"{ONEID_PREFIX}{person_id}")  # what siyu recorded about them
    )


def events_of_people(events: EventStore, person_ids: list[str], table: Any = None) -> Any:
    """The events (or ``table``, a filtered view of them) of a few people, with ``person_id``
    resolved: their keys are looked up first, so only their rows are joined."""
    table = events.table() if table is None else table
    if not events.has_table(IDENTITY_MAP_TABLE) or not person_ids:
        return person_events(events, table.filter(ibis.literal(False)))
    identity = events.table(IDENTITY_MAP_TABLE)
    keys = identity.filter(identity.person_id.isin(person_ids)).key.to_pyarrow().to_pylist()
    named = [f"{ONEID_PREFIX}{pid}" for pid in person_ids]
    mine = table.filter(
        table.user_id.isin([*keys, *named]) | ("anonymous_id:" + table.anonymous_id).isin(keys)
    )
    return person_events(events, mine)


def raw_identifiers(events: EventStore, person_id: str) -> list[str]:
    """The person's identifiers as they arrived (``phone:13800138000``), from the identity map:
    unmasked, so only for readers allowed to see them. Sorted by type, then value."""
    if not events.has_table(IDENTITY_MAP_TABLE):
        return []
    identity = events.table(IDENTITY_MAP_TABLE)
    keys = identity.filter(identity.person_id == person_id).key.to_pyarrow().to_pylist()
    return sorted({str(key) for key in keys if key})


def revealed_identifiers(events: EventStore, hash_key: bytes, person_id: str) -> dict[str, str]:
    """Blind index (``Identifier.key_hash``) → the raw value, for the person's identifiers:
    unmasked, so only for readers allowed to see them."""
    revealed: dict[str, str] = {}
    for key in raw_identifiers(events, person_id):
        kind, _, value = key.partition(":")
        if kind == "custom":
            name, _, value = value.partition(":")
            kind = f"custom:{name}"
        normal = normalize(kind, value)
        if normal is not None:
            revealed[key_hash(hash_key, f"{kind}:{normal}")] = value
    return revealed
