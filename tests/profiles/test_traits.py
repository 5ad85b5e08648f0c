"""Trait survivorship: each rule against a hand computation, rules from SIYU_HOME/traits.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from siyu.core.errors import ConfigError
from siyu.events.schema import CHANNELS
from siyu.profiles.traits import DEFAULT_RULES, load_trait_rules, survive


def identify(channel: str, **traits: Any) -> dict[str, Any]:
    return {"properties": json.dumps(traits, ensure_ascii=False), "channel": channel}


ROWS = [
    identify("web", name="小王", birthday="1990-01-01", gender="male", city="上海"),
    identify("store", name="王小明", gender="female"),
    identify("miniprogram", name="Wang", birthday="1991-02-02", city="杭州", gender=""),
]


def test_default_rules() -> None:
    assert survive(ROWS) == {
        "name": "王小明",  # the store is trusted over the mini-program and the web
        "birthday": "1990-01-01",  # first seen
        "gender": "female",  # store; an empty value never overrides
        "city": "杭州",  # latest
    }


def test_rules_from_the_home(tmp_path: Path) -> None:
    (tmp_path / "traits.yaml").write_text(
        "name: latest\ncity: first_seen\ngender: [web, store]\n", encoding="utf-8"
    )
    rules = load_trait_rules(tmp_path)
    assert rules["birthday"] == DEFAULT_RULES["birthday"]  # untouched defaults stay
    assert survive(ROWS, rules) == {
        "name": "Wang",
        "birthday": "1990-01-01",
        "gender": "male",
        "city": "上海",
    }
    assert load_trait_rules(tmp_path / "nowhere") == DEFAULT_RULES


@pytest.mark.parametrize(
    "text",
    ["gender: [fax]\n", "name: newest\n", "name: [\n", "- a\n- b\n", "gender: []\n"],
)
def test_bad_rule_files_name_the_file(tmp_path: Path, text: str) -> None:
    (tmp_path / "traits.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_trait_rules(tmp_path)
    assert "traits.yaml" in caught.value.render("en")


values = st.sampled_from(["a", "b", "c", None, ""])
rows = st.lists(st.tuples(st.sampled_from(CHANNELS), values), max_size=12)


@given(rows=rows, trusted=st.lists(st.sampled_from(CHANNELS), min_size=1, unique=True))
def test_each_rule_matches_its_definition(rows: list[tuple[str, Any]], trusted: list[str]) -> None:
    given_rows = [identify(channel, t=value) for channel, value in rows]
    present = [(c, v) for c, v in rows if v not in (None, "")]
    latest = survive(given_rows, {"t": "latest"}).get("t")
    first = survive(given_rows, {"t": "first_seen"}).get("t")
    best = survive(given_rows, {"t": trusted}).get("t")
    assert latest == (present[-1][1] if present else None)
    assert first == (present[0][1] if present else None)
    if present:
        rank = min(trusted.index(c) if c in trusted else len(trusted) for c, _ in present)
        chosen = [
            v for c, v in present if (trusted.index(c) if c in trusted else len(trusted)) == rank
        ]
        assert best == chosen[-1]
    else:
        assert best is None
