"""Tier schemes (分层): levels defined by rules over tags, moved with hysteresis.

A person's *target* tier is the first level whose rule holds. Moving up happens at once;
moving down only with a reason: no purchase for ``demote_after_days`` (to the target, flagged
for win-back) or no interaction for ``step_down_after_days`` (one level down). Otherwise the
tier is kept. Every change is a row of ``tier_history`` and a ``tier_changed`` event; the
current tiers are ``tier_current``. All set-at-a-time over ``tag_values``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from pydantic import BaseModel, Field, model_validator

from siyu.core.clock import utcnow
from siyu.core.errors import InvalidInputError, NotFoundError
from siyu.core.i18n import N_
from siyu.events import EventStore, system
from siyu.tags import service as tags
from siyu.tags.definitions import KEY_PATTERN
from siyu.tags.formula import FormulaScope, compile_formula, references

CURRENT_TABLE = "tier_current"
HISTORY_TABLE = "tier_history"


class TierLevel(BaseModel):
    key: str = Field(pattern=KEY_PATTERN)
    name_zh: str
    name_en: str
    rule: str = Field(min_length=1, max_length=2000)  # a tag formula that is true or false


class TierScheme(BaseModel):
    """Levels from the highest down; the last level's rule should hold for everybody."""

    key: str = Field(default="member_tier", pattern=KEY_PATTERN)
    name_zh: str = "会员等级"
    levels: list[TierLevel] = Field(min_length=2, max_length=20)
    demote_after_days: int = Field(default=90, ge=1, le=3650)
    step_down_after_days: int = Field(default=30, ge=1, le=3650)

    @model_validator(mode="after")
    def _unique_levels(self) -> TierScheme:
        keys = [level.key for level in self.levels]
        if len(set(keys)) != len(keys):
            raise ValueError("level keys must be unique")
        return self


DEFAULT_SCHEME = TierScheme(
    levels=[
        TierLevel(
            key="diamond",
            name_zh="钻石",
            name_en="Diamond",
            rule="net_amount_365d >= 5000 and coalesce(avg_repurchase_interval, 100000) <= 15",
        ),
        TierLevel(
            key="sapphire", name_zh="蓝宝石", name_en="Sapphire", rule="net_amount_365d >= 3000"
        ),
        TierLevel(
            key="platinum", name_zh="白金", name_en="Platinum", rule="net_amount_365d >= 1000"
        ),
        TierLevel(
            key="ordinary",
            name_zh="普通",
            name_en="Ordinary",
            rule="active_days_30d >= 3 or orders_count_365d > 0",
        ),
        TierLevel(key="prospect", name_zh="潜在", name_en="Prospect", rule="True"),
    ]
)

# How often operators should reach each RFM group (journeys read this for their caps).
TOUCH_FREQUENCY: dict[str, dict[str, Any]] = {
    "高价值": {"times": 3, "per": "week"},
    "潜力": {"times": 2, "per": "week"},
    "一般": {"times": 1, "per": "week"},
    "流失": {"times": 1, "per": "month"},
}
_NEEDED = {"days_since_last_order", "days_since_last_active"}


class TierRun(BaseModel):
    scheme: str
    people: int
    changes: int
    upgrades: int
    downgrades: int
    distribution: dict[str, int]
    as_of: datetime


def _rules(scheme: TierScheme, values: ir.Table, today: Any) -> list[ir.BooleanValue]:
    read = set().union(*(references(level.rule) for level in scheme.levels)) | _NEEDED
    missing = sorted(read - set(values.columns))
    if missing:
        raise InvalidInputError(
            N_("Tier rules read tags that have no values yet: {keys}"),
            keys=", ".join(missing),
            hint=N_("Run `siyu tags refresh` first."),
        )
    scope = FormulaScope({c: values[c] for c in values.columns}, values.person_id, today)
    return [compile_formula(level.rule, scope).fill_null(False) for level in scheme.levels]


