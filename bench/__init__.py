"""siyu benchmarks: every performance claim, measured against a baseline in the same run.

Run them with ``make bench`` (``--scale small``) or ``make bench SCALE=full``; one benchmark
is a module ``bench/bench_<name>.py`` with a ``run(scale) -> Result`` function.
"""
