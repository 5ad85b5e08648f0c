"""Timing, memory and reporting helpers shared by every benchmark.

A benchmark measures siyu and a baseline in the same run, on the same machine and data,
and reports the ratio between them together with the absolute figures: a ratio survives a
change of machine, an absolute figure alone does not.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from statistics import median
from typing import Any, Literal

import psutil

RESULTS_DIR = Path(__file__).resolve().parent / "results"
Scale = Literal["small", "full"]
SCALES: tuple[Scale, ...] = ("small", "full")


# -- machine ------------------------------------------------------------------------------


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """What the figures depend on: cores, memory, interpreter and engine versions."""
    memory = psutil.virtual_memory()
    return {
        "cpu_logical": os.cpu_count(),
        "cpu_physical": psutil.cpu_count(logical=False),
        "cpu_model": _cpu_model(),
        "ram_gb": round(memory.total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {
            name: _package_version(name)
            for name in ("siyu", "duckdb", "pyarrow", "numpy", "ibis-framework")
        },
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# -- time ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of each measured run (warm-up runs excluded)."""

    runs: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.runs)

    @property
    def median(self) -> float:
        return median(self.runs)

    def as_dict(self) -> dict[str, Any]:
        return {"best_s": self.best, "median_s": self.median, "runs_s": list(self.runs)}


class Stopwatch:
    """Elapsed seconds of a ``with`` block: ``with Stopwatch() as sw: ...; sw.seconds``."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def time_runs(
    func: Callable[[], object],
    *,
    repeat: int = 3,
    warmup: int = 1,
    setup: Callable[[], object] | None = None,
) -> Timing:
    """Run ``func`` ``warmup`` times unmeasured, then ``repeat`` times measured.

    ``setup`` runs before every call, outside the measurement (e.g. a fresh file).
    """
    runs: list[float] = []
    for index in range(warmup + repeat):
        if setup is not None:
            setup()
        gc.collect()
        with Stopwatch() as watch:
            func()
        if index >= warmup:
            runs.append(watch.seconds)
    return Timing(tuple(runs))


def alternate(
    contenders: Mapping[str, Callable[[], float]], *, repeat: int = 3
) -> dict[str, Timing]:
    """Measure several contenders in turns, rotating who goes first, so that warm caches,
    file-system state and CPU frequency favour none of them. Each callable returns the
    seconds it measured itself (so it can leave its own setup out)."""
    names = list(contenders)
    runs: dict[str, list[float]] = {name: [] for name in names}
    for turn in range(repeat):
        shift = turn % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            runs[name].append(contenders[name]())
    return {name: Timing(tuple(values)) for name, values in runs.items()}


# -- memory -------------------------------------------------------------------------------


class PeakRss:
    """Peak resident memory of this process during a ``with`` block, sampled by a thread.

    ``resource.getrusage`` only knows the high-water mark of the whole process life; the
    sampler gives the peak of one phase. Sampling every ``interval`` seconds can miss a
    spike shorter than that, so the figure is a lower bound.
    """

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.start_bytes = 0
        self.peak_bytes = 0
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self.start_bytes = self.peak_bytes = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss)

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / 2**20

    @property
    def growth_mb(self) -> float:
        return (self.peak_bytes - self.start_bytes) / 2**20


def process_peak_rss_mb() -> float:
    """High-water mark of this process's resident memory since it started."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


# -- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A promise a figure must keep, e.g. ``siyu/raw >= 0.8`` or ``seconds < 180``."""

    label: str
    value: float
    threshold: float
    op: Literal[">=", "<=", "<", ">"]

    @property
    def met(self) -> bool:
        return {
            ">=": self.value >= self.threshold,
            "<=": self.value <= self.threshold,
            ">": self.value > self.threshold,
            "<": self.value < self.threshold,
        }[self.op]

    def describe(self) -> str:
        mark = "ok" if self.met else "MISSED"
        return f"{self.label} {_fmt(self.value)} (target {self.op} {_fmt(self.threshold)}: {mark})"

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "met": self.met}


@dataclass(frozen=True)
class Result:
    name: str
    scale: str
    ratios: dict[str, float]
    figures: dict[str, Any]
    targets: tuple[Target, ...] = ()
    path: Path | None = None
    headline: tuple[str, ...] = field(default=())

    @property
    def missed(self) -> list[Target]:
        return [target for target in self.targets if not target.met]

    def summary(self) -> str:
        """One readable line: the ratios first, then the headline absolute figures."""
        parts = [f"{label} {value:.2f}x" for label, value in self.ratios.items()]
        parts += [
            f"{key} {_fmt(self.figures[key])}" for key in self.headline if key in self.figures
        ]
        parts += [target.describe() for target in self.targets]
        return f"{self.name:<14} [{self.scale}] " + " | ".join(parts)


def record(
    name: str,
    figures: dict[str, Any],
    *,
    scale: str,
    ratios: dict[str, float],
    targets: Sequence[Target] = (),
    headline: Sequence[str] = (),
    results_dir: Path = RESULTS_DIR,
) -> Result:
    """Write ``results/<name>.json`` (machine, date, figures, ratios, targets) and print
    the one-line summary. ``headline`` names the figures the summary shows."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    document = {
        "name": name,
        "scale": scale,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "ratios": ratios,
        "targets": [target.as_dict() for target in targets],
        "figures": figures,
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
    result = Result(
        name=name,
        scale=scale,
        ratios=ratios,
        figures=figures,
        targets=tuple(targets),
        path=path,
        headline=tuple(headline),
    )
    print(result.summary(), flush=True)
    return result


def progress(message: str) -> None:
    """A progress note on stderr, so stdout keeps only the summaries."""
    print(f"  .. {message}", file=sys.stderr, flush=True)


@contextmanager
def phase(label: str) -> Iterator[Stopwatch]:
    """Time a phase and note it on stderr when it ends."""
    with Stopwatch() as watch:
        yield watch
    progress(f"{label}: {watch.seconds:.2f} s")


def per_second(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value >= 1000:
            return f"{value:,.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}"
    return str(value)
