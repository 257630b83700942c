"""docs/frozen-format.md checked against the code: every Python example runs and writes a file
that loads and runs under the reference, the reserved names are the loader's, and the worked
numbers are what the reference computes."""

import re
from pathlib import Path

import numpy as np
import pytest

from strassen_hw.formats import _KEYWORDS
from strassen_hw.frozen import load
from strassen_hw.reference import forward, round_shift

DOC = (Path(__file__).parent.parent / "docs" / "frozen-format.md").read_text()
EXAMPLES = re.findall(r"```python\n(.*?)```", DOC, re.S)


def test_the_document_has_its_examples():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_each_example_writes_a_valid_network(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(EXAMPLES[index], f"frozen-format.md example {index}", "exec"), {})
    (path,) = (tmp_path / "out").glob("*.json")
    net = load(path)
    x = np.random.default_rng(0).integers(net.input.min, net.input.max + 1, (5, net.n_in))
    y = forward(net, x)
    assert y.shape == (5, net.n_out)
    assert (y >= net.output.min).all() and (y <= net.output.max).all()


def test_reserved_names_are_the_loaders():
    start = DOC.index("The reserved words are")
    words = DOC[start:DOC.index("(`_KEYWORDS`", start)]
    listed = set(re.search(r"`([a-z_0-9 \n]+)`", words).group(1).split())
    assert listed == set(_KEYWORDS)


def test_the_rounding_examples():
    assert "`-5 → -3` for\n`s = 1`" in DOC
    assert round_shift(np.array([-5]), 1, "floor").tolist() == [-3]
    # half_up: ties toward +infinity
    assert round_shift(np.array([-5, 5, -6]), 1, "half_up").tolist() == [-2, 3, -3]
