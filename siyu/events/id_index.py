"""An in-memory index of stored event-id hashes, so deduplication costs O(batch), not O(table).

Hashes are kept as sorted ``uint64`` runs merged like a binary counter (a small LSM tree):
a lookup is one ``searchsorted`` per run, an insert amortises to O(log n) per id. A hash hit
is only a *candidate* duplicate; the store confirms it against the stored ids, so a hash
collision can never drop an event.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]


class IdHashIndex:
    def __init__(self, initial: U64 | None = None) -> None:
        self._runs: list[U64] = []
        if initial is not None and len(initial):
            self._runs.append(np.sort(initial.astype(np.uint64, copy=False)))

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def contains(self, hashes: U64) -> npt.NDArray[np.bool_]:
        """Which of ``hashes`` are in the index (searched in sorted order, for cache locality)."""
        order = np.argsort(hashes, kind="stable")
        needles = hashes[order]
        found_sorted = np.zeros(len(hashes), dtype=bool)
        for run in self._runs:
            positions = np.searchsorted(run, needles)
            inside = positions < len(run)
            found_sorted[inside] |= run[positions[inside]] == needles[inside]
        found = np.empty(len(hashes), dtype=bool)
        found[order] = found_sorted
        return found

    def add(self, hashes: U64) -> None:
        if not len(hashes):
            return
        run = np.sort(hashes.astype(np.uint64, copy=False))
        # Merge while the newest run is at least as large as the one before it.
        while self._runs and len(self._runs[-1]) <= len(run):
            run = np.sort(np.concatenate([self._runs.pop(), run]), kind="mergesort")
        self._runs.append(run)
