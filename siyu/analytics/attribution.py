"""Multi-touch attribution: which channels and campaigns brought each conversion.

A *touchpoint* is an event carrying a channel or campaign signal (a message click, an ad
click, UTM parameters, a mini-program or WeCom scene); its key is ``(channel, campaign)``
(:func:`touch_key`). Each conversion in the period is credited to the person's touchpoints in
the lookback window before it by six models side by side: first touch, last touch, linear,
time decay, position based (40/20/40) and the data-driven Markov-chain removal effect.
Conversions with no touchpoint are credited to :data:`DIRECT`.

The rule-based models are one set-at-a-time query (conversions joined to touchpoints, window
functions for rank, count and weights); the Markov model aggregates the transitions of every
path in the same engine and solves the small absorbing chain with numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, Field

from siyu.analytics.common import (
    Period,
    cached,
    check_event_names,
    done_by_people,
    parse_window,
    resolve_period,
    resolved_events,
)
from siyu.analytics.markov import CONVERSION, NULL, START, removal_effects, shares
from siyu.events import EventStore

DIRECT = "(direct)"
# Consecutive touchpoints of one person with the same key this close together are one visit.
SAME_VISIT = timedelta(minutes=30)
TOUCH_EVENTS_AD = "ad_click"
TOUCH_EVENTS_MESSAGE = "message_clicked"


class Model(StrEnum):
    first_touch = "first_touch"
    last_touch = "last_touch"
    linear = "linear"
    time_decay = "time_decay"
    position_based = "position_based"
    markov = "markov"


class RuleModel(StrEnum):
    """The models that credit each conversion on its own (ROI needs per-conversion credit)."""

    first_touch = "first_touch"
    last_touch = "last_touch"
    linear = "linear"
    time_decay = "time_decay"
    position_based = "position_based"


RULE_MODELS = tuple(Model(m.value) for m in RuleModel)


class AttributionQuery(BaseModel):
    """What to attribute: conversions in a period, the lookback window and the models."""

    model_config = ConfigDict(populate_by_name=True)

    start: date | None = Field(None, alias="from", description="First local day")
    end: date | None = Field(None, alias="to", description="Last local day")
    models: list[Model] | None = Field(
        None, max_length=len(Model), description="Models to run; all when omitted"
    )
    window: str = Field("30d", min_length=2, max_length=12, description="Lookback, e.g. 30d")
    half_life: str = Field("7d", min_length=2, max_length=12, description="Time-decay half-life")
    conversion: str = Field("order_paid", min_length=1, max_length=64)
    subtract_refunds: bool = Field(False, description="Net revenue of refunds (by order_id)")
    refund_event: str = Field("refund", min_length=1, max_length=64)


class Credit(BaseModel):
    conversions: float
    revenue: float


class AttributionRow(BaseModel):
    channel: str
    campaign: str | None = None
    credits: dict[Model, Credit]


class MarkovDetail(BaseModel):
    conversion_paths: int
    null_paths: int
    conversion_probability: float | None
    removal_effects: dict[str, float]


class AttributionResult(BaseModel):
    period: dict[str, str]
    conversion: str
    window_days: float
    half_life_days: float
    models: list[Model]
    conversions: int
    revenue: float
    touched_conversions: int
    direct: Credit
    channels: list[AttributionRow]
    campaigns: list[AttributionRow]
    markov: MarkovDetail | None = None


@dataclass(frozen=True)
class Setup:
    """A query checked and resolved: its period, durations and event names."""

    period: Period
    window: timedelta
    half_life: timedelta
    conversion: str
    subtract_refunds: bool
    refund_event: str
    models: tuple[Model, ...]


def prepare(events: EventStore, query: AttributionQuery, *, tz: ZoneInfo) -> Setup:
    window = parse_window(query.window, field="window")
    half_life = parse_window(query.half_life, field="half_life")
    check_event_names(events, [query.conversion], field="conversion")
    period = resolve_period(events, tz, query.start, query.end)
    models = tuple(dict.fromkeys(query.models)) if query.models else tuple(Model)
    return Setup(
        period,
        window,
        half_life,
        query.conversion,
        query.subtract_refunds,
        query.refund_event,
        models,
    )


# -- touchpoints -------------------------------------------------------------------------


def text_of(value: ir.StringValue) -> ir.StringValue:
    """Empty text as null."""
    return value.nullif("")


def _prop(table: ir.Table, key: str) -> ir.StringValue:
    return text_of(table.properties[key].str)


def touch_key(table: ir.Table) -> tuple[ir.StringValue, ir.StringValue]:
    """``(channel, campaign)`` of each event, the channel null when it is no touchpoint.

    In order of precedence: a ``message_clicked`` is (properties.channel or the event's
    channel, properties campaign_id/campaign/journey_id/journey or utm_campaign); an
    ``ad_click`` is (properties channel/source/platform or utm_source or "ad", properties
    campaign_id/campaign or utm_campaign); an event with ``utm_source`` or ``utm_campaign``
    is (utm_source or the event's channel, utm_campaign); an event with a ``scene`` is
    ("<channel>:<scene>", no campaign).
    """
    channel, utm_source, utm_campaign = (
        text_of(table.channel),
        text_of(table.utm_source),
        text_of(table.utm_campaign),
    )
    scene = text_of(table.scene)
    is_message = table.name == TOUCH_EVENTS_MESSAGE
    is_ad = table.name == TOUCH_EVENTS_AD
    has_utm = utm_source.notnull() | utm_campaign.notnull()
    source = ibis.cases(
        (is_message, ibis.coalesce(_prop(table, "channel"), channel, ibis.literal("message"))),
        (
            is_ad,
            ibis.coalesce(
                _prop(table, "channel"),
                _prop(table, "source"),
                _prop(table, "platform"),
                utm_source,
                ibis.literal("ad"),
            ),
        ),
        (has_utm, ibis.coalesce(utm_source, channel, ibis.literal("(unknown)"))),
        (scene.notnull(), channel.coalesce(ibis.literal("(unknown)")) + ":" + scene),
        else_=ibis.null(str),
    )
    campaign = ibis.cases(
        (
            is_message,
            ibis.coalesce(
                _prop(table, "campaign_id"),
                _prop(table, "campaign"),
                _prop(table, "journey_id"),
                _prop(table, "journey"),
                utm_campaign,
            ),
        ),
        (is_ad, ibis.coalesce(_prop(table, "campaign_id"), _prop(table, "campaign"), utm_campaign)),
        (has_utm, utm_campaign),
        else_=ibis.null(str),
    )
    return source, campaign


def touchpoints(events: EventStore, period: Period, window: timedelta) -> ir.Table:
    """The touchpoints that can credit a conversion in the period (person_id, touch_id,
    touch_ts, channel, campaign), a visit's repeats (same key within 30 minutes of the
    person's previous touchpoint) dropped."""
    table = resolved_events(
        events, period.offset, start=period.start_utc - window - SAME_VISIT, end=period.end_utc
    )
    source, campaign = touch_key(table)
    raw = table.filter(done_by_people(table)).select(
        person_id=table.person_id,
        touch_id=table.event_id,
        touch_ts=table.ts,
        channel=source,
        campaign=campaign,
    )
    raw = raw.filter(raw.channel.notnull())
    by_person = ibis.window(group_by=raw.person_id, order_by=[raw.touch_ts, raw.touch_id])
    previous = raw.mutate(
        prev_ts=raw.touch_ts.lag().over(by_person),
        prev_channel=raw.channel.lag().over(by_person),
        prev_campaign=raw.campaign.lag().over(by_person),
    )
    repeat = (
        previous.prev_ts.notnull()
        & (previous.prev_channel == previous.channel)
        & (previous.prev_campaign.coalesce("") == previous.campaign.coalesce(""))
        & (previous.touch_ts - previous.prev_ts <= ibis.interval(seconds=_seconds(SAME_VISIT)))
    )
    kept = previous.filter(~repeat)
    return kept.filter(kept.touch_ts >= period.start_utc - window).select(
        "person_id", "touch_id", "touch_ts", "channel", "campaign"
    )


def _seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())


