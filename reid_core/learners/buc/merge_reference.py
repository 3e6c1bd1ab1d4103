"""Dense reference of the BUC merge step: the same procedure on the N x N cost matrix.

O(N^2) memory: for tests (labels must equal :func:`buc_merge`'s) and the benchmark only.
"""

from __future__ import annotations

import numpy as np

from reid_core.learners.buc.merge import (
    _ROW_CHUNK,
    _labels_from_parents,
    _max_sq_norm,
    _pair_costs,
    _quantization_shift,
    _quantize,
    _validate,
)


def buc_merge_dense(features: np.ndarray, labels: np.ndarray, num_merge: int, lam: float) -> np.ndarray:
    """Reference: the same procedure on the dense N x N cost matrix (O(N^2) memory).

    Pairs with cost <= the K-th smallest cost are taken in (cost, i, j) order; K
    grows until they yield ``num_merge`` merges (every pair left out costs more).
    """
    features, labels, sizes = _validate(features, labels, num_merge, lam)
    num_points, dim = features.shape
    if num_merge == 0:
        return labels
    shift = _quantization_shift(_max_sq_norm(features), dim)
    quantized = _quantize(features, shift)
    cost = quantized @ quantized.T  # exact: integer products and sums < 2**53
    del quantized
    sq_norm = np.diag(cost).copy()
    point_size = sizes[labels]
    for start in range(0, num_points, _ROW_CHUNK):
        rows = slice(start, start + _ROW_CHUNK)
        sq_dist = np.ldexp(sq_norm[rows, None] + sq_norm[None, :] - 2.0 * cost[rows], -2 * shift)
        cost[rows] = _pair_costs(sq_dist, point_size[rows, None] + point_size[None, :], lam)
        row_idx = np.arange(start, min(start + _ROW_CHUNK, num_points))
        lower = np.arange(num_points)[None, :] <= row_idx[:, None]
        invalid = lower | (labels[rows, None] == labels[None, :])
        cost[rows][invalid] = np.inf
    flat = cost.ravel()  # row-major index order == (i, j) lexicographic order
    take = min(flat.size, max(1024, 4 * num_merge))
    while True:
        threshold = np.partition(flat, take - 1)[take - 1]
        chosen = np.flatnonzero(flat <= threshold)
        chosen = chosen[np.argsort(flat[chosen], kind="stable")]
        survivor = list(range(len(sizes)))  # plain union-find, independent of _find_stop
        merges = 0
        for first, second in zip(*np.divmod(chosen, num_points)):
            a, b = labels[first], labels[second]
            while survivor[a] != a:
                a = survivor[a]
            while survivor[b] != b:
                b = survivor[b]
            if a != b:
                survivor[max(a, b)] = min(a, b)
                merges += 1
                if merges == num_merge:
                    return _labels_from_parents(np.array(survivor), labels)
        take = min(flat.size, 4 * take)
