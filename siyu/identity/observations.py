"""What the event store says about identifiers, computed set-at-a-time through Ibis.

Every event contributes the identifiers it carries: ``user_id`` (a typed key ``type:value``),
``anonymous_id``, and each entry of its ``identifiers`` object. Identifiers seen in the same
event are linked. The result is three small tables: the distinct normalised identifiers (with
first and last sighting), the links between them, and every raw spelling used in events with
its normalised key (for the read-time identity map).
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from siyu.identity.rules import EMAIL_PATTERN, KNOWN_TYPES

NULL_TEXT = ibis.null(str)


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


def sightings(events: ir.Table) -> ir.Table:
    """One row per (event, identifier): group, kind, raw value, raw key, ts."""
    with_user = events.filter(events.user_id.notnull())
    colon = with_user.user_id.find(":")
    parts = [
        with_user.filter(colon > 0).select(
            grp=with_user.event_id,
            kind=with_user.user_id.substr(0, colon),
            value=with_user.user_id.substr(colon + 1),
            raw_key=with_user.user_id,
            ts=with_user.ts,
        ),
    ]
    anonymous = events.filter(events.anonymous_id.notnull())
    parts.append(
        anonymous.select(
            grp=anonymous.event_id,
            kind=ibis.literal("anonymous_id"),
            value=anonymous.anonymous_id,
            raw_key="anonymous_id:" + anonymous.anonymous_id,
            ts=anonymous.ts,
        )
    )
    # Segment's alias: ``previousId`` is the id the person had before (usually their anonymous
    # id, or an earlier user id sent as TYPE:VALUE); it links to the alias call's user_id.
    alias = events.filter((events.name == "alias") & events.properties.notnull())
    previous = alias.properties["previous_id"].str
    typed = previous.find(":") > 0
    parts.append(
        alias.filter(previous.notnull()).select(
            grp=alias.event_id,
            kind=ibis.cases((typed, previous.substr(0, previous.find(":"))), else_="anonymous_id"),
            value=ibis.cases((typed, previous.substr(previous.find(":") + 1)), else_=previous),
            raw_key=NULL_TEXT,
            ts=alias.ts,
        )
    )
    linked = events.filter(events.identifiers.notnull())
    for kind in KNOWN_TYPES:
        value = linked.identifiers[kind].str
        parts.append(
            linked.filter(value.notnull()).select(
                grp=linked.event_id,
                kind=ibis.literal(kind),
                value=value,
                raw_key=NULL_TEXT,
                ts=linked.ts,
            )
        )
    union = ibis.union(*parts, distinct=False)
    normal = _normalized(union.kind, union.value)
    return union.mutate(key=union.kind + ":" + normal, valid=normal.notnull())


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
    """Nodes (with their blind index and masked form), links, raw spellings and the count of
    invalid values, as Arrow tables."""
    seen = sightings(events).cache()
    try:
        valid = seen.filter(seen.valid)
        nodes = valid.group_by([valid.kind, valid.key]).aggregate(
            first_seen=valid.ts.min(), last_seen=valid.ts.max()
        )
        nodes = nodes.mutate(
            key_hash=(ibis.literal(hash_prefix) + nodes.key).hexdigest("sha256"),
            masked=_masked(nodes.kind, nodes.key),
        )
        per_group = valid.select("grp", "key").distinct()
        hub = per_group.group_by("grp").aggregate(hub=per_group.key.min())
        joined = per_group.join(hub, "grp")
        links = (
            joined.filter(joined.key != joined.hub).select(a=joined.hub, b=joined.key).distinct()
        )
        spellings = valid.filter(valid.raw_key.notnull()).select("raw_key", "key").distinct()
        invalid = seen.filter(~seen.valid).count()
        return {
            "nodes": nodes.to_pyarrow(),
            "links": links.to_pyarrow(),
            "spellings": spellings.to_pyarrow(),
            "invalid": int(invalid.execute()),
        }
    finally:
        seen.release()