def evaluate(
    events: EventStore,
    scheme: TierScheme = DEFAULT_SCHEME,
    *,
    tz: ZoneInfo,
    as_of: datetime | None = None,
) -> TierRun:
    """Move everybody between tiers and publish the result atomically."""
    if not events.has_table(tags.VALUES_TABLE):
        raise InvalidInputError(
            N_("Tier rules read tags that have no values yet: {keys}"),
            keys=tags.VALUES_TABLE,
            hint=N_("Run `siyu tags refresh` first."),
        )
    now = (as_of or utcnow()).astimezone(UTC)
    values = events.table(tags.VALUES_TABLE)
    rules = _rules(scheme, values, now.astimezone(tz).date())
    target = ibis.cases(
        *[(rule, rank) for rank, rule in enumerate(rules[:-1])], else_=len(rules) - 1
    )
    scored = values.select(
        "person_id",
        target=target,
        since_order=values.days_since_last_order,
        since_active=values.days_since_last_active,
    )
    previous = _current(events, scheme.key)
    joined = scored.left_join(previous, scored.person_id == previous.prev_person)
    moved = _move(joined, scheme)
    at = ibis.literal(now, "timestamp('UTC')")
    current = moved.select(
        scheme=ibis.literal(scheme.key),
        person_id="person_id",
        rank="rank",
        tier=_tier_key(moved["rank"], scheme),
        since=ibis.ifelse(moved.changed, at, moved.prev_since.cast("timestamp('UTC')")),
        win_back=moved.win_back,
    )
    changes = moved.filter(moved.changed).select(
        scheme=ibis.literal(scheme.key),
        person_id="person_id",
        from_tier=_tier_key(moved.prev_rank, scheme),
        to_tier=_tier_key(moved["rank"], scheme),
        reason="reason",
        win_back="win_back",
        changed_at=at,
    )
    if events.has_table(CURRENT_TABLE):
        others = events.table(CURRENT_TABLE)
        others = others.filter(others.scheme != scheme.key).mutate(
            since=others.since.cast("timestamp('UTC')")
        )
        current = others.union(current)
    events.materialize("tier_current_next", current)
    events.materialize("tier_changes_staging", changes)
    staged = events.table("tier_changes_staging")
    _emit_events(events, staged, scheme, now)
    events.publish(
        append={HISTORY_TABLE: staged},
        replace={CURRENT_TABLE: events.table("tier_current_next")},
        drop=["tier_current_next", "tier_changes_staging"],
    )
    return _summary(events, scheme, now)


def current_tiers(events: EventStore, scheme_key: str = "member_tier") -> ir.Table:
    """Each person's tier key now (``person_id``, ``tier``); empty before any evaluation."""
    if not events.has_table(CURRENT_TABLE):
        return ibis.memtable(
            pa.table({"person_id": pa.array([], pa.string()), "tier": pa.array([], pa.string())})
        )
    table = events.table(CURRENT_TABLE)
    return table.filter(table.scheme == scheme_key).select("person_id", tier=table.tier)


def _current(events: EventStore, scheme_key: str) -> ir.Table:
    if not events.has_table(CURRENT_TABLE):
        return ibis.memtable(
            pa.table(
                {
                    "prev_person": pa.array([], pa.string()),
                    "prev_rank": pa.array([], pa.int64()),
                    "prev_since": pa.array([], pa.timestamp("us", tz="UTC")),
                    "prev_win_back": pa.array([], pa.bool_()),
                }
            )
        )
    table = events.table(CURRENT_TABLE)
    mine = table.filter(table.scheme == scheme_key)
    return mine.select(
        prev_person="person_id",
        prev_rank=mine["rank"].cast("int64"),
        prev_since=mine.since.cast("timestamp('UTC')"),
        prev_win_back="win_back",
    )


def _move(joined: ir.Table, scheme: TierScheme) -> ir.Table:
    """Rank 0 is the highest tier. Up at once; down only for a reason (see module doc)."""
    target, prev = joined.target, joined.prev_rank
    lapsed = joined.since_order.isnull() | (joined.since_order >= scheme.demote_after_days)
    idle = joined.since_active.isnull() | (joined.since_active >= scheme.step_down_after_days)
    bottom = len(scheme.levels) - 1
    rank = ibis.cases(
        (prev.isnull(), target),
        (target <= prev, target),
        (lapsed, target),
        (idle, ibis.least(prev + 1, bottom)),
        else_=prev,
    )
    reason = ibis.cases(
        (prev.isnull(), "initial"),
        (target < prev, "qualified"),
        (target == prev, ibis.null(str)),
        (lapsed, "no_purchase"),
        (idle, "no_interaction"),
        else_=ibis.null(str),
    )
    win_back = ibis.cases(
        (prev.notnull() & (target > prev) & lapsed, True),
        (prev.notnull() & (target < prev), False),
        else_=joined.prev_win_back.fill_null(False),
    )
    changed = prev.isnull() | (rank != prev)
    return joined.mutate(rank=rank, reason=reason, win_back=win_back, changed=changed)


def _tier_key(rank: ir.IntegerValue, scheme: TierScheme) -> ir.StringValue:
    return rank.substitute(
        {i: level.key for i, level in enumerate(scheme.levels)}, else_=ibis.null(str)
    )


def _emit_events(events: EventStore, changes: ir.Table, scheme: TierScheme, now: datetime) -> None:
    """A ``tier_changed`` event per real change (not first assignments), once per run."""
    rows = changes.filter(changes.reason != "initial").to_pyarrow().to_pylist()
    stamp = now.strftime("%Y%m%dT%H%M%S")
    system.record(
        events,
        name="tier_changed",
        source="siyu.tiers",
        at=now,
        person_ids=[r["person_id"] for r in rows],
        properties=[
            {
                "scheme": scheme.key,
                "from": r["from_tier"],
                "to": r["to_tier"],
                "reason": r["reason"],
                "win_back": r["win_back"],
            }
            for r in rows
        ],
        id_parts=[f"{scheme.key}:{r['person_id']}:{stamp}" for r in rows],
    )


