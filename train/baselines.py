"""The two baselines, made from the same trained model and data as the Strassen network.

Both are frozen as Strassen layers of a fixed shape (:data:`strassen_hw.frozen.KINDS`), so the
reference, the hardware generator and the simulator are the ones the Strassen layers use:

- **dense int8** (``kind="dense"``): the float teacher, post-training quantized. Each weight
  ``w_ij`` becomes ``ã[i·n_in + j] = round(w_ij · s_in · 2^F)`` (``half_up``) in ``weight_width``
  signed bits (8), with one power-of-two scale per layer: ``F`` the largest for which every
  weight of the layer fits. The products are exact (``product_shift = 0``) and summed exactly
  with the bias (rounded to the same scale); one ``half_up`` shift then requantizes to the
  activation format. Inputs, hidden activations and logits use the formats and calibration
  rules of :func:`~strassen_hw.train.freeze.freeze` (8 unsigned bits after ReLU, 12 signed
  bits for the largest calibration logit).
- **TWN** (``kind="twn"``): a :class:`~strassen_hw.train.layers.TWNLinear` student (ternary
  weights, one Δ and α per output row, a learned gain ``g``) trained like the Strassen student:
  the same three phases, epochs, optimizer and distillation from the same teacher
  (:func:`train_twn`). Frozen with ``ã = round(α · g · s_in · 2^F)`` (one multiplier per output,
  ``a_width`` chosen as :func:`~strassen_hw.train.freeze.freeze` chooses it), exact products
  and one ``half_up`` shift after the bias, in the same activation formats.
"""

import dataclasses

import numpy as np
from torch import nn

from .freeze import freeze_parts, layer_chain
from .layers import TWNLinear
from .quantize import ternarize

__all__ = ["freeze_dense", "freeze_twn", "train_twn", "dense_parts", "twn_parts"]


def _bias(layer, n_out):
    return (layer.bias.detach().cpu().double().numpy() if layer.bias is not None
            else np.zeros(n_out))


def dense_parts(teacher):
    """The float parts (see :func:`~strassen_hw.train.freeze.freeze_parts`) of the
    ``nn.Linear`` chain ``teacher`` as dense Strassen layers: ``T_b`` the unit rows, ``a`` the
    weights in row-major order, ``T_c`` the group sums. Returns (parts, relus)."""
    chain = layer_chain(teacher, nn.Linear, "nn.Linear", "give the float teacher")
    parts = []
    for layer, _ in chain:
        n_out, n_in = layer.weight.shape
        t_b = np.tile(np.eye(n_in, dtype=np.int64), (n_out, 1))
        t_c = np.kron(np.eye(n_out, dtype=np.int64), np.ones((1, n_in), dtype=np.int64))
        a = layer.weight.detach().cpu().double().numpy().reshape(-1)
        parts.append((t_b, t_c, a, _bias(layer, n_out)))
    return parts, [relu for _, relu in chain]


def twn_parts(model):
    """The float parts of a chain of :class:`TWNLinear`: ``T_b`` the ternary weights (in the
    model's own precision, as its forward pass sees them), ``a = α ⊙ g``, ``T_c`` the
    identity. Returns (parts, relus)."""
    chain = layer_chain(model, TWNLinear, "TWN", "call twnize() and train first")
    parts = []
    for layer, _ in chain:
        ternary, alpha, _ = ternarize(layer.weight.detach().cpu(), dim=(1,))
        a = alpha.double().reshape(-1).numpy() * layer.gain.detach().cpu().double().numpy()
        n_out = layer.out_features
        parts.append((ternary.numpy().astype(np.int64), np.eye(n_out, dtype=np.int64), a,
                      _bias(layer, n_out)))
    return parts, [relu for _, relu in chain]


def freeze_dense(teacher, calibration, *, input_format, input_scale, name="dense",
                 weight_width=8, act_width=8, logit_width=12):
    """Post-training quantize the float ``teacher`` (``nn.Linear`` and ReLU) into a network of
    ``kind="dense"`` layers with ``weight_width``-bit weights (see the module docstring).

    Parameters
    ----------
    teacher : nn.Module
    calibration : array of int, shape (N, n_in)
        Integer inputs (the training images) that set the activation steps.
    input_format, input_scale : Format, float
        As for :func:`~strassen_hw.train.freeze.freeze`.
    name : str
    weight_width, act_width, logit_width : int
        Signed bits of the weights; unsigned bits of the hidden activations; signed bits of
        the largest calibration logit.

    Returns
    -------
    (FrozenNetwork, FreezeReport)
    """
    parts, relus = dense_parts(teacher)
    return freeze_parts(parts, relus, calibration, input_format=input_format,
                        input_scale=input_scale, name=name, a_width=weight_width,
                        act_width=act_width, guard_bits=None, logit_width=logit_width,
                        kind="dense")


def freeze_twn(model, calibration, *, input_format, input_scale, name="twn", a_width=None,
               act_width=8, logit_width=12):
    """Freeze a trained TWN ``model`` (:class:`TWNLinear` and ReLU) into a network of
    ``kind="twn"`` layers. ``a_width=None`` picks the width of the per-output multipliers as
    :func:`~strassen_hw.train.freeze.freeze` does; the rest is :func:`freeze_dense`'s.

    Returns
    -------
    (FrozenNetwork, FreezeReport)
    """
    parts, relus = twn_parts(model)
    return freeze_parts(parts, relus, calibration, input_format=input_format,
                        input_scale=input_scale, name=name, a_width=a_width,
                        act_width=act_width, guard_bits=None, logit_width=logit_width,
                        kind="twn")


def train_twn(config, data, *, teacher=None, progress=False, log=None):
    """Train the TWN student of ``config`` (its ``student`` set to ``"twn"``) on ``data``,
    distilling from ``teacher`` (trained from ``config`` when None), with the Strassen
    student's phases and settings. Returns a :class:`~strassen_hw.train.recipe.TrainResult`."""
    from .recipe import train
    config = dataclasses.replace(config, student="twn")
    return train(config, data, progress=progress, log=log, teacher=teacher)
