# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The ranker's tree walk (:meth:`DominantImageRanker.decision_function`) compiled: each row down
each tree in C, instead of numpy's gathers over every (row, tree) pair at each level, which cost
more in set-up than in work for the ten-odd candidates of a page.

It must give exactly the leaf values numpy's walk reaches (tests/test_dominant_image.py compares
them); the numpy walk stays the definition, and runs wherever this module was not built.
"""

import numpy as np


def leaf_values(const float[:, ::1] X, const int[::1] feature, const double[::1] threshold, const int[::1] left,
                const int[::1] right, const double[::1] value, const int[::1] roots, int depth):
    """`(rows, trees)` array of the value of the leaf each row reaches in each tree. A node's
    feature is -1 at a leaf; a row goes left where its feature value is at most the threshold.
    Raises ValueError for a node or feature out of range (where numpy raises IndexError)."""
    cdef Py_ssize_t n_rows = X.shape[0], n_columns = X.shape[1], n_trees = roots.shape[0], row, tree
    cdef Py_ssize_t n_nodes = feature.shape[0]
    cdef int node, level, split
    if threshold.shape[0] != n_nodes or left.shape[0] != n_nodes or right.shape[0] != n_nodes or \
            value.shape[0] != n_nodes:
        raise ValueError("the tree arrays differ in length")
    leaves = np.empty((n_rows, n_trees), dtype=np.float64)
    cdef double[:, ::1] out = leaves
    for row in range(n_rows):
        for tree in range(n_trees):
            node = roots[tree]
            for level in range(depth + 1):
                if node < 0 or node >= n_nodes:
                    raise ValueError(f"tree {tree} reaches node {node} of {n_nodes}")
                split = feature[node]
                if split < 0 or level == depth:
                    break
                if split >= n_columns:
                    raise ValueError(f"node {node} splits on column {split} of {n_columns}")
                node = left[node] if <double>X[row, split] <= threshold[node] else right[node]
            out[row, tree] = value[node]
    return leaves
