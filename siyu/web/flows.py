"""What the console pages show, assembled from the services of the modules that own the data.

Each panel is computed on its own: a panel whose data is missing says what to run, and a
panel that fails shows its error, while the rest of the page still renders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from siyu.analytics import metrics
from siyu.analytics.alerts import service as alerts
from siyu.analytics.common import last_event_date
from siyu.analytics.metrics import MetricQuery
from siyu.analytics.metrics_api import format_change, format_value, run
from siyu.core.config import Settings, secret_key
from siyu.core.errors import SiyuError
from siyu.core.i18n import N_, current_locale, gettext
from siyu.core.logging import get_logger, request_id_var
from siyu.events import EventStore
from siyu.identity import service as identity
from siyu.identity.rules import mask
from siyu.profiles import service as profiles
from siyu.profiles.traits import load_trait_rules
from siyu.segments import tiers
from siyu.tags import service as tags
from siyu.tags.explain import describe_computation

log = get_logger("web")
T = TypeVar("T")

CHANNELS = {
    "wecom": N_("WeCom"),
    "miniprogram": N_("Mini-program"),
    "app": N_("App"),
    "web": N_("Web"),
    "sms": N_("SMS"),
    "email": N_("Email"),
    "store": N_("Store"),
    "crm": N_("CRM"),
}
LIFECYCLE_STAGES = {
    "prospect": N_("Prospect"),
    "new": N_("New customer"),
    "growing": N_("Growing"),
    "mature": N_("Mature"),
    "returned": N_("Returned"),
    "silent": N_("Silent"),
    "churned": N_("Churned"),
}
TAG_CATEGORIES = {
    "basic": N_("Basic"),
    "behaviour": N_("Behaviour"),
    "value": N_("Value"),
    "lifecycle": N_("Lifecycle"),
    "preference": N_("Preference"),
    "risk": N_("Risk"),
}
PRESETS = (7, 30, 90)
PII_TRAITS = {"phone": "phone", "mobile": "phone", "email": "email"}


@dataclass
class Panel:
    """One block of a page: its data, or why there is none (``empty``), or what went wrong."""

    data: Any = None
    empty: str | None = None
    error: str | None = None
    hint: str | None = None


def panel(build: Callable[[], T], empty_when: Callable[[T], str | None] | None = None) -> Panel:
    try:
        data = build()
    except SiyuError as exc:
        return Panel(error=exc.render(), hint=exc.render_hint())
    except Exception:
        log.exception("console panel failed")
        return Panel(
            error=gettext("This panel could not be computed."),
            hint=gettext("Quote the request id {id} when reporting it.").format(
                id=request_id_var.get()
            ),
        )
    empty = empty_when(data) if empty_when is not None else None
    return Panel(data=data, empty=empty)


def channel_label(channel: str | None) -> str:
    if not channel:
        return gettext("(none)")
    return gettext(CHANNELS[channel]) if channel in CHANNELS else channel


def stage_label(stage: str | None) -> str:
    if not stage:
        return "—"
    return gettext(LIFECYCLE_STAGES[stage]) if stage in LIFECYCLE_STAGES else stage


# -- overview -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OverviewFilters:
    days: int | None = 30  # a preset; None when start/end are given
    start: date | None = None
    end: date | None = None
    channel: str | None = None

    @classmethod
    def parse(cls, days: str, start: str, end: str, channel: str) -> OverviewFilters:
        """Filters from query text; anything unreadable falls back to the default."""
        chosen = channel if channel in CHANNELS else None
        first, last = _parse_date(start), _parse_date(end)
        if first and last and first <= last:
            return cls(days=None, start=first, end=last, channel=chosen)
        preset = int(days) if days.isdigit() and int(days) in PRESETS else 30
        return cls(days=preset, channel=chosen)


def _parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@dataclass
class Overview:
    filters: OverviewFilters
    period: dict[str, str] = field(default_factory=dict)
    previous: dict[str, str] | None = None
    cards: Panel = field(default_factory=Panel)
    channels: Panel = field(default_factory=Panel)
    tiers: Panel = field(default_factory=Panel)
    lifecycle: Panel = field(default_factory=Panel)
    rfm: Panel = field(default_factory=Panel)
    alerts: Panel = field(default_factory=Panel)


def _period(events: EventStore, settings: Settings, filters: OverviewFilters) -> tuple[date, date]:
    if filters.start and filters.end:
        return filters.start, filters.end
    last = last_event_date(events, settings.tz) or date.today()
    return last - timedelta(days=(filters.days or 30) - 1), last


def overview(
    *, db_session: Session, events: EventStore, settings: Settings, filters: OverviewFilters
) -> Overview:
    result = Overview(filters=filters)
    has_events = events.count() > 0
    no_events = gettext("No events yet: run `siyu demo` or import events (`siyu import`).")
    if has_events:
        start, end = _period(events, settings, filters)
        query = MetricQuery(
            metrics=list(metrics.OVERVIEW), start=start, end=end, channel=filters.channel
        )
        computed = panel(lambda: run(events, query, settings.tz))
        if computed.data is not None:
            result.period, result.previous = computed.data.period, computed.data.previous
            computed.data = [_card(value) for value in computed.data.metrics]
        result.cards = computed
        by_channel = MetricQuery(
            metrics=["new_people"], start=start, end=end, dimension="channel", compare=False
        )
        result.channels = panel(
            lambda: [
                {"name": channel_label(row.value), "value": row.metrics.get("new_people") or 0}
                for row in run(events, by_channel, settings.tz).breakdown
            ],
            lambda rows: gettext("Nobody joined in this period.") if not rows else None,
        )
    else:
        result.cards = result.channels = Panel(empty=no_events)
    result.tiers = panel(
        lambda: _tier_pyramid(events, settings),
        lambda rows: gettext("No tiers yet: run `siyu tiers evaluate`.") if not rows else None,
    )
    no_tags = gettext("No tag values yet: run `siyu tags refresh`.")
    result.lifecycle = panel(
        lambda: _shares(events, "lifecycle_stage", stage_label),
        lambda rows: no_tags if not rows else None,
    )
    result.rfm = panel(
        lambda: _shares(events, "rfm_segment", lambda v: v or "—"),
        lambda rows: no_tags if not rows else None,
    )
    result.alerts = panel(
        lambda: alerts.list_alerts(db_session, status="open", limit=10)[0],
        lambda rows: gettext("No open alerts.") if not rows else None,
    )
    return result


def _card(value: metrics.MetricValue) -> dict[str, Any]:
    good = None
    if value.change is not None and value.change != 0:
        good = (value.change > 0) == value.higher_is_better
    return {
        "key": value.key,
        "label": value.label,
        "value": format_value(value.value, value.unit),
        "previous": format_value(value.previous, value.unit),
        "change": format_change(value.change),
        "direction": "" if not value.change else ("up" if value.change > 0 else "down"),
        "good": good,
        "series": [point.value for point in value.series],
    }


def _tier_pyramid(events: EventStore, settings: Settings) -> list[dict[str, Any]]:
    counts = tiers.distribution(events)
    if not counts:
        return []
    scheme = tiers.load_scheme(settings.home_dir)
    english = current_locale() == "en"
    return [
        {
            "key": level.key,
            "name": level.name_en if english else level.name_zh,
            "value": counts.get(level.key, 0),
        }
        for level in scheme.levels
    ]


def _shares(events: EventStore, key: str, label: Callable[[Any], str]) -> list[dict[str, Any]]:
    found = tags.stats(events, key)
    if not found:
        return []
    stats = found[0]
    total = max(int(stats["people"]), 1)
    return [
        {"name": label(item["value"]), "value": item["people"], "share": item["people"] / total}
        for item in stats["distribution"].get("top", [])
    ]


# -- people --------------------------------------------------------------------------------


def tiers_of(events: EventStore, settings: Settings, person_ids: list[str]) -> dict[str, str]:
    """Person → the name of their tier now."""
    if not person_ids:
        return {}
    current = tiers.current_tiers(events)
    rows = current.filter(current.person_id.isin(person_ids)).to_pyarrow().to_pylist()
    names = tier_names(settings)
    return {str(r["person_id"]): names.get(str(r["tier"]), str(r["tier"])) for r in rows}


def tier_names(settings: Settings) -> dict[str, str]:
    english = current_locale() == "en"
    return {
        level.key: level.name_en if english else level.name_zh
        for level in tiers.load_scheme(settings.home_dir).levels
    }


@dataclass
class Profile:
    person_id: str
    created_at: Any
    identifiers: list[dict[str, Any]]
    traits: dict[str, Any]
    tags: list[dict[str, Any]]  # categories with their tags
    lifecycle_stage: str
    tier: dict[str, Any] | None
    tier_history: list[dict[str, Any]]
    orders: list[profiles.EventRead]
    messages: list[profiles.EventRead]
    consent: list[profiles.ConsentState]
    history: profiles.History  # the person's events, read once for the page


def profile(
    *,
    db_session: Session,
    events: EventStore,
    settings: Settings,
    person_id: str,
    reveal: bool,
) -> Profile:
    """The 360° profile; identifiers and contact traits unmasked only when ``reveal``."""
    person = identity.get_person_or_raise(db_session=db_session, person_id=person_id)
    revealed = (
        identity.revealed_identifiers(
            events, identity.derive_hash_key(secret_key(settings)), person.id
        )
        if reveal
        else {}
    )
    identifiers = [
        {
            "type": row.type,
            "value": revealed.get(row.key_hash, row.masked),
            "first_seen": row.first_seen,
            "last_seen": row.last_seen,
        }
        for row in identity.identifiers_of(db_session=db_session, person_id=person.id)
    ]
    mine = profiles.History.read(events, person.id)
    traits = mine.traits(load_trait_rules(settings.home))
    if not reveal:
        traits = {k: mask_value(k, v) for k, v in traits.items()}
    values = tags.person_tags(events, person.id)
    names = tier_names(settings)
    current = tiers.person_tier(events, person.id)
    history = [
        {
            **row,
            "from_name": names.get(row["from_tier"] or "", row["from_tier"] or "—"),
            "to_name": names.get(row["to_tier"], row["to_tier"]),
        }
        for row in tiers.person_history(events, person.id)
    ]
    return Profile(
        person_id=person.id,
        created_at=person.created_at,
        identifiers=identifiers,
        traits=traits,
        tags=_tag_groups(db_session, values),
        lifecycle_stage=stage_label(values.get("lifecycle_stage")),
        tier=(
            {**current, "name": names.get(str(current["tier"]), str(current["tier"]))}
            if current
            else None
        ),
        tier_history=history,
        orders=mine.page(names=list(profiles.ORDER_EVENTS), limit=50, facets=False).items,
        messages=mine.page(names=list(profiles.MESSAGE_EVENTS), limit=30, facets=False).items,
        consent=mine.consent(),
        history=mine,
    )


def mask_value(key: str, value: Any) -> Any:
    """A trait or event property with contact details masked."""
    kind = PII_TRAITS.get(key.lower())
    if kind is None or not isinstance(value, str):
        return value
    return mask(kind, value)


def mask_properties(properties: dict[str, Any] | None) -> dict[str, Any] | None:
    if properties is None:
        return None
    return {k: mask_value(k, v) for k, v in properties.items()}


def _tag_groups(db_session: Session, values: dict[str, Any]) -> list[dict[str, Any]]:
    english = current_locale() == "en"
    groups: dict[str, list[dict[str, Any]]] = {}
    for definition in tags.active_definitions(db_session):
        if definition.key not in values:
            continue
        value = values[definition.key]
        if definition.key == "lifecycle_stage":
            value = stage_label(value)
        groups.setdefault(definition.category.value, []).append(
            {
                "key": definition.key,
                "name": definition.name_en if english else definition.name_zh,
                "value": value,
                "unit": definition.unit,
                "description": definition.description,
                "why": " · ".join(describe_computation(definition)),
            }
        )
    return [
        {"name": gettext(TAG_CATEGORIES.get(category, category)), "tags": items}
        for category, items in sorted(
            groups.items(),
            key=lambda kv: list(TAG_CATEGORIES).index(kv[0]) if kv[0] in TAG_CATEGORIES else 99,
        )
    ]
