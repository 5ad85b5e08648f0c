"""What the event store says about identifiers, computed set-at-a-time through Ibis.

Every event contributes the identifiers it carries: ``user_id`` (a typed key ``type:value``),
``anonymous_id``, and each entry of its ``identifiers`` object. Identifiers seen in the same
event are linked. The result is three small tables: the distinct normalised identifiers (with
first and last sighting), the links between them, and every raw spelling used in events with
its identifier (for the read-time identity map). Raw values repeat across millions of events,
so they are grouped first and normalised, hashed and masked once each.
"""

from __future__ import annotations

import json
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from siyu.events.schema import ONEID_PREFIX
from siyu.identity.rules import EMAIL_PATTERN, KNOWN_TYPES

NULL_TEXT = ibis.null(str)
_IDENTIFIERS = dt.Struct(dict.fromkeys(KNOWN_TYPES, dt.json))
_IDENTIFIERS_SHAPE = json.dumps(dict.fromkeys(KNOWN_TYPES, "JSON"))


def _json_struct(value: dt.JSON, shape: str) -> _IDENTIFIERS:  # type: ignore[valid-type]
    """DuckDB's lenient JSON → struct: a missing or mistyped field is NULL, not an error."""


# One parse of the identifiers object per event instead of one per identifier type.
_json_transform = ibis.udf.scalar.builtin(_json_struct, name="json_transform")


def _normalized(kind: ir.StringValue, value: ir.StringValue) -> ir.StringValue:
    """The Ibis twin of :func:`siyu.identity.rules.normalize`."""
    text = value.re_replace(r"^[ \t\r\n]+|[ \t\r\n]+$", "")
    digits = text.re_replace(r"[^0-9+]", "")
    phone = ibis.cases(
        (digits.startswith("+86") & (digits.length() == 14), digits),
        (
            digits.startswith("86") & (digits.length() == 13) & (digits.substr(2, 1) == "1"),
            "+" + digits,
        ),
        ((digits.length() == 11) & digits.startswith("1"), "+86" + digits),
        (
            digits.startswith("+")
            & digits.length().between(9, 16)
            & ~digits.substr(1).contains("+"),
            digits,
        ),
        else_=NULL_TEXT,
    )
    email = ibis.cases((text.lower().re_search(EMAIL_PATTERN), text.lower()), else_=NULL_TEXT)
    normal = ibis.cases((kind == "phone", phone), (kind == "email", email), else_=text)
    return ibis.cases(
        (text.isnull() | (text.length() == 0) | (text.length() > 256), NULL_TEXT), else_=normal
    )


def _rich_events(events: ir.Table) -> ir.Table:
    """The rich events (with ``identifiers``, or alias calls), one row each, with every
    identifier they carry in its own column.

    Events with ``identifiers`` and alias calls are read apart, each by a filter the scan
    can apply itself, so the bulky ``properties`` are only read for aliases."""
    with_ids = events.filter(events.identifiers.notnull() & (events.name != "alias"))
    aliases = events.filter(events.name == "alias")
    return ibis.union(_identifier_columns(with_ids, alias=False), _identifier_columns(aliases))


def _identifier_columns(events: ir.Table, *, alias: bool = True) -> ir.Table:
    colon = events.user_id.find(":")
    # Segment's alias: ``previousId`` is the id the person had before (usually their anonymous
    # id, or an earlier user id sent as TYPE:VALUE); it links to the alias call's user_id.
    previous = events.properties["previous_id"].str if alias else NULL_TEXT
    typed = previous.find(":") > 0
    ids = _json_transform(events.identifiers, _IDENTIFIERS_SHAPE)
    return events.select(
        grp=events.event_id,
        ts=events.ts,
        user_kind=events.user_id.substr(0, colon),
        user_value=ibis.cases((colon > 0, events.user_id.substr(colon + 1)), else_=NULL_TEXT),
        anonymous_id=events.anonymous_id,
        alias_kind=ibis.cases(
            (typed, previous.substr(0, previous.find(":"))), else_="anonymous_id"
        ),
        alias_value=ibis.cases((typed, previous.substr(previous.find(":") + 1)), else_=previous),
        **{f"id_{kind}": ids[kind].str for kind in KNOWN_TYPES},
    )