def conversions(
    events: EventStore,
    setup: Setup,
    *,
    whole_history: bool = False,
) -> ir.Table:
    """The conversions in the period (or ever, with ``whole_history``): conversion_id,
    person_id, conv_ts, revenue (float; net of the order's refunds when asked, never below
    zero)."""
    period = setup.period
    table = resolved_events(
        events,
        period.offset,
        start=None if whole_history else period.start_utc,
        end=None if whole_history else period.end_utc,
        names=[setup.conversion],
    )
    revenue = table.amount.cast("float64").coalesce(0.0)
    converted = table.select(
        conversion_id=table.event_id,
        person_id=table.person_id,
        conv_ts=table.ts,
        order_id=table.order_id,
        revenue=revenue,
    )
    if not setup.subtract_refunds:
        return converted.drop("order_id")
    refunds = events.table()
    refunds = refunds.filter(refunds.name == setup.refund_event, refunds.order_id.notnull())
    refunded = refunds.group_by(refund_order=refunds.order_id).aggregate(
        refunded=refunds.amount.cast("float64").sum()
    )
    joined = converted.left_join(refunded, converted.order_id == refunded.refund_order)
    net = ibis.greatest(joined.revenue - joined.refunded.coalesce(0.0), 0.0)
    return joined.select("conversion_id", "person_id", "conv_ts", revenue=net)


