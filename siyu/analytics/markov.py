"""The data-driven attribution model: a first-order Markov chain over touch paths, and each
state's removal effect (how much less often people convert when the state is taken away).

Paths start at :data:`START` and end in :data:`CONVERSION` or :data:`NULL`; transition counts
come from the engine, the small absorbing chain is solved here with numpy.
"""

from __future__ import annotations

import numpy as np

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"


def conversion_probability(
    counts: dict[tuple[str, str], float], removed: str | None = None
) -> float:
    """Probability of reaching ``(conversion)`` from ``(start)`` in the first-order chain the
    transition ``counts`` define; with ``removed``, that state leads to ``(null)``."""
    states = sorted({s for pair in counts for s in pair} - {CONVERSION, NULL})
    if START not in states:
        return 0.0
    index = {s: i for i, s in enumerate(states)}
    size = len(states)
    q = np.zeros((size, size))
    to_conversion = np.zeros(size)
    outflow = np.zeros(size)
    for (source, _target), count in counts.items():
        outflow[index[source]] += count
    for (source, target), count in counts.items():
        i = index[source]
        if source == removed:
            continue
        share = count / outflow[i]
        if target == CONVERSION:
            to_conversion[i] += share
        elif target != NULL and target != removed:
            q[i, index[target]] += share
    solved = np.linalg.solve(np.eye(size) - q, to_conversion)
    return float(solved[index[START]])


def removal_effects(counts: dict[tuple[str, str], float]) -> tuple[float, dict[str, float]]:
    """The chain's conversion probability and each touch state's removal effect
    (1 − probability without the state / probability)."""
    base = conversion_probability(counts)
    states = sorted({s for pair in counts for s in pair} - {START, CONVERSION, NULL})
    if base <= 0:
        return base, dict.fromkeys(states, 0.0)
    return base, {s: max(0.0, 1.0 - conversion_probability(counts, s) / base) for s in states}


def shares(effects: dict[str, float]) -> dict[str, float]:
    """Removal effects normalised to shares of credit (all zero when nothing converts)."""
    total = sum(effects.values())
    return {s: (e / total if total > 0 else 0.0) for s, e in effects.items()}
