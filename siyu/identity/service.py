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
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.core.errors import NotFoundError
from siyu.core.i18n import N_
from siyu.core.ids import new_id
from siyu.events import EventStore
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


def resolve(
    *, db_session: Session, events: EventStore, hash_key: bytes, rules: IdentityRules | None = None
) -> ResolveSummary:
    started = time.perf_counter()
    rules = rules or IdentityRules()
    tables = identity_tables(events.table(), hash_prefix=hash_key.hex())
    nodes = tables["nodes"].to_pandas()
    links = tables["links"].to_pandas()
    keys = pd.Index(nodes["key"])
    kinds = nodes["kind"].to_numpy()
    hashes = nodes["key_hash"].to_numpy()
    a = keys.get_indexer(links["a"]).astype(np.int64)
    b = keys.get_indexer(links["b"]).astype(np.int64)

    a, b, shared = _drop_shared_devices(a, b, kinds, rules.shared_device_limit)
    rank = np.maximum(_priorities(kinds[a]), _priorities(kinds[b])) if len(a) else a
    label_node, label_family, label_value = _labels(db_session, kinds, hashes, rules)
    comp, splits = graph.components(len(keys), a, b, rank, label_node, label_family, label_value)

    person_of_node, new_people, merges = _assign_people(db_session, comp, hashes, kinds, nodes)
    _store_identifiers(db_session, nodes, kinds, hashes, person_of_node)
    _publish_map(events, tables["spellings"], keys, person_of_node, shared)
    return ResolveSummary(
        identifiers=len(keys),
        people=len(np.unique(person_of_node)) if len(keys) else 0,
        new_people=new_people,
        merges=merges,
        splits=splits,
        shared_devices=int(shared.sum()),
        invalid_values=tables["invalid"],
        seconds=round(time.perf_counter() - started, 3),
    )


def _priorities(kinds: np.ndarray) -> np.ndarray:
    return np.array([priority(k) for k in kinds], dtype=np.int64)


def _drop_shared_devices(
    a: np.ndarray, b: np.ndarray, kinds: np.ndarray, limit: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Remove every link of a device seen with more than ``limit`` non-device identifiers."""
    is_device = np.isin(kinds, DEVICE_TYPES)
    shared = np.zeros(len(kinds), dtype=bool)
    if len(a) == 0:
        return a, b, shared
    ends = np.concatenate([np.stack([a, b], 1), np.stack([b, a], 1)])
    device_to_other = ends[is_device[ends[:, 0]] & ~is_device[ends[:, 1]]]
    if len(device_to_other):
        pairs = np.unique(device_to_other, axis=0)
        devices, counts = np.unique(pairs[:, 0], return_counts=True)
        shared[devices[counts > limit]] = True
    keep = ~(shared[a] | shared[b])
    return a[keep], b[keep], shared


def _labels(
    db_session: Session, kinds: np.ndarray, hashes: np.ndarray, rules: IdentityRules
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exclusion labels: each value of a type limited to one per person, and both sides of
    every undone merge (so an unmerge is never silently redone)."""
    nodes, families, values = [], [], []
    for family, (kind, limit) in enumerate(sorted(rules.limits.items())):
        if limit == 1:
            members = np.flatnonzero(kinds == kind)
            nodes.append(members)
            families.append(np.full(len(members), family))
            values.append(members)
    position = {h: i for i, h in enumerate(hashes)}
    undone = db_session.scalars(select(MergeLog).where(MergeLog.undone_at.is_not(None))).all()
    for merge in undone:
        for side, field in ((0, "kept_identifiers"), (1, "identifiers")):
            found = [position[h] for h in merge.evidence.get(field, []) if h in position]
            nodes.append(np.array(found, dtype=np.int64))
            families.append(np.full(len(found), _SPLIT_FAMILY_BASE + merge.id))
            values.append(np.full(len(found), side))
    if not nodes:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return (
        np.concatenate(nodes).astype(np.int64),
        np.concatenate(families).astype(np.int64),
        np.concatenate(values).astype(np.int64),
    )


def _active_people(db_session: Session) -> dict[str, tuple[Any, str]]:
    """person id → (created_at, id) for people not merged into anyone."""
    rows = db_session.execute(
        select(Person.id, Person.created_at).where(Person.merged_into.is_(None))
    ).all()
    return {pid: (created, pid) for pid, created in rows}


def _assign_people(
    db_session: Session,
    comp: np.ndarray,
    hashes: np.ndarray,
    kinds: np.ndarray,
    nodes: pd.DataFrame,
) -> tuple[np.ndarray, int, int]:
    """Give every component a person: the one most of its identifiers had, merging others in."""
    known = dict(db_session.execute(select(Identifier.key_hash, Identifier.person_id)).all())
    canonical = _canonical_people(db_session)
    previous = np.array([canonical.get(known.get(h, ""), "") for h in hashes], dtype=object)
    frame = pd.DataFrame({"comp": comp, "old": previous})
    owned = frame[frame["old"] != ""]
    # A previous person keeps its id in the component holding most of its identifiers.
    sizes = owned.groupby(["old", "comp"]).size().reset_index(name="n")
    sizes = sizes.sort_values(["old", "n", "comp"], ascending=[True, False, True])
    home = sizes.drop_duplicates("old")
    active = _active_people(db_session)
    person_of_comp: dict[int, str] = {}
    merges = 0
    for comp_id, olds in home.groupby("comp")["old"]:
        number = int(str(comp_id))
        candidates = sorted(olds, key=lambda p: active.get(p, (utcnow(), p)))
        survivor, absorbed = candidates[0], candidates[1:]
        person_of_comp[number] = survivor
        for merged in absorbed:
            _merge(db_session, survivor, merged, frame, hashes, kinds, number)
            merges += 1
    person_by_comp = np.empty(int(comp.max()) + 1 if len(comp) else 0, dtype=object)
    for number, person_id in person_of_comp.items():
        person_by_comp[number] = person_id
    fresh = np.flatnonzero(pd.isna(person_by_comp))
    person_by_comp[fresh] = new_person_ids(len(fresh))
    now = utcnow()
    bulk_insert(
        db_session,
        Person.__tablename__,
        pa.table(
            {
                "id": pa.array(person_by_comp[fresh].tolist(), pa.string()),
                "created_at": pa.array([now] * len(fresh), pa.timestamp("us", tz="UTC")),
            }
        ),
    )
    return person_by_comp[comp], len(fresh), merges


def new_person_ids(count: int) -> np.ndarray:
    """``count`` new OneIDs: ``p_`` + the time (as in :func:`siyu.core.ids.new_id`) + 64
    random bits, made in one vectorised step."""
    stamp = new_id("p")[:12]
    random = np.frombuffer(secrets.token_bytes(8 * count), dtype=np.uint64)
    return np.char.add(stamp, np.char.mod("%016x", random)).astype(object)


def _canonical_people(db_session: Session) -> dict[str, str]:
    """Every person id → the active person it ends at after following merges."""
    pointers = dict(db_session.execute(select(Person.id, Person.merged_into)).all())

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
    frame: pd.DataFrame,
    hashes: np.ndarray,
    kinds: np.ndarray,
    comp_id: int,
) -> None:
    mine = frame.index[(frame["comp"] == comp_id) & (frame["old"] == merged)].to_numpy()
    kept = frame.index[(frame["comp"] == comp_id) & (frame["old"] == survivor)].to_numpy()
    db_session.execute(update(Person).where(Person.id == merged).values(merged_into=survivor))
    db_session.add(
        MergeLog(
            person_id=survivor,
            merged_id=merged,
            rule="shared_identifier",
            evidence={
                "identifiers": [hashes[i] for i in mine],
                "kept_identifiers": [hashes[i] for i in kept],
                "types": sorted({str(kinds[i]) for i in mine}),
                "kept_types": sorted({str(kinds[i]) for i in kept}),
            },
        )
    )


