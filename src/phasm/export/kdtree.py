"""A k-d tree over the domain gate's reference rows, built at export time, searched exactly in C.

The domain gate's distance is the mean distance to the ``k`` nearest of up to 2048 reference
rows.  A brute-force scan costs ~10,000 operations per call; the tree answers the same question
exactly (a branch is skipped only when its splitting plane is farther than the current ``k``-th
best), visiting a few leaves.  The tree is static data:

* nodes in preorder (the left child of node ``i`` is ``i + 1``): ``dim`` (split dimension, ``-1``
  for a leaf), ``split`` (value), ``right`` (right child, or the leaf's number for a leaf);
* leaves of ``leaf_size`` points stored dimension-major (``leaf[l, d, q]``, padded with zeros and
  ``count[l]`` real points), so the distances of a leaf's points are one vectorised loop;
* ``rows[l, q]``: the reference row of each leaf slot (``-1``: padding).

The build is deterministic (stable sorts, ties broken by row index): the same model gives the same
bytes.

Example
-------
>>> import numpy as np
>>> P = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32)
>>> tree = build_kdtree(P, leaf_size=8)
>>> d, rows = tree.query(np.zeros(3), k=3)
>>> bool(np.allclose(d, np.sort(np.linalg.norm(P.astype(float), axis=1))[:3]))
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEAF_SIZE = 16


@dataclass
class KDTree:
    """Static k-d tree arrays (see the module docstring)."""

    dim: np.ndarray  # (nodes,) int
    split: np.ndarray  # (nodes,) float32
    right: np.ndarray  # (nodes,) int
    leaf: np.ndarray  # (leaves, d, leaf_size) float32
    count: np.ndarray  # (leaves,) int
    rows: np.ndarray  # (leaves, leaf_size) int, -1 for padding
    depth: int

    @property
    def leaf_size(self) -> int:
        return int(self.leaf.shape[2])

    def query(self, z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Distances and reference rows of the ``k`` nearest points to one float64 row, by the C algorithm."""
        z = np.asarray(z, np.float64)
        best = [np.inf] * k
        slot = [-1] * k
        stack = [(0, 0.0)]
        while stack:
            at, bound = stack.pop()
            if not bound < best[-1]:
                continue
            while self.dim[at] >= 0:
                diff = z[int(self.dim[at])] - float(self.split[at])
                right = int(self.right[at])
                far, at = (right, at + 1) if diff < 0 else (at + 1, right)
                if diff * diff < best[-1]:
                    stack.append((far, diff * diff))
            leaf = int(self.right[at])
            d2 = ((z[:, None] - self.leaf[leaf].astype(np.float64)) ** 2).sum(0)
            for q in range(int(self.count[leaf])):
                if d2[q] < best[-1]:
                    j = k - 1
                    while j > 0 and best[j - 1] > d2[q]:
                        best[j], slot[j] = best[j - 1], slot[j - 1]
                        j -= 1
                    best[j], slot[j] = float(d2[q]), leaf * self.leaf_size + q
        return np.sqrt(np.asarray(best)), self.rows.reshape(-1)[slot]


def build_kdtree(points: np.ndarray, leaf_size: int = LEAF_SIZE) -> KDTree:
    """Balanced k-d tree (median splits on the widest dimension) over ``points`` ``(m, d)``."""
    P = np.ascontiguousarray(points, np.float32)
    m, n_dim = P.shape
    order = np.arange(m)
    dims: list[int] = []
    splits: list[float] = []
    rights: list[int] = []
    leaves: list[np.ndarray] = []
    depth = 0

    def build(lo: int, hi: int, level: int) -> None:
        nonlocal depth
        depth = max(depth, level)
        node = len(dims)
        dims.append(-1)
        splits.append(0.0)
        rights.append(0)
        if hi - lo <= leaf_size:
            rights[node] = len(leaves)
            leaves.append(order[lo:hi].copy())
            return
        idx = order[lo:hi]
        sub = P[idx].astype(np.float64)
        d = int(np.argmax(sub.max(0) - sub.min(0)))  # first widest dimension (0 when all points coincide)
        order[lo:hi] = idx[np.lexsort((idx, sub[:, d]))]  # by coordinate, ties by row: deterministic
        mid = (lo + hi) // 2
        dims[node] = d
        splits[node] = float(P[order[mid], d])
        build(lo, mid, level + 1)
        rights[node] = len(dims)
        build(mid, hi, level + 1)

    build(0, m, 1)
    n_leaves = len(leaves)
    block = np.zeros((n_leaves, n_dim, leaf_size), np.float32)
    rows = np.full((n_leaves, leaf_size), -1, np.int64)
    count = np.zeros(n_leaves, np.int64)
    for i, members in enumerate(leaves):
        block[i, :, : len(members)] = P[members].T
        rows[i, : len(members)] = members
        count[i] = len(members)
    return KDTree(np.asarray(dims, np.int64), np.asarray(splits, np.float32), np.asarray(rights, np.int64),
                  block, count, rows, depth)
