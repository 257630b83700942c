"""The embedded data set: scikit-learn's 8×8 handwritten digits, with one fixed split.

``load_digits()`` holds 1,797 images of 64 pixels, each an integer 0..16, and labels 0..9. The
split is ``train_test_split(test_size=0.2, stratify=labels, random_state=0)``: 1,437 training
and 360 test images (one test image is 0.28 accuracy points). It never depends on the training
seed, so every model is measured on the same test images.

Models see ``pixels / 16`` (floats in [0, 1]); the hardware sees the integer pixels in
:data:`INPUT_FORMAT` and the scale 1/16 is folded into the first layer at freeze time.
"""

from dataclasses import dataclass

import numpy as np

from strassen_hw.frozen import Format

__all__ = ["INPUT_FORMAT", "INPUT_SCALE", "SPLIT_SEED", "TEST_SIZE", "Digits", "load", "pixel_order",
           "chw_order"]

#: Pixels are integers 0..16: 5 unsigned bits.
INPUT_FORMAT = Format(5, signed=False)
#: Real value of one integer pixel step in the models' input.
INPUT_SCALE = 1 / 16
#: ``random_state`` and ``test_size`` of the fixed split.
SPLIT_SEED = 0
TEST_SIZE = 0.2


@dataclass(frozen=True)
class Digits:
    """The fixed split. ``x_*`` are int64 pixels (N, 64), ``y_*`` int64 labels (N,)."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_features(self):
        return self.x_train.shape[1]

    @property
    def n_classes(self):
        return 10

    @property
    def input_format(self):
        """Format of the integer pixels (:data:`INPUT_FORMAT`)."""
        return INPUT_FORMAT

    @property
    def input_scale(self):
        """Real value of one pixel step in the models' input (:data:`INPUT_SCALE`)."""
        return INPUT_SCALE


def load():
    """Load the digits and return the fixed :class:`Digits` split (no download needed)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    x = digits.data.astype(np.int64)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_SIZE, stratify=y, random_state=SPLIT_SEED)
    return Digits(x_train, y_train, x_test, y_test)


def pixel_order(images):
    """Images in torch's (N, C, H, W) order as the rows a frozen network reads: (N, H·W·C),
    pixel by pixel, row-major, all C channels of a pixel together (see
    :mod:`strassen_hw.frozen_conv`). Give these rows to ``freeze`` (calibration),
    ``reference.forward``, ``simulate`` and ``check``; a model fed the (N, C, H, W) images
    freezes with ``input_shape=(C, H, W)``. Accepts numpy arrays and CPU tensors; keeps the
    dtype. :func:`chw_order` is the inverse."""
    x = np.asarray(images)
    if x.ndim != 4:
        raise ValueError(f"pixel_order needs images of shape (N, C, H, W), not {x.shape}")
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(len(x), -1)


def chw_order(rows, shape):
    """Rows in pixel order (N, H·W·C) back to images (N, C, H, W); ``shape = (C, H, W)``."""
    x = np.asarray(rows)
    c, h, w = (int(v) for v in shape)
    if x.ndim != 2 or x.shape[1] != c * h * w:
        raise ValueError(f"chw_order needs rows of {c}·{h}·{w} = {c * h * w} values for shape "
                         f"{(c, h, w)}, not {x.shape}")
    return np.ascontiguousarray(x.reshape(len(x), h, w, c).transpose(0, 3, 1, 2))
