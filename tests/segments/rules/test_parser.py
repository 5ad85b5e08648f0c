"""Text form: what parses to what, and where and why what does not."""

from __future__ import annotations

from datetime import date

import pytest

from siyu.segments.rules import (
    And,
    ConsentCondition,
    DateLiteral,
    DidCondition,
    EventCondition,
    FieldCondition,
    Measure,
    Not,
    Op,
    Or,
    RuleSyntaxError,
    SegmentCondition,
    SequenceCondition,
    TagCondition,
    TraitCondition,
    WhereAnd,
    WhereOr,
    Window,
    parse,
    to_text,
)


def tag(key: str, value: object = True, op: Op = Op.EQ) -> TagCondition:
    return TagCondition(tag=key, op=op, value=value)


def test_the_issue_example() -> None:
    rule = parse(
        "tag.rfm_segment = '重要价值客户' and event(order_paid, last 30d).count >= 2 "
        "and not consent.sms"
    )
    assert rule == And(
        and_=(
            tag("rfm_segment", "重要价值客户"),
            EventCondition(event="order_paid", window=Window(last_days=30), op=Op.GE, value=2),
            Not(not_=ConsentCondition(consent="sms")),
        )
    )


def test_precedence_not_over_and_over_or() -> None:
    assert parse("tag.a or not tag.b and tag.c") == Or(
        or_=(tag("a"), And(and_=(Not(not_=tag("b")), tag("c"))))
    )
    assert parse("(tag.a or tag.b) and tag.c") == And(and_=(Or(or_=(tag("a"), tag("b"))), tag("c")))


def test_keywords_are_case_insensitive_names_are_not() -> None:
    assert parse("TAG.Vip AND NOT Consent.sms") == And(
        and_=(tag("Vip"), Not(not_=ConsentCondition(consent="sms")))
    )
    assert parse("Event(order_paid, LAST 7D).COUNT > 0") == EventCondition(
        event="order_paid", window=Window(last_days=7), op=Op.GT, value=0
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tag.vip", tag("vip")),
        ("tag.vip = false", tag("vip", False)),
        ("tag.n != 3", tag("n", 3, Op.NE)),
        ("tag.n <> 3", tag("n", 3, Op.NE)),
        ("tag.n >= -2.5", tag("n", -2.5, Op.GE)),
        ("tag.n between 1 and 1e3", tag("n", (1, 1000.0), Op.BETWEEN)),
        ("tag.d < date '2026-01-31'", tag("d", DateLiteral(date=date(2026, 1, 31)), Op.LT)),
        (
            "trait.city in ('上海', '北京')",
            TraitCondition(trait="city", op=Op.IN, value=("上海", "北京")),
        ),
        ("tag.s not in ('a')", tag("s", ("a",), Op.NOT_IN)),
        ("tag.l contains 'x'", tag("l", "x", Op.CONTAINS)),
        ("tag.l contains any ('x', 'y')", tag("l", ("x", "y"), Op.CONTAINS_ANY)),
        ("tag.l contains all ('x')", tag("l", ("x",), Op.CONTAINS_ALL)),
        ("tag.l is null", tag("l", None, Op.IS_NULL)),
        ("tag.l is not null", tag("l", None, Op.IS_NOT_NULL)),
        ("tag.s = 'it''s'", tag("s", "it's")),
        ("tag.s = 'it\\'s'", tag("s", "it's")),
        ("tag.s = 'back\\\\slash'", tag("s", "back\\slash")),
        ("tag.s = '多行\n文本'", tag("s", "多行\n文本")),
        ("segment.vip_buyers", SegmentCondition(segment="vip_buyers")),
        (
            "did not event(refund, since date '2026-01-01')",
            DidCondition(did=False, event="refund", window=Window(since=date(2026, 1, 1))),
        ),
        (
            "did event(order_paid, where channel = 'wecom' and (amount > 100 or sku in ('a')))",
            DidCondition(
                did=True,
                event="order_paid",
                where=WhereAnd(
                    and_=(
                        FieldCondition(field="channel", op=Op.EQ, value="wecom"),
                        WhereOr(
                            or_=(
                                FieldCondition(field="amount", op=Op.GT, value=100),
                                FieldCondition(field="sku", op=Op.IN, value=("a",)),
                            )
                        ),
                    )
                ),
            ),
        ),
        (
            "event(order_paid, between date '2026-01-01' and date '2026-01-31', "
            "where properties.coupon is not null).sum(amount) between 100 and 500",
            EventCondition(
                event="order_paid",
                window=Window(between=(date(2026, 1, 1), date(2026, 1, 31))),
                where=FieldCondition(field="properties.coupon", op=Op.IS_NOT_NULL),
                measure=Measure.SUM,
                of="amount",
                op=Op.BETWEEN,
                value=(100, 500),
            ),
        ),
        (
            "event(page_view).days >= 3",
            EventCondition(event="page_view", measure=Measure.DAYS, op=Op.GE, value=3),
        ),
        (
            "event(x).avg(properties.price) < 9.5",
            EventCondition(
                event="x", measure=Measure.AVG, of="properties.price", op=Op.LT, value=9.5
            ),
        ),
        (
            "sequence(add_to_cart then checkout then order_paid within 1d, last 30d)",
            SequenceCondition(
                sequence=("add_to_cart", "checkout", "order_paid"),
                within_days=1,
                window=Window(last_days=30),
            ),
        ),
        # keywords are only keywords where the grammar expects one
        ("tag.and = 'or'", tag("and", "or")),
    ],
)
def test_valid_text(text: str, expected: object) -> None:
    rule = parse(text)
    assert rule == expected
    assert parse(to_text(rule)) == rule