def _summary(events: EventStore, scheme: TierScheme, now: datetime) -> TierRun:
    current = events.table(CURRENT_TABLE)
    mine = current.filter(current.scheme == scheme.key)
    counts = mine.group_by("tier").aggregate(n=mine.count()).to_pyarrow().to_pylist()
    history = events.table(HISTORY_TABLE)
    run = history.filter(history.scheme == scheme.key, history.changed_at == now)
    order = {level.key: i for i, level in enumerate(scheme.levels)}
    moves = run.filter(run.reason != "initial").select("from_tier", "to_tier").to_pyarrow()
    ups = sum(
        1
        for a, b in zip(moves["from_tier"].to_pylist(), moves["to_tier"].to_pylist(), strict=True)
        if order[b] < order[a]
    )
    return TierRun(
        scheme=scheme.key,
        people=sum(int(c["n"]) for c in counts),
        changes=int(run.count().to_pyarrow().as_py()),
        upgrades=ups,
        downgrades=moves.num_rows - ups,
        distribution={str(c["tier"]): int(c["n"]) for c in counts},
        as_of=now,
    )


def movement_matrix(
    events: EventStore, scheme: TierScheme, start: datetime, end: datetime
) -> dict[str, dict[str, int]]:
    """How many people moved from each tier at ``start`` to each tier at ``end``."""
    if not events.has_table(HISTORY_TABLE):
        raise NotFoundError(N_("No tier history yet"), hint=N_("Run `siyu tiers evaluate`."))
    history = events.table(HISTORY_TABLE)
    mine = history.filter(history.scheme == scheme.key)

    def tier_at(moment: datetime, name: str) -> ir.Table:
        before = mine.filter(mine.changed_at <= moment)
        return before.group_by("person_id").aggregate(
            **{name: before.to_tier.argmax(before.changed_at)}
        )

    a = tier_at(start.astimezone(UTC), "from_tier")
    b = tier_at(end.astimezone(UTC), "to_tier")
    joined = b.left_join(a, b.person_id == a.person_id)
    pairs = (
        joined.group_by([joined.from_tier.fill_null("none").name("from_tier"), "to_tier"])
        .aggregate(n=joined.count())
        .to_pyarrow()
        .to_pylist()
    )
    matrix: dict[str, dict[str, int]] = {}
    for pair in pairs:
        matrix.setdefault(str(pair["from_tier"]), {})[str(pair["to_tier"])] = int(pair["n"])
    return matrix


def person_tier(
    events: EventStore, person_id: str, scheme_key: str = "member_tier"
) -> dict[str, Any] | None:
    if not events.has_table(CURRENT_TABLE):
        return None
    table = events.table(CURRENT_TABLE)
    rows = (
        table.filter(table.scheme == scheme_key, table.person_id == person_id)
        .to_pyarrow()
        .to_pylist()
    )
    return rows[0] if rows else None


def distribution(events: EventStore, scheme_key: str = "member_tier") -> dict[str, int]:
    """How many people hold each tier now (tier key → people); empty before any evaluation."""
    current = current_tiers(events, scheme_key)
    counts = current.group_by("tier").aggregate(n=current.count()).to_pyarrow().to_pylist()
    return {str(row["tier"]): int(row["n"]) for row in counts}


def person_history(
    events: EventStore, person_id: str, scheme_key: str = "member_tier", limit: int = 50
) -> list[dict[str, Any]]:
    """The person's tier changes, newest first (``from_tier``, ``to_tier``, ``reason``,
    ``changed_at``)."""
    if not events.has_table(HISTORY_TABLE):
        return []
    history = events.table(HISTORY_TABLE)
    mine = history.filter(history.scheme == scheme_key, history.person_id == person_id)
    rows: list[dict[str, Any]] = (
        mine.select("from_tier", "to_tier", "reason", "win_back", "changed_at")
        .order_by(ibis.desc("changed_at"))
        .limit(limit)
        .to_pyarrow()
        .to_pylist()
    )
    return rows


def load_scheme(home: Any) -> TierScheme:
    """The brand's scheme: ``SIYU_HOME/tiers.yaml`` if present, else the default scheme."""
    import yaml

    path = home / "tiers.yaml"
    if not path.exists():
        return DEFAULT_SCHEME
    try:
        return TierScheme.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, ValueError) as exc:
        raise InvalidInputError(
            N_("{path} is not a valid tier scheme: {reason}"), path=str(path), reason=str(exc)
        ) from None