def credited(events: EventStore, setup: Setup, convs: ir.Table | None = None) -> ir.Table:
    """One row per (conversion, touchpoint) with each rule-based model's weight (``w_<model>``,
    summing to 1 per conversion), plus one row per conversion without a touchpoint credited
    to :data:`DIRECT` with weight 1 in every model."""
    convs = conversions(events, setup) if convs is None else convs
    touches = touchpoints(events, setup.period, setup.window)
    joined = convs.join(
        touches,
        [
            convs.person_id == touches.person_id,
            touches.touch_ts <= convs.conv_ts,
            touches.touch_ts >= convs.conv_ts - ibis.interval(seconds=_seconds(setup.window)),
        ],
    ).select(
        convs.conversion_id,
        convs.person_id,
        convs.conv_ts,
        convs.revenue,
        touches.touch_id,
        touches.touch_ts,
        touches.channel,
        touches.campaign,
    )
    ordered = ibis.window(
        group_by=joined.conversion_id, order_by=[joined.touch_ts, joined.touch_id]
    )
    whole = ibis.window(group_by=joined.conversion_id)
    age = joined.conv_ts.epoch_seconds() - joined.touch_ts.epoch_seconds()
    decay = (-age.cast("float64") * (math.log(2) / setup.half_life.total_seconds())).exp()
    ranked = joined.mutate(
        pos=ibis.row_number().over(ordered),
        n=joined.touch_id.count().over(whole),
        decay=decay,
    )
    ranked = ranked.mutate(decay_total=ranked.decay.sum().over(whole))
    first, last, n = ranked.pos == 0, ranked.pos == ranked.n - 1, ranked.n.cast("float64")
    weights = ranked.select(
        "conversion_id",
        "person_id",
        "conv_ts",
        "revenue",
        "channel",
        "campaign",
        w_first_touch=ibis.ifelse(first, 1.0, 0.0),
        w_last_touch=ibis.ifelse(last, 1.0, 0.0),
        w_linear=1.0 / n,
        w_time_decay=ranked.decay / ranked.decay_total,
        w_position_based=ibis.cases(
            (ranked.n == 1, 1.0),
            (ranked.n == 2, 0.5),
            (first | last, 0.4),
            else_=0.2 / (n - 2.0),
        ),
    )
    direct = convs.anti_join(touches_of(weights), "conversion_id").select(
        "conversion_id",
        "person_id",
        "conv_ts",
        "revenue",
        channel=ibis.literal(DIRECT),
        campaign=ibis.null(str),
        **{f"w_{m.value}": ibis.literal(1.0) for m in RULE_MODELS},
    )
    return weights.union(direct)


def touches_of(weights: ir.Table) -> ir.Table:
    return weights.select("conversion_id").distinct()


# -- the Markov chain --------------------------------------------------------------------


