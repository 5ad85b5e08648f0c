"""Is a day's metric value unusual? Three baselines, one decision rule.

- ``weekday``: the same weekday in the 4 weeks before (median; noise = scaled MAD). Retail
  traffic has a strong weekly rhythm, so Monday is compared with Mondays.
- ``mad``: the 28 days before, robust median and scaled MAD (no seasonality).
- ``stl``: an STL decomposition (statsmodels, period 7, robust) of the 8 weeks before; the
  expected value is the last trend plus the seasonal component of the same weekday, the noise
  the scaled MAD of the residuals.

A value is anomalous when its relative change from the expected value reaches the rule's
threshold (default ±15%) **and** the absolute difference exceeds ``sensitivity`` × noise
(default 3), so a noisy metric needs a bigger move. Missing history gives no verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from enum import StrEnum
from statistics import NormalDist

import numpy as np
from pydantic import BaseModel

# Makes the MAD a consistent estimate of a normal standard deviation: 1 / Φ⁻¹(3/4) ≈ 1.4826.
MAD_SCALE = 1 / NormalDist().inv_cdf(0.75)
HISTORY_DAYS = {"weekday": 28, "mad": 28, "stl": 56}


class Method(StrEnum):
    weekday = "weekday"
    mad = "mad"
    stl = "stl"


class Direction(StrEnum):
    both = "both"
    up = "up"
    down = "down"


class Verdict(BaseModel):
    day: date
    value: float | None
    expected: float | None
    noise: float | None
    change: float | None
    lower: float | None
    upper: float | None
    direction: Direction | None
    anomalous: bool


def _mad(values: np.ndarray) -> float:
    return float(MAD_SCALE * np.median(np.abs(values - np.median(values))))


def baseline(history: Sequence[float | None], method: Method) -> tuple[float, float] | None:
    """Expected value and noise for the day after ``history`` (oldest first, one per day);
    None when there is not enough of it."""
    days = HISTORY_DAYS[method]
    recent = list(history)[-days:]
    if method is Method.weekday:
        same_weekday = [recent[i] for i in range(len(recent) - 7, -1, -7)]
        values = np.array([v for v in same_weekday if v is not None], dtype=float)
        if len(values) < 3:
            return None
        return float(np.median(values)), _mad(values)
    if method is Method.mad:
        values = np.array([v for v in recent if v is not None], dtype=float)
        if len(values) < 14:
            return None
        return float(np.median(values)), _mad(values)
    if len(recent) < days or any(v is None for v in recent):
        return None
    from statsmodels.tsa.seasonal import STL

    series = np.array(recent, dtype=float)
    fit = STL(series, period=7, robust=True).fit()
    expected = float(fit.trend[-1] + fit.seasonal[-7])
    return expected, _mad(np.asarray(fit.resid))


def judge(
    day: date,
    value: float | None,
    history: Sequence[float | None],
    *,
    method: Method = Method.weekday,
    threshold: float = 0.15,
    sensitivity: float = 3.0,
    direction: Direction = Direction.both,
) -> Verdict:
    """The verdict on ``value`` given the days before it."""
    found = baseline(history, method) if value is not None else None
    if found is None or value is None:
        return Verdict(
            day=day, value=value, expected=None, noise=None, change=None,
            lower=None, upper=None, direction=None, anomalous=False,
        )  # fmt: skip
    expected, noise = found
    band = max(abs(expected) * threshold, sensitivity * noise)
    moved = value - expected
    change = moved / abs(expected) if expected else None
    way = Direction.up if moved > 0 else Direction.down if moved < 0 else None
    outside = (
        expected != 0
        and change is not None
        and abs(change) >= threshold
        and abs(moved) > sensitivity * noise
    )
    wanted = direction is Direction.both or way is direction
    return Verdict(
        day=day,
        value=value,
        expected=expected,
        noise=noise,
        change=change,
        lower=expected - band,
        upper=expected + band,
        direction=way,
        anomalous=bool(outside and wanted),
    )


def history_start(day: date, method: Method) -> date:
    return day - timedelta(days=HISTORY_DAYS[method])
