"""PyTorch training of Strassen layers, freezing into frozen networks, and discovery.

``from strassen_hw.train import fit, freeze`` is what a user needs to bring an ordinary PyTorch
model to hardware: :func:`fit` trains it as the float teacher, strassenizes a copy and trains
that in the three phases with distillation (see the README's "Bring your own model");
:func:`freeze` turns the result into a frozen integer network. The pieces are here too:
:class:`StrassenLinear`, :class:`StrassenConv2d`, :func:`strassenize`, :func:`set_phase`,
:data:`PHASES` (:mod:`.layers`, :mod:`.conv`), the digits recipe :func:`train` with its
:class:`TrainConfig` and checkpoints (:mod:`.recipe`), and :func:`pixel_order`, which turns
torch's (N, C, H, W) images into the pixel order of frozen networks (:mod:`.data`).

The module that holds :func:`fit` is :mod:`strassen_hw.train.recipe`; it was called
``strassen_hw.train.fit`` before the function took that name, and ``from
strassen_hw.train.fit import ...`` still finds it (deprecated; it goes in the next release).
"""

import sys

from . import recipe
from .conv import StrassenConv2d
from .data import pixel_order
from .freeze import freeze
from .layers import PHASES, StrassenLinear, count_operations, set_phase, strassenize
from .quantize import TernaryQuantizer, ternarize
from .recipe import TrainConfig, fit, load_checkpoint, save_checkpoint, train

# The former module name: ``strassen_hw.train.fit`` is the function; imports of the old
# module path find the module that holds it. Deprecated, for one release.
sys.modules.setdefault(__name__ + ".fit", recipe)

__all__ = ["fit", "StrassenLinear", "StrassenConv2d", "strassenize", "count_operations",
           "set_phase", "PHASES", "TernaryQuantizer", "ternarize", "TrainConfig", "train",
           "save_checkpoint", "load_checkpoint", "freeze", "pixel_order"]