def sightings(rich: ir.Table) -> ir.Table:
    """One row per (rich event, identifier): group (the event id), kind, raw value, ts, and
    whether the raw ``kind:value`` is how events spell it (``user_id``, ``anonymous_id:`` +
    anonymous id). ``rich`` is :func:`_rich_events`."""
    columns: list[tuple[ir.StringValue, ir.StringValue, bool]] = [
        (rich.user_kind, rich.user_value, True),
        (ibis.literal("anonymous_id"), rich.anonymous_id, True),
        (rich.alias_kind, rich.alias_value, False),
    ]
    columns += [(ibis.literal(kind), rich[f"id_{kind}"], False) for kind in KNOWN_TYPES]
    parts = [
        rich.filter(value.notnull()).select(
            grp=rich.grp, kind=kind, value=value, spelled=ibis.literal(spelled), ts=rich.ts
        )
        for kind, value, spelled in columns
    ]
    return ibis.union(*parts, distinct=False)


def _raw_values(events: ir.Table, extra: ir.Table) -> ir.Table:
    """Raw (kind, value) pairs with their first and last sighting, how many sightings, and
    whether events spell them as a key. ``user_id`` and ``anonymous_id`` are grouped straight
    from the events; ``extra`` holds the other sightings (identifiers, aliases). A pair is
    distinct within each of these three sources, not across them."""
    users = events.filter(events.user_id.notnull(), ~events.user_id.startswith(ONEID_PREFIX))
    users = users.group_by(users.user_id).aggregate(
        first_seen=users.ts.min(), last_seen=users.ts.max(), n=users.count()
    )
    colon = users.user_id.find(":")
    devices = events.filter(events.anonymous_id.notnull())
    devices = devices.group_by(devices.anonymous_id).aggregate(
        first_seen=devices.ts.min(), last_seen=devices.ts.max(), n=devices.count()
    )
    parts = [
        users.filter(colon > 0).select(
            kind=users.user_id.substr(0, colon),
            value=users.user_id.substr(colon + 1),
            first_seen=users.first_seen,
            last_seen=users.last_seen,
            n=users.n,
            spelled=ibis.literal(True),
        ),
        devices.select(
            kind=ibis.literal("anonymous_id"),
            value=devices.anonymous_id,
            first_seen=devices.first_seen,
            last_seen=devices.last_seen,
            n=devices.n,
            spelled=ibis.literal(True),
        ),
        extra.group_by(["kind", "value"]).aggregate(
            first_seen=extra.ts.min(),
            last_seen=extra.ts.max(),
            n=extra.count(),
            spelled=extra.spelled.any(),
        ),
    ]
    return ibis.union(*parts, distinct=False)


def _masked(kind: ir.StringValue, key: ir.StringValue) -> ir.StringValue:
    """The Ibis twin of :func:`siyu.identity.rules.mask`."""
    value = key.substr(kind.length() + 1)
    local = ibis.cases(
        (value.startswith("+86"), value.substr(3)), else_=value.re_replace(r"^\++", "")
    )
    at = value.find("@")
    phone = ibis.cases(
        (local.length() >= 7, local.substr(0, 3) + "****" + local.right(4)), else_="****"
    )
    email = value.substr(0, 1) + "***@" + value.substr(at + 1)
    other = ibis.cases(
        (value.length() <= 8, value.substr(0, 2) + "****"),
        else_=value.substr(0, 4) + "****" + value.right(4),
    )
    return ibis.cases((kind == "phone", phone), (kind == "email", email), else_=other)


