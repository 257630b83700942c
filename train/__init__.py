"""PyTorch training of Strassen layers, freezing into frozen networks, and discovery.

``from strassen_hw.train import StrassenLinear, strassenize, set_phase, train, freeze`` gives the
pieces a user needs to bring an ordinary PyTorch model to hardware; see :mod:`.layers`,
:mod:`.fit` and :mod:`.freeze`.
"""

from .fit import TrainConfig, load_checkpoint, save_checkpoint, train
from .freeze import freeze
from .layers import PHASES, StrassenLinear, set_phase, strassenize
from .quantize import TernaryQuantizer, ternarize

__all__ = ["StrassenLinear", "strassenize", "set_phase", "PHASES", "TernaryQuantizer",
           "ternarize", "TrainConfig", "train", "save_checkpoint", "load_checkpoint", "freeze"]
