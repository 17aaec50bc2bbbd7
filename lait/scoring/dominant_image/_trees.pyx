# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The ranker's tree walk (:meth:`DominantImageRanker.decision_function`) compiled: every row down
every tree in C, instead of numpy's gathers over every (row, tree) pair at each level, which cost
more in set-up than in work for the ten-odd candidates of a page.

It must give exactly the leaf values numpy's walk reaches (tests/test_dominant_image.py compares
them); the numpy walk stays the definition, and runs wherever this module was not built.
"""

import numpy as np


def leaf_values(const float[:, ::1] X, const int[::1] feature, const double[::1] threshold, const int[::1] left,
                const int[::1] right, const double[::1] value, const int[::1] roots, int depth):
    """`(rows, trees)` array of the value of the node each row reaches in each tree after `depth`
    steps. A row goes left where its feature value is at most the threshold; a leaf's feature is
    -1 and its children are itself, so a row stays at the leaf it reaches (reading column 0 there,
    as numpy's walk does). Raises ValueError for a node or feature out of range (where numpy
    raises IndexError).
    """
    cdef Py_ssize_t n_rows = X.shape[0], n_columns = X.shape[1], n_trees = roots.shape[0], row, tree
    cdef Py_ssize_t n_nodes = feature.shape[0]
    cdef int node, split, level, go_left
    if threshold.shape[0] != n_nodes or left.shape[0] != n_nodes or right.shape[0] != n_nodes or \
            value.shape[0] != n_nodes:
        raise ValueError("the tree arrays differ in length")
    leaves = np.empty((n_rows, n_trees), dtype=np.float64)
    cdef double[:, ::1] out = leaves
    at_of_row = np.empty(n_rows, dtype=np.intc)
    cdef int[::1] at = at_of_row
    # Tree by tree, all rows a level at a time: a tree's few nodes stay in the nearest cache, and
    # the rows' steps, each waiting on the one before in its row, overlap in the processor. The
    # step to a child is arithmetic, not a branch, which would be mispredicted half the time.
    for tree in range(n_trees):
        at[:] = roots[tree]
        for level in range(depth + 1):
            for row in range(n_rows):
                node = at[row]
                if node < 0 or node >= n_nodes:
                    raise ValueError(f"tree {tree} reaches node {node} of {n_nodes}")
                if level == depth:
                    out[row, tree] = value[node]
                    continue
                split = feature[node] if feature[node] > 0 else 0
                if split >= n_columns:
                    raise ValueError(f"node {node} splits on column {split} of {n_columns}")
                go_left = X[row, split] <= threshold[node]
                at[row] = go_left * left[node] + (1 - go_left) * right[node]
    return leaves