def identity_tables(events: ir.Table, hash_prefix: str = "") -> dict[str, Any]:
    """Nodes, links between them, raw spellings and the count of invalid values, as Arrow.

    ``nodes`` (kind, key_hash, masked, first_seen, last_seen) are ordered by kind and key
    hash; a node's number is its row. ``links`` (a, b) and ``spellings`` (raw_key, node) refer to
    nodes by number. Each raw value is normalised once, however many events carry it.
    """
    rich = _rich_events(events).cache()
    linking = sightings(rich).cache()
    rich.release()
    raw = _raw_values(events, linking.filter(~linking.spelled))
    raw = raw.mutate(key=raw.kind + ":" + _normalized(raw.kind, raw.value)).cache()
    cached = [linking, raw]
    try:
        valid = raw.filter(raw.key.notnull())
        # The key starts with the kind, so grouping by the key alone is enough.
        nodes = valid.group_by(valid.key).aggregate(
            kind=valid.kind.arbitrary(),
            first_seen=valid.first_seen.min(),
            last_seen=valid.last_seen.max(),
        )
        nodes = nodes.mutate(key_hash=(ibis.literal(hash_prefix) + nodes.key).hexdigest("sha256"))
        # Numbered in the order of the store's (type, key_hash) index, so that writing them
        # in node order appends to that index.
        number = ibis.row_number().over(order_by=[nodes.kind, nodes.key_hash])
        cached.append(nodes := nodes.mutate(node=number.cast("int64")).cache())
        # Every raw spelling with its node.
        numbered = valid.join(nodes, "key").select(
            valid.kind, valid.value, valid.spelled, nodes.key, nodes.node
        )
        cached.append(numbered := numbered.cache())
        return {
            "nodes": _node_columns(nodes).to_pyarrow(),
            "links": _links(events, linking, numbered).to_pyarrow(),
            "spellings": numbered.filter(numbered.spelled)
            .select(raw_key=numbered.kind + ":" + numbered.value, node=numbered.node)
            .distinct()
            .to_pyarrow(),
            "invalid": int(raw.filter(raw.key.isnull()).n.sum().fill_null(0).execute()),
        }
    finally:
        for table in cached:
            table.release()


def _node_columns(nodes: ir.Table) -> ir.Table:
    return nodes.order_by(nodes.node).select(
        "kind",
        "key_hash",
        masked=_masked(nodes.kind, nodes.key),
        first_seen=nodes.first_seen,
        last_seen=nodes.last_seen,
    )


def _links(events: ir.Table, linking: ir.Table, numbered: ir.Table) -> ir.Table:
    """Every node seen in an event is linked to the event's first node (by key).

    Most events that link anything carry just a ``user_id`` and an ``anonymous_id``: those
    are reduced to their distinct pairs first. The rest go through their sightings."""
    grouped = linking.join(numbered, ["kind", "value"]).select("grp", "key", "node").distinct()
    hub = grouped.group_by("grp").aggregate(hub=grouped.node.argmin(grouped.key))
    joined = grouped.join(hub, "grp")
    from_rich = joined.filter(joined.node != joined.hub).select(a=joined.hub, b=joined.node)

    plain = events.filter(
        events.user_id.notnull()
        & events.anonymous_id.notnull()
        & events.identifiers.isnull()
        & (events.name != "alias")
    )
    pairs = plain.select(plain.user_id, plain.anonymous_id).distinct()
    colon = pairs.user_id.find(":")
    pairs = pairs.filter(colon > 0).select(
        kind=pairs.user_id.substr(0, colon),
        value=pairs.user_id.substr(colon + 1),
        device=pairs.anonymous_id,
    )
    users = numbered.select(
        kind=numbered.kind, value=numbered.value, user_key=numbered.key, user_node=numbered.node
    )
    devices = numbered.filter(numbered.kind == "anonymous_id").select(
        device=numbered.value, device_key=numbered.key, device_node=numbered.node
    )
    both = pairs.join(users, ["kind", "value"]).join(devices, "device")
    both = both.filter(both.user_node != both.device_node)
    user_first = both.user_key < both.device_key
    from_pairs = both.select(
        a=ibis.cases((user_first, both.user_node), else_=both.device_node),
        b=ibis.cases((user_first, both.device_node), else_=both.user_node),
    )
    return ibis.union(from_rich, from_pairs, distinct=True)
