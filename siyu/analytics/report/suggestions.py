"""Optimisation suggestions: explicit rules over the week's figures, never free text.

A rule holds when all its conditions hold; a condition tests one figure (its value this
week, or its change against the previous week) against a threshold. Every figure a rule
reads goes into its suggestion's evidence, and its text is written from those figures only.
A dimension where no rule holds gets a "steady" read-out listing its headline figures, so
every dimension is always present and nothing is invented. ``docs/analytics-report.md``
carries the same table for operators.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from siyu.analytics.metrics import Unit
from siyu.analytics.report.models import Dimension, Suggestion
from siyu.core.i18n import N_, gettext

Test = Literal["fell", "rose", "below", "above", "at_least"]

DIMENSION_LABELS = {
    Dimension.acquisition: N_("Acquisition"),
    Dimension.activation: N_("Activation"),
    Dimension.retention: N_("Retention"),
    Dimension.conversion: N_("Conversion"),
    Dimension.value: N_("Value"),
    Dimension.channel: N_("Channels and content"),
    Dimension.compliance: N_("Compliance"),
}


@dataclass(frozen=True)
class Fact:
    """One figure of the week: its value, the previous week's, and how it is shown."""

    value: float | None
    previous: float | None
    unit: Unit
    label: str = ""

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous is None or not self.previous:
            return None
        return (self.value - self.previous) / abs(self.previous)


Facts = Mapping[str, Fact]


@dataclass(frozen=True)
class Condition:
    """``metric``'s change fell/rose by at least ``threshold`` (relative), or its value is
    below / above / at least ``threshold``. Undefined figures never satisfy a condition."""

    metric: str
    test: Test
    threshold: float

    def holds(self, facts: Facts) -> bool:
        fact = facts.get(self.metric)
        if fact is None:
            return False
        if self.test in ("fell", "rose"):
            change = fact.change
            if change is None:
                return False
            return change <= -self.threshold if self.test == "fell" else change >= self.threshold
        if fact.value is None:
            return False
        if self.test == "below":
            return fact.value < self.threshold
        if self.test == "above":
            return fact.value > self.threshold
        return fact.value >= self.threshold


