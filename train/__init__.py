"""PyTorch training of Strassen layers, freezing into frozen networks, and discovery.

``from strassen_hw.train import StrassenLinear, strassenize, set_phase, train, freeze`` gives the
pieces a user needs to bring an ordinary PyTorch model to hardware; see :mod:`.layers`,
:mod:`.conv` (:class:`StrassenConv2d`), :mod:`.fit` and :mod:`.freeze`.
"""

from .conv import StrassenConv2d
from .fit import TrainConfig, load_checkpoint, save_checkpoint, train
from .freeze import freeze
from .layers import PHASES, StrassenLinear, count_operations, set_phase, strassenize
from .quantize import TernaryQuantizer, ternarize

__all__ = ["StrassenLinear", "StrassenConv2d", "strassenize", "count_operations", "set_phase",
           "PHASES", "TernaryQuantizer", "ternarize", "TrainConfig", "train", "save_checkpoint",
           "load_checkpoint", "freeze"]