def transitions(events: EventStore, setup: Setup, convs: ir.Table) -> ir.Table:
    """Counts of ``(from_state, to_state)`` over every path: each conversion's touchpoints in
    its window then ``(conversion)``; each person with touchpoints in the period and no
    conversion: those touchpoints then ``(null)``. States are ``channel\\x1fcampaign``."""
    period = setup.period
    touches = touchpoints(events, period, setup.window)
    state = touches.channel + "\x1f" + touches.campaign.coalesce("")
    touches = touches.mutate(state=state)
    window_s = _seconds(setup.window)
    converting = convs.join(
        touches,
        [
            convs.person_id == touches.person_id,
            touches.touch_ts <= convs.conv_ts,
            touches.touch_ts >= convs.conv_ts - ibis.interval(seconds=window_s),
        ],
    ).select(
        path=convs.conversion_id,
        touch_ts=touches.touch_ts,
        touch_id=touches.touch_id,
        state=touches.state,
        end=ibis.literal(CONVERSION),
    )
    in_period = touches.filter(touches.touch_ts >= period.start_utc)
    idle = in_period.anti_join(convs.select("person_id").distinct(), "person_id").select(
        path=in_period.person_id,
        touch_ts=in_period.touch_ts,
        touch_id=in_period.touch_id,
        state=in_period.state,
        end=ibis.literal(NULL),
    )
    paths = converting.union(idle)
    ordered = ibis.window(group_by=paths.path, order_by=[paths.touch_ts, paths.touch_id])
    stepped = paths.mutate(
        from_state=paths.state.lag().over(ordered).coalesce(START),
        following=paths.state.lead().over(ordered),
    )
    steps = stepped.select(from_state=stepped.from_state, to_state=stepped.state)
    ends = stepped.filter(stepped.following.isnull()).select(
        from_state=stepped.state, to_state=stepped.end
    )
    both = steps.union(ends)
    return both.group_by("from_state", "to_state").aggregate(count=both.count())


# -- the analysis ------------------------------------------------------------------------


def attribute(events: EventStore, query: AttributionQuery, *, tz: ZoneInfo) -> AttributionResult:
    """Every asked model's credit per channel and per campaign (cached per data version)."""
    setup = prepare(events, query, tz=tz)
    definition = {"query": query.model_dump(mode="json"), "period": setup.period.as_dict()}
    return cached(events, "attribution", definition, lambda: _attribute(events, setup))


def _attribute(events: EventStore, setup: Setup) -> AttributionResult:
    convs = conversions(events, setup)
    weights = credited(events, setup, convs)
    rule_models = [m for m in setup.models if m is not Model.markov]
    # Only the asked models' weights are summed (the engine then skips the others' window
    # functions); every conversion's weights sum to 1 in each model, so the totals come from
    # the same pass instead of another scan of the conversions.
    summed: list[Model] = list(rule_models) or [Model.linear]
    sums: dict[str, Any] = {}
    for rule in summed:
        weight = weights[f"w_{rule.value}"]
        sums[f"c_{rule.value}"] = weight.sum()
        sums[f"r_{rule.value}"] = (weight * weights.revenue).sum()
    by_key = weights.group_by("channel", "campaign").aggregate(**sums).to_pyarrow().to_pylist()
    first = summed[0].value
    total_n = round(sum(float(r[f"c_{first}"] or 0.0) for r in by_key))
    total_revenue = sum(float(r[f"r_{first}"] or 0.0) for r in by_key)
    direct_rows = [row for row in by_key if row["channel"] == DIRECT]
    direct = Credit(
        conversions=sum(r[f"c_{first}"] for r in direct_rows),
        revenue=_money(sum(r[f"r_{first}"] for r in direct_rows)),
    )
    touched_n = total_n - round(direct.conversions)
    touched_revenue = total_revenue - direct.revenue

    campaign_credit: dict[tuple[str, str | None], dict[Model, list[float]]] = {}
    for row in by_key:
        key = (row["channel"], row["campaign"])
        campaign_credit[key] = {
            model: [float(row[f"c_{model.value}"]), float(row[f"r_{model.value}"])]
            for model in rule_models
        }
    markov: MarkovDetail | None = None
    if Model.markov in setup.models:
        markov = _markov(events, setup, convs, campaign_credit, touched_n, touched_revenue)
        if DIRECT in {k[0] for k in campaign_credit}:
            campaign_credit[(DIRECT, None)][Model.markov] = [direct.conversions, direct.revenue]
    channel_credit: dict[str, dict[Model, list[float]]] = {}
    for (channel, _campaign), credits in campaign_credit.items():
        into = channel_credit.setdefault(channel, {})
        for model, (count, revenue) in credits.items():
            into.setdefault(model, [0.0, 0.0])
            into[model][0] += count
            into[model][1] += revenue
    return AttributionResult(
        period=setup.period.as_dict(),
        conversion=setup.conversion,
        window_days=setup.window.total_seconds() / 86400,
        half_life_days=setup.half_life.total_seconds() / 86400,
        models=list(setup.models),
        conversions=total_n,
        revenue=_money(total_revenue),
        touched_conversions=touched_n,
        direct=direct,
        channels=_rows({(c, None): v for c, v in channel_credit.items()}, setup.models),
        campaigns=_rows(campaign_credit, setup.models),
        markov=markov,
    )


