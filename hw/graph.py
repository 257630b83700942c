"""Adder graphs: a ternary matrix times a vector as a DAG of two-input adders and subtractors.

The graph is plain Python (no Amaranth): it decides the arithmetic, the exact value range of every
node (interval arithmetic over the actual terms) and its adder level, and counts adders. The
hardware modules only translate it. :class:`Schedule` places the nodes in pipeline stages and
:func:`value_shape` is the one rule from a value range to a width.

Each row of the matrix ends as ``sign * node`` (or zero): the ``+1`` terms of a row are summed in
one balanced tree, the ``-1`` terms in another, and the two are subtracted once.
"""

import heapq
from dataclasses import dataclass

import numpy as np

__all__ = ["AdderGraph", "Schedule", "ternary_graph", "shared_graph", "value_shape"]


def value_shape(lo, hi):
    """``(width, signed)`` of the smallest two's-complement shape holding ``[lo, hi]``."""
    if lo >= 0:
        return max(1, hi.bit_length()), False
    return max((-lo - 1).bit_length(), max(hi, 0).bit_length()) + 1, True


@dataclass(frozen=True)
class Schedule:
    """The pipeline of an :class:`AdderGraph`: registers after every ``levels_per_stage``
    adder levels.

    Attributes
    ----------
    stage : tuple of int
        Stage in which each node is computed (inputs: 0; a node of level ``l`` > 0 sits in
        stage ``(l - 1) // levels_per_stage``).
    need : tuple of int
        Last stage in which each node is used (``stages`` for a row output).
    stages : int
        Register boundaries the graph spans: its contribution to the latency, in cycles.
    registered : tuple of tuple of int
        ``registered[t - 1]``: the nodes held in the register at boundary ``t`` (in order).
    computed : tuple of tuple of int
        ``computed[t]``: the adder nodes computed in stage ``t`` (in order).
    register_bits : int
        Flip-flops of all those registers.
    """
    stage: tuple
    need: tuple
    stages: int
    registered: tuple
    computed: tuple
    register_bits: int

    @classmethod
    def of(cls, graph, levels_per_stage):
        """The schedule of ``graph`` with ``levels_per_stage`` adder levels per stage."""
        k = levels_per_stage
        if k < 1:
            raise ValueError(f"levels_per_stage must be at least 1, not {k}")
        stage = [0 if lv == 0 else (lv - 1) // k for lv in graph.level]
        stages = -(-graph.depth // k)
        need = stage[:]
        for node in range(graph.n_inputs, len(graph)):
            for op in (graph.a[node], graph.b[node]):
                need[op] = max(need[op], stage[node])
        for row in graph.rows:
            if row is not None:
                need[row[0]] = stages
        registered = [[] for _ in range(stages)]
        computed = [[] for _ in range(stages + 1)]
        bits = 0
        for node, (s, n) in enumerate(zip(stage, need)):
            if node >= graph.n_inputs:
                computed[s].append(node)
            for t in range(s + 1, n + 1):
                registered[t - 1].append(node)
            if n > s:
                bits += (n - s) * value_shape(graph.lo[node], graph.hi[node])[0]
        return cls(tuple(stage), tuple(need), stages, tuple(map(tuple, registered)),
                   tuple(map(tuple, computed)), bits)


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


def ternary_graph(matrix, lo, hi, level=None, share=False):
    """The adder graph of ``matrix @ x`` for a ternary ``matrix`` and ``lo <= x <= hi``.

    Per row the ``+1`` terms and the ``-1`` terms are summed in separate trees of least depth
    and subtracted once; a row of only ``-1`` terms ends with sign ``-1`` and no subtractor.
    With ``share``, pairs ``x_i ± x_j`` common to several rows are first computed once
    (:func:`shared_graph`).
    """
    matrix = np.asarray(matrix)
    graph = AdderGraph(lo, hi, level)
    if share:
        return shared_graph(graph, matrix)
    return _finish(graph, matrix)


def _finish(graph, matrix):
    """Sum each row of ``matrix`` (columns = graph nodes) as positive tree minus negative tree."""
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


def shared_graph(graph, matrix, min_count=2):
    """Greedy sharing of common pairs (pairwise common sub-expression elimination).

    Repeatedly take the pair ``x_i + x_j`` or ``x_i - x_j`` that the most rows contain (ties:
    lower adder level, then lower indices), compute it once as a new node, and substitute it in
    every row that holds it; stop when no pair occurs in ``min_count`` rows. A new node may not
    sit deeper than the balanced tree of the longest row, so sharing saves adders without
    making the pipeline much longer. Then each row is summed as in :func:`ternary_graph`.

    Candidates wait in buckets by count and depth; counts only fall, so an entry is re-counted
    when taken (a popcount over per-column row bitmasks) and filed again if it fell. The counts
    of a new node against all columns come from one numpy product over the rows it went into.
    """
    matrix = np.asarray(matrix, dtype=np.int8)
    rows, n = matrix.shape
    longest = int(np.count_nonzero(matrix, axis=1).max(initial=0))
    cap = max(graph.level, default=0) + max(1, (longest - 1).bit_length())
    work = np.zeros((rows, n + max(64, int(np.count_nonzero(matrix)) // 2)), dtype=np.int8)
    work[:, :n] = matrix
    weights = [1 << r for r in range(rows)]
    nbytes = (rows + 7) // 8
    # per column: bitmask of the rows holding it with +1 and with -1
    plus = [sum(weights[r] for r in np.flatnonzero(col == 1).tolist()) for col in matrix.T]
    minus = [sum(weights[r] for r in np.flatnonzero(col == -1).tolist()) for col in matrix.T]
    # a pair that occurs in min_count rows has both columns in that many rows: count pairs
    # over those columns only (a dense layer's W_c has none, and 8,192 columns)
    often = np.flatnonzero(np.count_nonzero(matrix, axis=0) >= min_count)
    pos = (matrix[:, often] == 1).astype(np.int32)
    neg = (matrix[:, often] == -1).astype(np.int32)
    level = np.zeros(work.shape[1], dtype=np.int64)
    level[:n] = graph.level
    # candidates by count, then by depth: lists of packed (i, j, sign); the best count only
    # falls (a new node's pairs occur in at most as many rows as the node itself)
    buckets = [[[] for _ in range(cap + 1)] for _ in range(rows + 1)]

    def add(counts, depth, i, j, negative):
        for c, d, key in zip(counts.tolist(), depth.tolist(),
                             (i << 32 | j << 1 | negative).tolist()):
            buckets[c][d].append(key)

    for negative, counts in ((0, pos.T @ pos + neg.T @ neg), (1, pos.T @ neg + neg.T @ pos)):
        ii, jj = np.nonzero(np.triu(counts, 1) >= min_count)
        found, ii, jj = counts[ii, jj], often[ii], often[jj]
        depth = np.maximum(level[ii], level[jj]) + 1
        keep = depth <= cap
        add(found[keep], depth[keep], ii[keep], jj[keep], negative)
    # Take the best count first, then the lowest depth. A new node's pairs are deeper than the
    # node and stale entries fall to lower counts, so the list being emptied only shrinks.
    top, depth = rows, 0
    while top >= min_count:
        items = buckets[top][depth]
        if not items:
            depth += 1
            if depth > cap:
                top, depth = top - 1, 0
            continue
        key = items.pop()
        i, j, sign = key >> 32, key >> 1 & 0x7FFFFFFF, -1 if key & 1 else 1
        if sign > 0:
            hits = (plus[i] & plus[j]) | (minus[i] & minus[j])
        else:
            hits = (plus[i] & minus[j]) | (minus[i] & plus[j])
        found = hits.bit_count()
        if found < top:              # stale: file it under its true count
            if found >= min_count:
                buckets[found][depth].append(key)
            continue
        node = graph.node(i, j, sub=sign < 0)
        if node >= work.shape[1]:
            work = np.concatenate([work, np.zeros_like(work)], axis=1)
            level = np.concatenate([level, np.zeros_like(level)])
        level[node] = depth
        rows_hit = np.flatnonzero(np.unpackbits(
            np.frombuffer(hits.to_bytes(nbytes, "little"), np.uint8), bitorder="little"))
        plus.append(plus[i] & hits)
        minus.append(minus[i] & hits)
        plus[i], minus[i], plus[j], minus[j] = (plus[i] & ~hits, minus[i] & ~hits,
                                                plus[j] & ~hits, minus[j] & ~hits)
        work[rows_hit, node] = work[rows_hit, i]
        work[rows_hit, i] = 0
        work[rows_hit, j] = 0
        if depth >= cap:
            continue
        block = work[rows_hit, :node] * work[rows_hit, node][:, None]
        depth_of = np.maximum(level[:node], depth) + 1
        for negative, counts in ((0, (block == 1).sum(0)), (1, (block == -1).sum(0))):
            k = np.flatnonzero((counts >= min_count) & (depth_of <= cap))
            add(counts[k], depth_of[k], k, node, negative)
    return _finish(graph, work[:, :len(graph)])
