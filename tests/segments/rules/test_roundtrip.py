"""JSON form ⇄ AST ⇄ text form, for any well-formed rule."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings

from siyu.segments.rules import Rule, RuleJsonError, parse, parse_json, to_json, to_text
from tests.segments.rules.strategies import any_rule


@settings(max_examples=200)
@given(any_rule)
def test_text_round_trip(rule: Rule) -> None:
    text = to_text(rule)
    again = parse(text)
    assert again == rule
    assert to_text(again) == text


@settings(max_examples=200)
@given(any_rule)
def test_json_round_trip(rule: Rule) -> None:
    as_json = to_json(rule)
    assert parse_json(json.loads(json.dumps(as_json, ensure_ascii=False))) == rule
    assert parse_json(rule.model_dump(mode="json")) == rule
    assert to_json(parse(to_text(rule))) == as_json


def test_json_shape() -> None:
    rule = parse(
        "tag.rfm_segment = '重要价值客户' and event(order_paid, last 30d, where channel = 'wecom')"
        ".count >= 2 and not consent.sms or sequence(a then b within 1d) or segment.vip "
        "or did not event(refund) or tag.d >= date '2026-01-31'"
    )
    assert to_json(rule) == {
        "or": [
            {
                "and": [
                    {"tag": "rfm_segment", "op": "=", "value": "重要价值客户"},
                    {
                        "event": "order_paid",
                        "window": {"last_days": 30},
                        "where": {"field": "channel", "op": "=", "value": "wecom"},
                        "measure": "count",
                        "op": ">=",
                        "value": 2,
                    },
                    {"not": {"consent": "sms"}},
                ]
            },
            {"sequence": ["a", "b"], "within_days": 1},
            {"segment": "vip"},
            {"did": False, "event": "refund"},
            {"tag": "d", "op": ">=", "value": {"date": "2026-01-31"}},
        ]
    }


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        ({"and": [{"tag": "a", "op": "~", "value": 1}, {"consent": "sms"}]}, "and.0.op"),
        ({"and": [{"tag": "a", "op": "=", "value": 1}, {"consnet": "sms"}]}, "and.1"),
        ({"or": [{"tag": "a", "op": "=", "value": 1, "extra": 2}, {"consent": "x"}]}, "or.0.extra"),
        ({"not": {"tag": "a", "op": "in", "value": []}}, "not"),
        ({"tag": "a", "op": "is null", "value": 3}, "$"),
        ({"tag": "a", "op": "=", "value": None}, "$"),
        ({"tag": "a b", "op": "=", "value": 1}, "tag"),
        ({"and": [{"consent": "sms"}]}, "and"),
        ({"event": "x", "op": ">", "value": "2"}, "value"),
        ({"event": "x", "measure": "sum", "op": ">", "value": 2}, "$"),
        ({"event": "x", "op": "in", "value": [1]}, "value"),
        ({"event": "x", "window": {"last_days": 0}, "op": ">", "value": 1}, "window.last_days"),
        ({"event": "x", "window": {}, "op": ">", "value": 1}, "window"),
        (
            {"did": True, "event": "x", "where": {"field": "channel", "op": "=", "x": 1}},
            "where.x",
        ),
        ({"segment": "Not_Snake"}, "segment"),
        ({"sequence": ["a"], "within_days": 1}, "sequence"),
        ({"tag": "a", "op": "=", "value": float("nan")}, "value"),
        ("tag.a", "$"),
    ],
)
def test_invalid_json_names_the_path(obj: object, path: str) -> None:
    with pytest.raises(RuleJsonError) as caught:
        parse_json(obj)
    paths = [error["path"] for error in caught.value.errors]
    assert path in paths or any(p.startswith(path) for p in paths), paths
    assert caught.value.status == 422
