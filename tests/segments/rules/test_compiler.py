"""Compiled rules select exactly the people a brute-force Python evaluation selects."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from hypothesis import given, settings

from siyu.segments.rules import (
    And,
    Not,
    Or,
    Rule,
    compile_rule,
    count_rule,
    parse,
    to_text,
)
from tests.segments.rules.strategies import world_rules
from tests.segments.rules.world import SHANGHAI, TODAY, World, WorldContext, evaluate


def members(rule: Rule, ctx: WorldContext) -> set[str]:
    table = compile_rule(rule, ctx).execute()
    assert list(table.columns) == ["person_id"]
    assert table.person_id.is_unique
    return set(table.person_id)


LEAVES = [
    # tags by type, nulls never match a comparison
    "tag.rfm_segment = '重要价值客户'",
    "tag.rfm_segment != '流失客户'",
    "tag.rfm_segment in ('重要价值客户', '重要发展客户')",
    "tag.rfm_segment not in ('重要价值客户')",
    "tag.rfm_segment is null",
    "tag.is_member",
    "tag.is_member = false",
    "tag.is_member != true",
    "tag.order_count >= 2",
    "tag.order_count between 1 and 3",
    "tag.ltv < 200",
    "tag.ltv is not null",
    "tag.last_order_date >= date '2026-03-01'",
    "tag.last_order_date between date '2026-01-01' and date '2026-03-01'",
    "tag.interests contains '美妆'",
    "tag.interests contains any ('数码', '母婴')",
    "tag.interests contains all ('美妆', '母婴')",
    "tag.interests is null",
    "tag.nickname = 'O''Brien'",
    "tag.nickname = '''; drop table tags; --'",
    "trait.city in ('上海', '北京')",
    "trait.age > 30",
    "trait.vip",
    "consent.sms",
    "consent.email",
    # events: windows on Shanghai midnights, measures, filters
    "event(order_paid).count >= 3",
    "event(order_paid, last 1d).count >= 1",
    "event(order_paid, last 30d).count >= 2",
    "event(page_view, last 7d).days >= 2",
    "event(page_view).days between 3 and 6",
    "event(order_paid, since date '2026-03-01').count = 0",
    "event(order_paid, between date '2026-02-01' and date '2026-02-14').count > 0",
    "event(checkout, last 30d, where channel = 'wecom').count >= 1",
    "event(order_paid, where channel is null or amount >= 128).count >= 2",
    "event(order_paid, where not channel = 'store').count >= 2",
    "event(order_paid, last 30d).sum(amount) >= 300",
    "event(order_paid).sum(amount) < 100",
    "event(order_paid).avg(amount) > 100",
    "event(order_paid).max(amount) = 299.5",
    "event(order_paid).min(quantity) >= 2",
    "event(add_to_cart, where properties.coupon = 'spring').count >= 1",
    "event(add_to_cart, where properties.price > 20).count >= 1",
    "event(page_view, where properties.price <= 12.5).count >= 1",
    "event(page_view, where properties.coupon is null).count >= 5",
    "event(order_paid).sum(properties.price) > 40",
    "did event(refund)",
    "did not event(checkout, last 7d)",
    "did event(order_paid, last 30d, where category in ('母婴'))",
    "sequence(add_to_cart then order_paid within 1d)",
    "sequence(add_to_cart then order_paid within 1d, last 30d)",
    "sequence(page_view then add_to_cart then order_paid within 3d, last 30d)",
    "sequence(page_view then page_view within 1d, last 7d)",
    "sequence(order_paid then order_paid then order_paid within 10d)",
    # segments: static (with duplicates and strangers), dynamic, nested
    "segment.imported_vips",
    "segment.big_spenders",
    "segment.loyal",
    "segment.loyal_or_imported",
    "not segment.loyal_or_imported",
]


@pytest.mark.parametrize("text", LEAVES)
def test_leaf_matches_brute_force(world: World, ctx: WorldContext, text: str) -> None:
    rule = parse(text)
    expected = evaluate(rule, world)
    assert members(rule, ctx) == expected
    assert count_rule(rule, ctx) == len(expected)


def test_the_fixture_is_not_trivial(world: World) -> None:
    """Most leaves select some people but not everyone, or the comparison proves little."""
    sizes = [len(evaluate(parse(text), world)) for text in LEAVES]
    interesting = [0 < size < len(world.people) for size in sizes]
    assert sum(interesting) >= len(LEAVES) - 6


def test_windows_start_at_local_midnight(world: World, ctx: WorldContext) -> None:
    """An event at 23:59:59 Shanghai time the day before the window is out, one at 00:00 in:
    check every `last Nd` whose first midnight has an event right at or just before it."""
    edges = set()
    for event in world.events:
        local = event["ts"].astimezone(SHANGHAI)
        if event["person_id"] and (local.time() == time(0) or local.time() == time(23, 59, 59)):
            first_day = local.date() if local.time() == time(0) else local.date() + timedelta(1)
            edges.add(((TODAY - first_day).days + 1, event["name"]))
    assert len(edges) >= 5
    for days, name in sorted(edges):
        rule = parse(f"event({name}, last {days}d).count >= 1")
        assert members(rule, ctx) == evaluate(rule, world), (days, name)


def test_no_consent_data_means_no_consent(world: World) -> None:
    ctx = WorldContext(world, with_consent=False)
    assert members(parse("consent.sms"), ctx) == set()
    assert members(parse("not consent.sms"), ctx) == set(world.people)


def test_injection_in_literals_is_just_data(world: World, ctx: WorldContext) -> None:
    for text in (
        "tag.nickname = '''; drop table tags; --'",
        "tag.nickname = 'x\\'; drop table people; --'",
        "trait.city in ('上海'' or 1=1 --', '\"; select 1')",
        "did event(order_paid, where sku = '''); delete from events; --')",
    ):
        rule = parse(text)
        assert members(rule, ctx) == evaluate(rule, world)
    assert ctx.people().count().execute() == len(world.people)
    assert ctx.events().count().execute() == len(world.events)


def test_the_issue_example(world: World, ctx: WorldContext) -> None:
    rule = parse(
        "tag.rfm_segment = '重要价值客户' and event(order_paid, last 30d).count >= 2 "
        "and not consent.sms"
    )
    assert members(rule, ctx) == evaluate(rule, world)


@settings(max_examples=50)
@given(world_rules)
def test_random_rules_match_brute_force(world: World, ctx: WorldContext, rule: Rule) -> None:
    assert members(rule, ctx) == evaluate(rule, world), to_text(rule)


@settings(max_examples=25)
@given(world_rules, world_rules)
def test_de_morgan(ctx: WorldContext, a: Rule, b: Rule) -> None:
    assert members(Not(not_=And(and_=(a, b))), ctx) == members(
        Or(or_=(Not(not_=a), Not(not_=b))), ctx
    )
    assert members(Not(not_=Or(or_=(a, b))), ctx) == members(
        And(and_=(Not(not_=a), Not(not_=b))), ctx
    )


@settings(max_examples=25)
@given(world_rules, world_rules, world_rules)
def test_distributive_laws(ctx: WorldContext, a: Rule, b: Rule, c: Rule) -> None:
    assert members(And(and_=(a, Or(or_=(b, c)))), ctx) == members(
        Or(or_=(And(and_=(a, b)), And(and_=(a, c)))), ctx
    )
    assert members(Or(or_=(a, And(and_=(b, c)))), ctx) == members(
        And(and_=(Or(or_=(a, b)), Or(or_=(a, c)))), ctx
    )


@settings(max_examples=20)
@given(world_rules)
def test_complement(world: World, ctx: WorldContext, rule: Rule) -> None:
    inside = members(rule, ctx)
    outside = members(Not(not_=rule), ctx)
    assert inside | outside == set(world.people)
    assert not inside & outside
