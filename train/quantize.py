"""Ternary weight quantization (TWN, Li & Liu 2016) with a straight-through gradient.

Forward: ``W ≈ α·T`` with ``T_ij = +1 if W_ij > Δ, -1 if W_ij < -Δ, else 0``,
``Δ = 0.7·mean|W|`` and ``α = mean |W_ij|`` over the entries with ``T_ij ≠ 0``.
Backward: the quantizer is treated as the identity, so the gradient reaches the full-precision
shadow ``W`` unchanged.
"""

import torch
from torch import nn

__all__ = ["DELTA_RATIO", "ternarize", "ternary_ste", "TernaryQuantizer"]

#: Δ = DELTA_RATIO · mean|W| (the TWN threshold).
DELTA_RATIO = 0.7


def ternarize(weight, dim=None):
    """TWN ternarization of ``weight`` (no gradient).

    ``dim`` (a tuple) are the dimensions one threshold and one scale span, the others index
    independent matrices (kept, with size 1 on ``dim``); default: all, scalar ``alpha`` and
    ``delta``.

    Returns
    -------
    ternary : Tensor, same shape, values exactly in {-1., 0., 1.}
    alpha : Tensor, mean |W| over the kept entries (0 when none is kept)
    delta : Tensor, the threshold Δ
    """
    # the whole tensor reduces without dim: the same floats as a plain mean and sum
    over = {} if dim is None else {"dim": dim, "keepdim": True}
    with torch.no_grad():
        magnitude = weight.abs()
        delta = DELTA_RATIO * magnitude.mean(**over)
        keep = magnitude > delta
        ternary = torch.sign(weight) * keep
        count = keep.sum(**over)
        alpha = torch.where(count > 0, (magnitude * keep).sum(**over) / count.clamp(min=1),
                            torch.zeros_like(delta))
    return ternary, alpha, delta


class _TernarySTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, dim):
        ternary, alpha, _ = ternarize(weight, dim)
        return alpha * ternary

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def ternary_ste(weight, dim=None):
    """``α·T`` of :func:`ternarize` (over ``dim``) forward, identity gradient backward
    (straight-through)."""
    return _TernarySTE.apply(weight, dim)


class TernaryQuantizer(nn.Module):
    """A switchable TWN quantizer for one weight matrix.

    ``enabled = False`` passes the weight through (full-precision phase); ``enabled = True``
    returns ``α·T`` with a straight-through gradient. Freezing the ternary values is done by
    the owner: it stops the shadow's gradient (see :func:`strassen_hw.train.set_phase`), so
    ``T`` and ``α``, computed from a shadow that no longer changes, stay fixed. ``dim`` as in
    :func:`ternarize`: ``None`` for one Δ and α per matrix, ``(1,)`` for one per row.
    """

    def __init__(self, enabled=False, dim=None):
        super().__init__()
        self.enabled = bool(enabled)
        self.dim = None if dim is None else tuple(dim)

    def forward(self, weight):
        return ternary_ste(weight, self.dim) if self.enabled else weight

    def extra_repr(self):
        return f"enabled={self.enabled}" + ("" if self.dim is None else f", dim={self.dim}")
