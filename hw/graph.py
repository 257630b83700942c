"""Adder graphs: a ternary matrix times a vector as a DAG of two-input adders and subtractors.

The graph is plain Python (no Amaranth): it decides the arithmetic, the exact value range of every
node (interval arithmetic over the actual terms) and its adder level, and counts adders. The
hardware modules only translate it.

Each row of the matrix ends as ``sign * node`` (or zero): the ``+1`` terms of a row are summed in
one balanced tree, the ``-1`` terms in another, and the two are subtracted once.
"""

import heapq

import numpy as np

__all__ = ["AdderGraph", "ternary_graph"]


class AdderGraph:
    """A DAG of adders over ``n`` inputs.

    Nodes ``0 .. n-1`` are the inputs; every later node is ``a + b`` or ``a - b`` of two earlier
    nodes. ``lo[k] <= value(k) <= hi[k]`` holds exactly, and ``level[k]`` counts adder levels
    from the inputs (inputs start at their given level).

    Parameters
    ----------
    lo, hi : sequence of int
        Exact range of each input.
    level : sequence of int, optional
        Adder level at which each input becomes available (default 0).
    """

    def __init__(self, lo, hi, level=None):
        n = len(lo)
        self.n_inputs = n
        self.a = [-1] * n
        self.b = [-1] * n
        self.sub = [False] * n
        self.lo = [int(v) for v in lo]
        self.hi = [int(v) for v in hi]
        self.level = [0] * n if level is None else [int(v) for v in level]
        #: per row: ``(node, sign)`` with sign +1/-1, or ``None`` for a row that is always 0
        self.rows = []

    def __len__(self):
        return len(self.a)

    @property
    def adders(self):
        """Number of two-input adders and subtractors."""
        return len(self.a) - self.n_inputs

    @property
    def depth(self):
        """Largest adder level of a row output (0 when no row needs an adder)."""
        return max((self.level[row[0]] for row in self.rows if row is not None), default=0)

    def node(self, a, b, sub=False):
        """Append ``a - b`` (``sub``) or ``a + b`` and return its index."""
        if sub:
            lo, hi = self.lo[a] - self.hi[b], self.hi[a] - self.lo[b]
        else:
            lo, hi = self.lo[a] + self.lo[b], self.hi[a] + self.hi[b]
        self.a.append(a)
        self.b.append(b)
        self.sub.append(sub)
        self.lo.append(lo)
        self.hi.append(hi)
        self.level.append(max(self.level[a], self.level[b]) + 1)
        return len(self.a) - 1

    def tree(self, terms):
        """Sum the nodes ``terms`` in a tree of least depth (Huffman on levels); returns the
        root, or ``None`` for no terms. Ties break on order, so the result is deterministic."""
        heap = [(self.level[t], k, t) for k, t in enumerate(terms)]
        heapq.heapify(heap)
        seq = len(heap)
        while len(heap) > 1:
            _, _, a = heapq.heappop(heap)
            _, _, b = heapq.heappop(heap)
            c = self.node(a, b)
            heapq.heappush(heap, (self.level[c], seq, c))
            seq += 1
        return heap[0][2] if heap else None

    def evaluate(self, x):
        """Row values for integer inputs ``x`` (batch, n): a check of the graph, in int64."""
        x = np.asarray(x, dtype=np.int64)
        values = [x[:, j] for j in range(self.n_inputs)]
        for k in range(self.n_inputs, len(self.a)):
            a, b = values[self.a[k]], values[self.b[k]]
            values.append(a - b if self.sub[k] else a + b)
        out = np.zeros((x.shape[0], len(self.rows)), dtype=np.int64)
        for i, row in enumerate(self.rows):
            if row is not None:
                out[:, i] = row[1] * values[row[0]]
        return out


def ternary_graph(matrix, lo, hi, level=None):
    """The adder graph of ``matrix @ x`` for a ternary ``matrix`` and ``lo <= x <= hi``.

    Per row the ``+1`` terms and the ``-1`` terms are summed in separate trees of least depth
    and subtracted once; a row of only ``-1`` terms ends with sign ``-1`` and no subtractor.
    """
    matrix = np.asarray(matrix)
    graph = AdderGraph(lo, hi, level)
    for row in matrix:
        pos = graph.tree(np.flatnonzero(row == 1).tolist())
        neg = graph.tree(np.flatnonzero(row == -1).tolist())
        if pos is None and neg is None:
            graph.rows.append(None)
        elif neg is None:
            graph.rows.append((pos, 1))
        elif pos is None:
            graph.rows.append((neg, -1))
        else:
            graph.rows.append((graph.node(pos, neg, sub=True), 1))
    return graph
