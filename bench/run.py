"""Run the benchmarks: ``python -m bench.run [names …] [--scale small|full]``.

Every ``bench/bench_<name>.py`` with a ``run(scale)`` function is a benchmark. Each prints
one summary line and writes ``bench/results/<name>.json``. The exit status is 1 when a
benchmark misses a target or fails, so CI can gate on it.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path

from bench.harness import SCALES, Result, Scale, machine_info

PACKAGE_DIR = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(
        info.name.removeprefix("bench_")
        for info in pkgutil.iter_modules([str(PACKAGE_DIR)])
        if info.name.startswith("bench_")
    )


def run_one(name: str, scale: Scale) -> Result:
    module = importlib.import_module(f"bench.bench_{name}")
    result: Result = module.run(scale)
    return result


def main(argv: list[str] | None = None) -> int:
    names = available()
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all of {', '.join(names)})",
    )
    parser.add_argument(
        "--scale", choices=SCALES, default="small", help="data size (default: small)"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(names))
        return 0
    unknown = [name for name in args.names if name not in names]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(names)}")

    machine = machine_info()
    print(
        f"siyu bench, scale {args.scale}: {machine['cpu_logical']} cores, "
        f"{machine['ram_gb']} GB RAM, Python {machine['python']}, "
        f"DuckDB {machine['versions']['duckdb']}",
        flush=True,
    )
    missed: list[str] = []
    failed: list[str] = []
    for name in args.names or names:
        started = time.perf_counter()
        try:
            result = run_one(name, args.scale)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            print(f"{name}: FAILED", flush=True)
            continue
        missed += [f"{name}: {target.describe()}" for target in result.missed]
        print(
            f"  ({name} took {time.perf_counter() - started:.1f} s; {result.path})",
            file=sys.stderr,
            flush=True,
        )

    if failed:
        print(f"Benchmarks that failed: {', '.join(failed)}", flush=True)
    if missed:
        print("Targets missed:", *missed, sep="\n  ", flush=True)
    return 1 if failed or missed else 0


if __name__ == "__main__":
    sys.exit(main())
