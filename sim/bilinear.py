"""Verilator simulation of a bilinear matrix multiplier, checked against ``A @ B``.

The multiplier (:class:`strassen_hw.hw.bilinear.BilinearMatmul`) has the stream ports of the
hardware contract, so the network testbench drives it unchanged: the input vector is
``vec(A)`` then ``vec(B)`` and the output is ``vec(A @ B)``. Every output is compared with
numpy's ``A @ B`` in int64, exactly.
"""

from dataclasses import dataclass

import numpy as np

from strassen_hw.frozen import Format

from .runner import Mismatch, run

__all__ = ["matmul_vectors", "check_bilinear"]


@dataclass(frozen=True)
class _Ports:
    """What the runner needs to know of a design: its name and stream formats."""
    name: str
    input: Format
    output: Format
    n_in: int
    n_out: int


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


def check_bilinear(algorithm, operand, a, b, *, name="matmul", seed=0, stalls=True,
                   build_dir=None, **kwargs):
    """Simulate the multiplier of ``algorithm`` on ``a``, ``b`` (N, n, n) and compare every
    output with ``a @ b``. Returns ``(SimResult, report)``; raises :class:`Mismatch` naming the
    first difference.

    ``kwargs`` go to :class:`~strassen_hw.hw.bilinear.BilinearMatmul`.
    """
    from strassen_hw.hw.bilinear import generate_bilinear_verilog
    text, report = generate_bilinear_verilog(algorithm, operand, name=name, **kwargs)
    n2 = algorithm.n ** 2
    out = report["output"]
    ports = _Ports(name, operand, Format(out["width"], out["signed"]), 2 * n2, n2)
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    x = np.concatenate([a.reshape(len(a), n2), b.reshape(len(b), n2)], axis=1)
    result = run(ports, x, seed=seed, stalls=stalls, build_dir=build_dir, verilog=text)
    expected = (a @ b).reshape(len(a), n2)
    differ = result.outputs != expected
    if differ.any():
        i, j = np.argwhere(differ)[0]
        raise Mismatch(f"mismatch at pair {i}, entry {j} of vec(A @ B): the hardware gave "
                       f"{result.outputs[i, j]}, A @ B is {expected[i, j]} "
                       f"({int(differ.any(axis=1).sum())} of {len(x)} pairs differ)",
                       int(i), int(j), result)
    return result, report