def _store_identifiers(
    db_session: Session,
    nodes: pd.DataFrame,
    kinds: np.ndarray,
    hashes: np.ndarray,
    person_of_node: np.ndarray,
) -> None:
    """Insert new identifiers in bulk; move the few whose person changed."""
    existing = dict(db_session.execute(select(Identifier.key_hash, Identifier.person_id)).all())
    known = np.array([h in existing for h in hashes], dtype=bool)
    new = np.flatnonzero(~known)
    bulk_insert(
        db_session,
        Identifier.__tablename__,
        pa.table(
            {
                "type": pa.array(kinds[new].tolist(), pa.string()),
                "key_hash": pa.array(hashes[new].tolist(), pa.string()),
                "masked": pa.array(nodes["masked"].to_numpy()[new].tolist(), pa.string()),
                "person_id": pa.array(person_of_node[new].tolist(), pa.string()),
                "first_seen": pa.array(nodes["first_seen"].iloc[new], pa.timestamp("us", "UTC")),
                "last_seen": pa.array(nodes["last_seen"].iloc[new], pa.timestamp("us", "UTC")),
            }
        ),
    )
    last = nodes["last_seen"].tolist()
    for i in np.flatnonzero(known):
        if existing[hashes[i]] != person_of_node[i]:
            db_session.execute(
                update(Identifier)
                .where(Identifier.key_hash == hashes[i])
                .values(person_id=person_of_node[i], last_seen=last[i])
            )
    db_session.flush()


def _publish_map(
    events: EventStore,
    spellings: pa.Table,
    keys: pd.Index,
    person_of_node: np.ndarray,
    shared: np.ndarray,
) -> None:
    """Write ``identity_map`` (raw key as in events → person) for read-time resolution."""
    usable = ~shared
    by_key = pd.Series(person_of_node[usable], index=keys[usable])
    raw = spellings.to_pandas()
    raw["person_id"] = by_key.reindex(raw["key"]).to_numpy()
    raw = raw.dropna(subset=["person_id"]).drop_duplicates("raw_key")
    table = pa.table(
        {
            "key": pa.array(raw["raw_key"].tolist(), pa.string()),
            "person_id": pa.array(raw["person_id"].tolist(), pa.string()),
        }
    )
    events.replace_table(IDENTITY_MAP_TABLE, table)


# -- reading ------------------------------------------------------------------------------


def person_events(events: EventStore) -> Any:
    """The events table with ``person_id`` resolved through the identity map (Ibis)."""
    table = events.table()
    if not events.has_table(IDENTITY_MAP_TABLE):
        return table.mutate(person_id=ibis.null(str))
    identity = events.table(IDENTITY_MAP_TABLE)
    by_user = identity.rename(user_person="person_id", user_key="key")
    by_device = identity.rename(device_person="person_id", device_key="key")
    joined = table.left_join(by_user, table.user_id == by_user.user_key).left_join(
        by_device, ("anonymous_id:" + table.anonymous_id) == by_device.device_key
    )
    return joined.mutate(person_id=joined.user_person.coalesce(joined.device_person)).drop(
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
    """One person's events (Ibis): those whose user or device key maps to them."""
    table = events.table()
    if not events.has_table(IDENTITY_MAP_TABLE):
        return table.filter(ibis.literal(False))
    identity = events.table(IDENTITY_MAP_TABLE)
    keys = identity.filter(identity.person_id == person_id).key
    return table.filter(
        table.user_id.isin(keys) | ("anonymous_id:" + table.anonymous_id).isin(keys)
    )