def _markov(
    events: EventStore,
    setup: Setup,
    convs: ir.Table,
    credit: dict[tuple[str, str | None], dict[Model, list[float]]],
    touched_n: int,
    touched_revenue: float,
) -> MarkovDetail:
    """Credit touched conversions and revenue by normalised removal effects: per campaign
    from the chain over ``(channel, campaign)`` states, and per channel from the same paths
    read at the channel level (reported in ``removal_effects``)."""
    rows = transitions(events, setup, convs).to_pyarrow().to_pylist()
    by_state = {(r["from_state"], r["to_state"]): float(r["count"]) for r in rows}
    by_channel: dict[tuple[str, str], float] = {}
    for (source, target), count in by_state.items():
        pair = (source.split("\x1f", 1)[0], target.split("\x1f", 1)[0])
        by_channel[pair] = by_channel.get(pair, 0.0) + count
    probability, state_effects = removal_effects(by_state)
    _, channel_effects = removal_effects(by_channel)
    for state, share in shares(state_effects).items():
        channel, campaign = state.split("\x1f", 1)
        credits = credit.setdefault((channel, campaign or None), {})
        credits[Model.markov] = [touched_n * share, touched_revenue * share]
    channel_shares = shares(channel_effects)
    ends = {t: sum(c for (s, tt), c in by_state.items() if tt == t) for t in (CONVERSION, NULL)}
    detail = MarkovDetail(
        conversion_paths=int(ends[CONVERSION]),
        null_paths=int(ends[NULL]),
        conversion_probability=probability if rows else None,
        removal_effects={c: round(e, 6) for c, e in sorted(channel_effects.items())},
    )
    # Channel rows are summed from campaign rows; the channel-level chain is what a channel
    # is credited with, so each channel's campaign credits are rescaled to it.
    for channel, share in channel_shares.items():
        keys = [k for k in credit if k[0] == channel and Model.markov in credit[k]]
        summed = sum(credit[k][Model.markov][0] for k in keys)
        for key in keys:
            part = credit[key][Model.markov][0] / summed if summed > 0 else 1 / len(keys)
            credit[key][Model.markov] = [touched_n * share * part, touched_revenue * share * part]
    return detail


def _money(value: float) -> float:
    return round(float(value), 2)


def _rows(
    credit: dict[tuple[str, str | None], dict[Model, list[float]]], models: tuple[Model, ...]
) -> list[AttributionRow]:
    rows = [
        AttributionRow(
            channel=channel,
            campaign=campaign,
            credits={
                model: Credit(
                    conversions=round(values.get(model, [0.0, 0.0])[0], 6),
                    revenue=_money(values.get(model, [0.0, 0.0])[1]),
                )
                for model in models
            },
        )
        for (channel, campaign), values in credit.items()
    ]
    lead = models[0] if models else Model.linear
    return sorted(
        rows,
        key=lambda r: (
            r.channel == DIRECT,
            -r.credits[lead].revenue if r.credits else 0,
            r.channel,
            r.campaign or "",
        ),
    )
