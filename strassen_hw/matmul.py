"""Bilinear matrix-multiplication algorithms ``vec(C) = W_c[(W_b vec(B)) ⊙ (W_a vec(A))]``.

An algorithm for ``n×n`` matrices with ``r`` products is three ternary integer matrices:
``W_a`` and ``W_b`` (``r×n²``) and ``W_c`` (``n²×r``). ``vec`` is **row-major** here:
``vec(A)[p*n + q] = A[p, q]``. The algorithm is exact when its tensor equals the
matrix-multiplication tensor, checked in integers::

    Σ_j (W_c)[i, j] (W_a)[j, k] (W_b)[j, l] == M_n[i, k, l]

The paper (StrassenNets, eq. 2 and Sec. 3.1) prints its matrices for the column-major
``vec``; :data:`STRASSEN` and :data:`PAPER_LEARNED` hold them converted to row-major
(columns of ``W_a``/``W_b`` and rows of ``W_c`` permuted by :func:`from_column_major`).

Solutions are stored as JSON ``{"W_a": [[...]], "W_b": [[...]], "W_c": [[...]]}``.
Numpy only: nothing here imports torch or amaranth.
"""

import json
import math
from dataclasses import dataclass

import numpy as np

from .frozen import FrozenError

__all__ = [
    "AlgorithmError", "BilinearAlgorithm", "matmul_tensor", "from_column_major", "load_algorithm",
    "save_algorithm", "is_algorithm_file", "STRASSEN", "PAPER_LEARNED",
]


class AlgorithmError(FrozenError):
    """A bilinear algorithm (or its JSON file) is malformed; the message is one line.

    A :class:`~strassen_hw.frozen.FrozenError`, so the command line reports it as a user error.
    """


def matmul_tensor(n):
    """The ``n×n`` matrix-multiplication tensor ``M_n`` (int64, shape ``(n², n², n²)``).

    ``M_n[i, k, l] = 1`` exactly when ``C[i] += A[k] * B[l]`` in ``C = A @ B`` (row-major
    indices): ``i = p*n + q``, ``k = p*n + s``, ``l = s*n + q``.
    """
    t = np.zeros((n * n,) * 3, dtype=np.int64)
    for p in range(n):
        for q in range(n):
            for s in range(n):
                t[p * n + q, p * n + s, s * n + q] = 1
    return t


def _ternary(name, value, shape=None):
    try:
        array = np.array(value, dtype=object)
    except Exception:
        array = None
    if array is None or array.ndim != 2 or 0 in array.shape:
        raise AlgorithmError(f"{name} must be a non-empty 2-D array of integers")
    for v in array.flat:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v not in (-1, 0, 1):
            raise AlgorithmError(f"{name} must hold only -1, 0 and 1, not {v!r}")
    array = array.astype(np.int64)
    if shape is not None and array.shape != shape:
        raise AlgorithmError(f"{name} has shape {array.shape[0]}x{array.shape[1]}, "
                             f"expected {shape[0]}x{shape[1]}")
    return array


@dataclass(frozen=True, eq=False)
class BilinearAlgorithm:
    """Ternary ``W_a``, ``W_b`` (``r×n²``) and ``W_c`` (``n²×r``); validated on construction.

    The constructor checks values and shapes, not exactness: see :meth:`is_exact`.
    """
    w_a: np.ndarray
    w_b: np.ndarray
    w_c: np.ndarray

    def __post_init__(self):
        w_a = _ternary("W_a", self.w_a)
        r, n2 = w_a.shape
        n = math.isqrt(n2)
        if n * n != n2:
            raise AlgorithmError(f"W_a has {n2} columns; it must be n² for n×n matrices")
        object.__setattr__(self, "w_a", w_a)
        object.__setattr__(self, "w_b", _ternary("W_b", self.w_b, (r, n2)))
        object.__setattr__(self, "w_c", _ternary("W_c", self.w_c, (n2, r)))

    @property
    def n(self):
        """Matrix size: the algorithm multiplies ``n×n`` matrices."""
        return math.isqrt(self.w_a.shape[1])

    @property
    def r(self):
        """Number of products (multiplications of two variables)."""
        return self.w_a.shape[0]

    def tensor(self):
        """The tensor ``Σ_j W_c[i,j] W_a[j,k] W_b[j,l]`` (int64, shape ``(n², n², n²)``)."""
        return np.einsum("ij,jk,jl->ikl", self.w_c, self.w_a, self.w_b)

    def is_exact(self):
        """True when the algorithm computes ``A @ B`` exactly for all matrices."""
        return bool(np.array_equal(self.tensor(), matmul_tensor(self.n)))

    def multiply(self, a, b):
        """``C = A @ B`` the algorithm's way, in exact integers.

        Parameters
        ----------
        a, b : array_like of int, shape ``(n, n)`` or ``(N, n, n)``

        Returns
        -------
        ndarray of int64 (or object for huge values), same shape as ``a``
        """
        a, b = np.asarray(a), np.asarray(b)
        n = self.n
        va, vb = a.reshape(-1, n * n), b.reshape(-1, n * n)
        products = (va @ self.w_a.T) * (vb @ self.w_b.T)
        return (products @ self.w_c.T).reshape(a.shape)

    def canonical(self):
        """A key equal for algorithms that differ only by order of products and sign flips.

        A product ``(a_j, b_j, c_j)`` is unchanged by flipping the signs of two of its three
        factors; the key makes the first non-zero entry of ``a_j`` and of ``b_j`` positive,
        then sorts the products.
        """
        rows = []
        for j in range(self.r):
            a, b, c = self.w_a[j].copy(), self.w_b[j].copy(), self.w_c[:, j].copy()
            for v in (a, b):
                nz = np.flatnonzero(v)
                if nz.size and v[nz[0]] < 0:
                    v *= -1
                    c *= -1
            rows.append(tuple(a.tolist()) + tuple(b.tolist()) + tuple(c.tolist()))
        return tuple(sorted(rows))

    def to_json(self):
        return {"W_a": self.w_a.tolist(), "W_b": self.w_b.tolist(), "W_c": self.w_c.tolist()}


