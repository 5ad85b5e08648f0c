"""Names and types are checked against the catalogue before anything is compiled."""

from __future__ import annotations

import pytest

from siyu.segments.rules import (
    SegmentCycleError,
    TypeMismatchError,
    UnknownNameError,
    check,
    compile_rule,
    parse,
)
from tests.segments.rules.world import WorldContext


@pytest.mark.parametrize(
    ("text", "kind", "name"),
    [
        ("tag.rfm = '重要价值客户'", "tag", "rfm"),
        ("tag.is_member and trait.province = '浙江'", "trait", "province"),
        ("segment.no_such_segment", "segment", "no_such_segment"),
        ("event(order_paid, where chanel = 'wecom').count > 1", "event field", "chanel"),
        ("did event(order_paid, where not (Channel is null))", "event field", "Channel"),
        ("event(order_paid).sum(channel) > 1", "measure field", "channel"),
        ("segment.loyal and segment.missing", "segment", "missing"),
    ],
)
def test_unknown_names_are_named(ctx: WorldContext, text: str, kind: str, name: str) -> None:
    with pytest.raises(UnknownNameError) as caught:
        check(parse(text), ctx)
    assert caught.value.context["kind"] == kind
    assert caught.value.context["name"] == name
    assert name in caught.value.render("en")
    assert caught.value.status == 422


@pytest.mark.parametrize(
    ("text", "name", "value_type", "op"),
    [
        ("tag.is_member = 'yes'", "is_member", "bool", "="),
        ("tag.is_member > true", "is_member", "bool", ">"),
        ("tag.order_count = '3'", "order_count", "number", "="),
        ("tag.order_count contains 3", "order_count", "number", "contains"),
        ("tag.ltv between 1 and '9'", "ltv", "number", "between"),
        ("tag.last_order_date > '2026-01-01'", "last_order_date", "date", ">"),
        ("tag.rfm_segment > '重要价值客户'", "rfm_segment", "enum", ">"),
        ("tag.interests = '美妆'", "interests", "list", "="),
        ("tag.interests contains any ('美妆', 1)", "interests", "list", "contains any"),
        ("tag.nickname in ('a', true)", "nickname", "string", "in"),
        ("trait.vip", "vip", "bool", "="),
        ("trait.city", "city", "string", "="),
        ("trait.age = date '2026-01-01'", "age", "number", "="),
        ("did event(x, where amount = 'big')", "amount", "number", "="),
        ("did event(x, where channel > 'a')", "channel", "string", ">"),
        ("did event(x, where properties.price > 'a')", "properties.price", "string", ">"),
        (
            "did event(x, where properties.price = true)",
            "properties.price",
            "string or number",
            "=",
        ),
    ],
)
def test_type_mismatch_names_field_type_and_operator(
    ctx: WorldContext, text: str, name: str, value_type: str, op: str
) -> None:
    if text == "trait.vip":
        check(parse(text), ctx)  # a bare bool is fine …
        text = "trait.vip = 1"  # … a number is not
        op = "="
    with pytest.raises(TypeMismatchError) as caught:
        check(parse(text), ctx)
    context = caught.value.context
    assert (context["name"], context["value_type"], context["op"]) == (name, value_type, op)
    assert name in caught.value.render("en")


def test_enum_value_outside_the_known_values(ctx: WorldContext) -> None:
    with pytest.raises(TypeMismatchError) as caught:
        check(parse("tag.rfm_segment in ('重要价值客户', '土豪')"), ctx)
    assert caught.value.context["value"] == "土豪"


def test_null_tests_fit_every_type(ctx: WorldContext) -> None:
    for key in ("rfm_segment", "is_member", "order_count", "last_order_date", "interests"):
        check(parse(f"tag.{key} is null or tag.{key} is not null"), ctx)


@pytest.mark.parametrize(
    ("text", "cycle"),
    [
        ("segment.cyc_a", ["cyc_a", "cyc_b", "cyc_c", "cyc_a"]),
        ("tag.is_member or segment.cyc_c", ["cyc_c", "cyc_a", "cyc_b", "cyc_c"]),
    ],
)
def test_cyclic_segment_reference_is_refused(
    ctx: WorldContext, text: str, cycle: list[str]
) -> None:
    with pytest.raises(SegmentCycleError) as caught:
        compile_rule(parse(text), ctx)
    assert caught.value.context["cycle"] == cycle
    assert "cyc_a → cyc_b" in caught.value.render("en")


def test_a_segment_used_twice_is_not_a_cycle(ctx: WorldContext) -> None:
    check(parse("segment.loyal and (segment.big_spenders or segment.loyal_or_imported)"), ctx)
