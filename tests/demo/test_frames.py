"""The generator's vectorised building blocks, checked against plain Python."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from siyu.demo.frames import digits, json_object, money, rank_within, repeat_index, tokens


@given(
    st.lists(st.text(), min_size=1, max_size=20),
    st.lists(st.integers(-(10**9), 10**9), min_size=1, max_size=20),
)
def test_json_object_escapes_any_text(texts: list[str], numbers: list[int]) -> None:
    size = min(len(texts), len(numbers))
    built = json_object(name=pa.array(texts[:size]), count=pa.array(numbers[:size]), kind="x")
    expected = [{"name": t, "count": c, "kind": "x"} for t, c in zip(texts, numbers, strict=False)]
    assert [json.loads(row) for row in built.to_pylist()] == expected[:size]


def test_json_object_is_null_where_a_value_is_null() -> None:
    built = json_object(a=pa.array(["x", None]))
    assert built.to_pylist() == ['{"a":"x"}', None]


@given(st.lists(st.integers(0, 5), max_size=30), st.randoms())
def test_rank_within_matches_a_python_count(groups: list[int], random) -> None:
    order = [random.choice([0.1, 0.2, random.random()]) for _ in groups]  # ties included
    ranks = rank_within(np.array(groups, dtype=np.int64), np.array(order))
    for i, (group, key) in enumerate(zip(groups, order, strict=True)):
        before = [
            j
            for j, (g, k) in enumerate(zip(groups, order, strict=True))
            if g == group and (k, j) < (key, i)
        ]
        assert ranks[i] == 1 + len(before)


def test_small_helpers() -> None:
    assert repeat_index(np.array([2, 0, 3])).tolist() == [0, 0, 2, 2, 2]
    assert digits(np.array([7, 1234]), 5).to_pylist() == ["00007", "01234"]
    assert [str(v) for v in money(np.array([1, 12345, 0])).to_pylist()] == [
        "0.01",
        "123.45",
        "0.00",
    ]
    ids = tokens(np.random.default_rng(0), 1000, 26, "oX").to_pylist()
    assert len(set(ids)) == 1000 and all(i.startswith("oX") and len(i) == 28 for i in ids)
