"""Connected components of the identifier graph, with exclusion constraints.

Most people are a plain connected component, found by scipy in C for millions of nodes. Only
components that would hold two labels of one family (two member numbers, or the two sides of
an undone merge) are rebuilt edge by edge, strongest links first, refusing any link that
would join two labels of a family. Those components are few, so the Python loop is small.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

IntArray = npt.NDArray[np.int64]


def components(
    n_nodes: int,
    a: IntArray,
    b: IntArray,
    edge_rank: IntArray,
    label_node: IntArray,
    label_family: IntArray,
    label_value: IntArray,
) -> tuple[IntArray, int]:
    """Component number of each node, and how many components needed splitting.

    ``edge_rank`` orders links when a component is rebuilt (lower links first). A node may
    carry labels (``label_node[i]`` has ``label_value[i]`` in ``label_family[i]``); no
    component holds two different values of one family.
    """
    if n_nodes == 0:
        return np.zeros(0, dtype=np.int64), 0
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n_nodes, n_nodes))
    _, comp = connected_components(graph, directed=False)
    comp = comp.astype(np.int64)
    conflicted = _conflicted(comp, label_node, label_family, label_value)
    if len(conflicted) == 0:
        return _compact(comp), 0
    in_conflict = np.isin(comp, conflicted)
    nodes = np.flatnonzero(in_conflict)
    edge_mask = in_conflict[a]
    order = np.lexsort((b[edge_mask], a[edge_mask], edge_rank[edge_mask]))
    sub_a, sub_b = a[edge_mask][order], b[edge_mask][order]
    labels: dict[int, dict[int, int]] = {}
    for node, family, value in zip(label_node, label_family, label_value, strict=True):
        if in_conflict[node]:
            labels.setdefault(int(node), {})[int(family)] = int(value)
    roots = _constrained_union(nodes, sub_a, sub_b, labels)
    new_comp = comp.copy()
    offset = int(comp.max()) + 1
    for node, root in roots.items():
        new_comp[node] = offset + root
    return _compact(new_comp), len(conflicted)


def _conflicted(comp: IntArray, node: IntArray, family: IntArray, value: IntArray) -> IntArray:
    if len(node) == 0:
        return np.zeros(0, dtype=np.int64)
    triples = np.unique(np.stack([comp[node], family, value], axis=1), axis=0)
    pairs, counts = np.unique(triples[:, :2], axis=0, return_counts=True)
    return np.unique(pairs[counts > 1, 0])


def _constrained_union(
    nodes: IntArray, a: IntArray, b: IntArray, labels: dict[int, dict[int, int]]
) -> dict[int, int]:
    parent = {int(n): int(n) for n in nodes}
    held = {n: dict(labels.get(n, {})) for n in parent}

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        rx, ry = find(x), find(y)
        if rx == ry:
            continue
        hx, hy = held[rx], held[ry]
        if any(family in hy and hy[family] != value for family, value in hx.items()):
            continue  # this link would join two labels of a family: refuse it
        small, large = (rx, ry) if len(hx) <= len(hy) else (ry, rx)
        parent[small] = large
        held[large].update(held[small])
    return {n: find(n) for n in parent}


def _compact(comp: IntArray) -> IntArray:
    _, dense = np.unique(comp, return_inverse=True)
    return dense.astype(np.int64)