@dataclass(frozen=True)
class Rule:
    key: str
    dimension: Dimension
    conditions: tuple[Condition, ...]
    message: str  # fields: KEY, KEY_previous, KEY_change for every metric it reads
    cites: tuple[str, ...] = ()  # figures the message quotes beyond the conditions'

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every figure the rule reads or quotes (its evidence)."""
        return tuple(dict.fromkeys([*(c.metric for c in self.conditions), *self.cites]))

    def holds(self, facts: Facts) -> bool:
        return all(c.holds(facts) for c in self.conditions)


C = Condition
# The rule table. Minimum sizes (``at_least``) keep small numbers from raising alarms.
RULES: tuple[Rule, ...] = (
    # acquisition
    Rule("new_people_fell", Dimension.acquisition,
         (C("new_people", "fell", 0.20), C("new_people", "at_least", 20)),
         N_("New people fell from {new_people_previous} to {new_people} ({new_people_change}): "
            "check which channels slowed (top movers by channel) and refresh the entry campaigns")),
    Rule("contacts_shrank", Dimension.acquisition,
         (C("net_contacts", "below", 0),),
         N_("More WeCom contacts were removed than added (net {net_contacts}, previous week "
            "{net_contacts_previous}): review how often contacts are messaged and what "
            "contact owners send")),
    # activation
    Rule("d7_fell_while_growing", Dimension.activation,
         (C("retention_d7", "fell", 0.10), C("new_people", "rose", 0.05),
          C("new_people", "at_least", 20)),
         N_("D7 retention fell from {retention_d7_previous} to {retention_d7} "
            "({retention_d7_change}) while new people grew {new_people_change}: "
            "review the welcome journey")),
    Rule("d7_fell", Dimension.activation,
         (C("retention_d7", "fell", 0.20), C("new_people", "at_least", 20)),
         N_("D7 retention of new people fell from {retention_d7_previous} to {retention_d7} "
            "({retention_d7_change}): review the welcome journey and the first week's "
            "messages")),
    Rule("d1_fell", Dimension.activation,
         (C("retention_d1", "fell", 0.15), C("new_people", "at_least", 20)),
         N_("D1 retention of new people fell from {retention_d1_previous} to {retention_d1} "
            "({retention_d1_change}): check the first day (welcome message, first coupon)")),
    # retention
    Rule("churn_rose", Dimension.retention,
         (C("churn_rate", "rose", 0.10), C("active_people", "at_least", 50)),
         N_("Churn rose from {churn_rate_previous} to {churn_rate} ({churn_rate_change}): "
            "send a win-back journey to people active last week and silent this week")),
    Rule("repurchase_fell", Dimension.retention,
         (C("repurchase_rate", "fell", 0.15), C("buyers", "at_least", 20)),
         N_("Repurchase rate fell from {repurchase_rate_previous} to {repurchase_rate} "
            "({repurchase_rate_change}): remind buyers due for their next purchase")),
    Rule("returning_fell", Dimension.retention,
         (C("returning_rate", "fell", 0.15), C("buyers", "at_least", 20)),
         N_("Returning buyers fell from {returning_rate_previous} to {returning_rate} of "
            "buyers ({returning_rate_change}): reach past buyers with member benefits")),
    # conversion
    Rule("visit_to_order_fell", Dimension.conversion,
         (C("visit_to_order", "fell", 0.10), C("active_people", "at_least", 50)),
         N_("Visit-to-order conversion fell from {visit_to_order_previous} to "
            "{visit_to_order} ({visit_to_order_change}): check prices, stock and the "
            "checkout path")),
    Rule("funnel_fell", Dimension.conversion,
         (C("funnel_conversion", "fell", 0.10), C("funnel_entered", "at_least", 30)),
         N_("Product view to payment conversion fell from {funnel_conversion_previous} to "
            "{funnel_conversion} ({funnel_conversion_change}): see the funnel step that "
            "dropped most")),
    Rule("coupons_unused", Dimension.conversion,
         (C("coupon_redemption", "below", 0.10), C("coupons_claimed", "at_least", 30)),
         N_("Only {coupon_redemption} of the {coupons_claimed} coupons claimed were used: "
            "remind holders before coupons expire or lower the threshold")),
    # value
    Rule("gmv_fell", Dimension.value,
         (C("gmv", "fell", 0.10), C("orders", "at_least", 20)),
         N_("GMV fell from {gmv_previous} to {gmv} ({gmv_change}): see which channel, tier "
            "or segment lost most (top movers)")),
    Rule("aov_fell", Dimension.value,
         (C("aov", "fell", 0.10), C("orders", "at_least", 20)),
         N_("Average order value fell from {aov_previous} to {aov} ({aov_change}): try "
            "bundles or a spend threshold for free gifts")),
    Rule("refunds_rose", Dimension.value,
         (C("refund_amount", "rose", 0.30), C("refund_amount", "above", 0),
          C("orders", "at_least", 20)),
         N_("Refunds rose from {refund_amount_previous} to {refund_amount} "
            "({refund_amount_change}): check product quality and delivery complaints")),
    # channels and content
    Rule("open_rate_fell", Dimension.channel,
         (C("open_rate", "fell", 0.10), C("messages_delivered", "at_least", 100)),
         N_("Message open rate fell from {open_rate_previous} to {open_rate} "
            "({open_rate_change}): test subject lines and send times")),
    Rule("click_rate_fell", Dimension.channel,
         (C("click_rate", "fell", 0.15), C("messages_delivered", "at_least", 100)),
         N_("Message click rate fell from {click_rate_previous} to {click_rate} "
            "({click_rate_change}): make the offer and the link clearer")),
    Rule("private_share_fell", Dimension.channel,
         (C("private_gmv_share", "fell", 0.10), C("orders", "at_least", 20)),
         N_("The private domain's GMV share fell from {private_gmv_share_previous} to "
            "{private_gmv_share} ({private_gmv_share_change}): move buyers from public "
            "platforms to WeCom and the mini-program")),
    Rule("top_channel_fell", Dimension.channel,
         (C("top_channel_revenue", "fell", 0.20), C("top_channel_revenue", "at_least", 1)),
         N_("Revenue credited to the largest channel fell from "
            "{top_channel_revenue_previous} to {top_channel_revenue} "
            "({top_channel_revenue_change}): review its content and campaigns")),
    # compliance
    Rule("complaints_high", Dimension.compliance,
         (C("complaint_rate", "above", 0.001), C("messages_delivered", "at_least", 100)),
         N_("Complaints reached {complaint_rate} of delivered messages ({complaints} "
            "complaints; the line is 0.1%): pause the campaigns concerned and check consent"),
         cites=("complaints",)),
    Rule("unsubscribes_rose", Dimension.compliance,
         (C("unsubscribe_rate", "rose", 0.20), C("unsubscribes", "at_least", 10)),
         N_("Unsubscribe rate rose from {unsubscribe_rate_previous} to {unsubscribe_rate} "
            "({unsubscribe_rate_change}): send less often and honour quiet hours")),
    Rule("complaints_rose", Dimension.compliance,
         (C("complaints", "rose", 0.50), C("complaints", "at_least", 5)),
         N_("Complaints rose from {complaints_previous} to {complaints} "
            "({complaints_change}): find the messages they answer")),
)  # fmt: skip

# What a dimension shows when no rule holds.
HEADLINES: dict[Dimension, tuple[str, ...]] = {
    Dimension.acquisition: ("new_people", "net_contacts"),
    Dimension.activation: ("retention_d1", "retention_d7"),
    Dimension.retention: ("churn_rate", "repurchase_rate", "returning_rate"),
    Dimension.conversion: ("visit_to_order", "funnel_conversion", "coupon_redemption"),
    Dimension.value: ("gmv", "orders", "aov"),
    Dimension.channel: ("open_rate", "click_rate", "private_gmv_share"),
    Dimension.compliance: ("unsubscribes", "unsubscribe_rate", "complaints", "complaint_rate"),
}


def format_number(value: float | None, unit: Unit) -> str:
    """A figure as people read it: percentages, money, counts."""
    if value is None:
        return "—"
    if unit is Unit.rate:
        return f"{value:.1%}"
    if unit is Unit.money:
        return f"¥{value:,.2f}"
    if unit is Unit.per_person:
        return f"{value:,.2f}"
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.1f}"


def format_change(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1%}".replace("-", "−")


def evidence(facts: Facts, metrics: Sequence[str]) -> dict[str, float | None]:
    """Every number about ``metrics``: value, previous week and change (None: unknown)."""
    found: dict[str, float | None] = {}
    for key in metrics:
        fact = facts.get(key, Fact(None, None, Unit.number))
        found[key] = fact.value
        found[f"{key}.previous"] = fact.previous
        found[f"{key}.change"] = fact.change
    return found


def _fields(facts: Facts, metrics: Sequence[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for key in metrics:
        fact = facts.get(key, Fact(None, None, Unit.number))
        fields[key] = format_number(fact.value, fact.unit)
        fields[f"{key}_previous"] = format_number(fact.previous, fact.unit)
        fields[f"{key}_change"] = format_change(fact.change)
    return fields


def apply(rule: Rule, facts: Facts) -> Suggestion | None:
    """The rule's suggestion when it holds on ``facts``."""
    if not rule.holds(facts):
        return None
    return Suggestion(
        dimension=rule.dimension,
        dimension_label=gettext(DIMENSION_LABELS[rule.dimension]),
        rule=rule.key,
        severity="action",
        text=gettext(rule.message).format(**_fields(facts, rule.metrics)),
        evidence=evidence(facts, rule.metrics),
    )


def steady(dimension: Dimension, facts: Facts) -> Suggestion:
    """The dimension's headline figures, when no rule found anything to act on."""
    keys = [k for k in HEADLINES[dimension] if k in facts]
    parts = [
        f"{facts[k].label or k} {format_number(facts[k].value, facts[k].unit)} "
        f"({format_change(facts[k].change)})"
        for k in keys
    ]
    return Suggestion(
        dimension=dimension,
        dimension_label=gettext(DIMENSION_LABELS[dimension]),
        rule=None,
        severity="steady",
        text=gettext("Nothing notable: {figures}").format(figures="; ".join(parts)),
        evidence=evidence(facts, keys),
    )


def suggest(facts: Facts, rules: Sequence[Rule] = RULES) -> list[Suggestion]:
    """Every rule that holds, by dimension in order; a steady read-out for quiet ones."""
    found: list[Suggestion] = []
    for dimension in Dimension:
        fired = [s for r in rules if r.dimension is dimension if (s := apply(r, facts))]
        found.extend(fired or [steady(dimension, facts)])
    return found