def from_column_major(w_a, w_b, w_c):
    """Convert matrices written for the column-major ``vec`` (the paper's) to row-major."""
    w_a, w_b, w_c = (np.asarray(w, dtype=np.int64) for w in (w_a, w_b, w_c))
    n = math.isqrt(w_a.shape[1])
    perm = np.array([(k % n) * n + k // n for k in range(n * n)])   # row-major -> col-major
    return BilinearAlgorithm(w_a[:, perm], w_b[:, perm], w_c[perm, :])


def save_algorithm(algorithm, path):
    """Write ``{"W_a", "W_b", "W_c"}`` as JSON (nested integer lists) atomically."""
    from .frozen import atomic_write
    text = json.dumps(algorithm.to_json(), separators=(", ", ": "))
    atomic_write(path, (text + "\n").encode())


def load_algorithm(path):
    """Read a solution written by :func:`save_algorithm` (or by hand); validates it."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise AlgorithmError(f"{path}: no such file (a bilinear solution .json)")
    except (OSError, ValueError) as e:
        raise AlgorithmError(f"{path}: not a JSON file ({e})")
    if not isinstance(doc, dict) or not {"W_a", "W_b", "W_c"} <= set(doc):
        raise AlgorithmError(f"{path}: must be an object with the keys W_a, W_b and W_c")
    try:
        return BilinearAlgorithm(doc["W_a"], doc["W_b"], doc["W_c"])
    except AlgorithmError as e:
        raise AlgorithmError(f"{path}: {e}")


def is_algorithm_file(path):
    """True when ``path`` is a JSON object with a ``W_a`` key (a solution, not a network)."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and "W_a" in doc


#: Strassen (1969), as printed in the paper's eq. 2, converted to row-major ``vec``.
STRASSEN = from_column_major(
    [[1, 0, 0, 1], [0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 1], [1, 0, 1, 0], [-1, 1, 0, 0],
     [0, 0, 1, -1]],
    [[1, 0, 0, 1], [1, 0, 0, 0], [0, 0, 1, -1], [-1, 1, 0, 0], [0, 0, 0, 1], [1, 0, 1, 0],
     [0, 1, 0, 1]],
    [[1, 0, 0, 1, -1, 0, 1], [0, 1, 0, 1, 0, 0, 0], [0, 0, 1, 0, 1, 0, 0],
     [1, -1, 1, 0, 0, 1, 0]])

#: The solution the paper learned (Sec. 3.1), converted to row-major ``vec``.
PAPER_LEARNED = from_column_major(
    [[-1, -1, 0, 0], [0, 0, 0, 1], [-1, -1, 1, 1], [-1, 0, 1, 0], [-1, -1, 1, 0],
     [0, 0, 1, 0], [0, -1, 0, 0]],
    [[-1, -1, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0], [1, 0, 1, 0], [-1, -1, -1, 0],
     [1, 1, 1, 1], [0, 0, -1, 0]],
    [[1, 0, 0, -1, -1, 0, 1], [0, 0, 1, 1, 1, 0, -1], [-1, 0, 0, 0, 1, 1, -1],
     [0, 1, 0, 0, 0, 0, 1]])
