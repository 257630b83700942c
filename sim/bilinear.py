"""Verilator simulation of a bilinear matrix multiplier, checked against ``A @ B``.

The multiplier (:class:`strassen_hw.hw.bilinear.BilinearMatmul`) has the stream ports of the
hardware contract, so the network testbench drives it unchanged: :func:`bilinear_design` is its
:class:`~.runner.Design` (input ``vec(A)`` then ``vec(B)``, output ``vec(A @ B)``), and every
output is compared with numpy's ``A @ B`` in int64, exactly.
"""

import numpy as np

from strassen_hw.frozen import Format

from .runner import Design, verify

__all__ = ["matmul_vectors", "bilinear_design", "check_bilinear"]


def matmul_vectors(n, operand, count, seed=0):
    """Operand pairs ``(A, B)``, each (N, n, n): every pair of the extreme matrices (all
    entries at the minimum, all at the maximum, a checkerboard of both, and its opposite),
    then ``count`` random pairs."""
    lo, hi = operand.min, operand.max
    board = np.where(np.add.outer(np.arange(n), np.arange(n)) % 2 == 0, lo, hi)
    cases = [np.full((n, n), lo), np.full((n, n), hi), board, lo + hi - board]
    a = [x for x in cases for _ in cases]
    b = [y for _ in cases for y in cases]
    rng = np.random.default_rng(seed)
    a = np.concatenate([np.array(a), rng.integers(lo, hi + 1, (count, n, n))])
    b = np.concatenate([np.array(b), rng.integers(lo, hi + 1, (count, n, n))])
    return a.astype(np.int64), b.astype(np.int64)


def bilinear_design(algorithm, operand, name="matmul", **kwargs):
    """The :class:`~.runner.Design` of the multiplier of ``algorithm`` (inputs ``vec(A)`` then
    ``vec(B)``, reference ``vec(A @ B)``) and its report; ``kwargs`` go to
    :class:`~strassen_hw.hw.bilinear.BilinearMatmul`."""
    from strassen_hw.hw.bilinear import generate_bilinear_verilog
    text, report = generate_bilinear_verilog(algorithm, operand, name=name, **kwargs)
    n, out = algorithm.n, report["output"]

    def reference(x):
        a, b = x[:, :n * n].reshape(-1, n, n), x[:, n * n:].reshape(-1, n, n)
        return (a @ b).reshape(len(x), n * n)

    design = Design(text, name, operand, 2 * n * n, Format(out["width"], out["signed"]), n * n,
                    reference)
    return design, report


def check_bilinear(algorithm, operand, a, b, *, name="matmul", seed=0, stalls=True,
                   build_dir=None, **kwargs):
    """Simulate the multiplier of ``algorithm`` on ``a``, ``b`` (N, n, n) and compare every
    output with ``a @ b``. Returns ``(SimResult, report)``; raises :class:`Mismatch` naming the
    first difference.

    ``kwargs`` go to :class:`~strassen_hw.hw.bilinear.BilinearMatmul`.
    """
    design, report = bilinear_design(algorithm, operand, name, **kwargs)
    n2 = algorithm.n ** 2
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    x = np.concatenate([a.reshape(len(a), n2), b.reshape(len(b), n2)], axis=1)
    return verify(design, x, seed=seed, stalls=stalls, build_dir=build_dir), report