def test_canonical_text() -> None:
    text = "  TAG.a   AND(tag.b  and tag.c) or NOT(tag.d OR tag.e)and tag.n<>1"
    assert to_text(parse(text)) == (
        "tag.a and (tag.b and tag.c) or not (tag.d or tag.e) and tag.n != 1"
    )


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("", 0, ["'tag'", "'('", "'not'", "'sequence'"]),
        ("tag.x =", 7, ["a string", "a number", "'true'", "'false'", "'date'"]),
        ("tag.x = 1 foo", 10, ["'and'", "'or'", "end of input"]),
        ("tag.x = 1 and (tag.y = 2", 24, ["'and'", "'or'", "')'"]),
        ("tag.x = null", 8, ["a string"]),
        ("tag. = 1", 5, ["a tag key"]),
        ("event(x).cnt > 1", 9, ["'count'", "'days'", "'sum'"]),
        ("event(x).count > 'a'", 17, ["a number"]),
        ("event(x, last 30).count > 1", 14, ["a number of days (e.g. 30d)"]),
        ("event(x, last 0d).count > 1", 14, ["a number of days (e.g. 30d)"]),
        ("event(x, yesterday).count > 1", 9, ["'last'", "'since'", "'between'", "'where'"]),
        ("sequence(a then b)", 17, ["'then'", "'within'"]),
        ("sequence(a within 1d)", 11, ["'then'"]),
        ("did event(x, where amount contains 1)", 26, ["'='", "'in'", "'is'"]),
        ("tag.d > date '2026-13-01'", 13, ["a date string 'YYYY-MM-DD'"]),
        ("tag.s = 'open", 13, ["closing quote '"]),
        ("tag.s = 1 ; drop", 10, ["a condition, operator or literal"]),
        ("not", 3, ["'tag'", "'('"]),
        ("tag.x = 1 and", 13, ["'tag'", "'not'"]),
        ("segment.VIP", 8, ["a segment key (snake_case)"]),
    ],
)
def test_syntax_errors(text: str, position: int, expected: list[str]) -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        parse(text)
    error = caught.value
    assert error.position == position
    for item in expected:
        assert item in error.expected
    assert error.expected
    assert error.context["position"] == position
    assert error.errors[0]["expected"] == error.expected


def test_syntax_error_has_line_column_and_caret() -> None:
    text = "tag.a = 1\n  and tag.b = = 2"
    with pytest.raises(RuleSyntaxError) as caught:
        parse(text)
    error = caught.value
    assert (error.position, error.line, error.column) == (24, 2, 15)
    assert error.excerpt == "  and tag.b = = 2\n              ^"
    assert "line 2, column 15" in error.render("en")
    assert error.code == "segment_rule_syntax"
    assert error.status == 422
