"""Golden hashes of the generated Verilog: an unintended change of the output shows in review.

When the output changes on purpose, check the new Verilog (under Verilator:
tests/test_sim_verilator.py, tests/test_hw_verilog.py) and update the hash here."""

import hashlib

import pytest

from strassen_hw.frozen import Format, random_network
from strassen_hw.hw import generate_verilog
from strassen_hw.hw.bilinear import generate_bilinear_verilog
from strassen_hw.matmul import STRASSEN


def _sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("shapes, seed, expected", [
    ([(8, 6, 4)], 1, "ae410e80c50e4cea0613d48f950165e6e4beaa790143248234c3b265bd9ca217"),
    ([(6, 5, 4), (4, 3, 3)], 2, "0f243e950e62b029a15aebd8b3afdeb67bdb4d6637b31b20925434eababa6549"),
])
def test_network_verilog_is_unchanged(shapes, seed, expected):
    assert _sha(generate_verilog(random_network(shapes, seed=seed, name="golden"))) == expected


def test_strassen_multiplier_verilog_is_unchanged():
    text, _ = generate_bilinear_verilog(STRASSEN, Format(8, True), name="strassen2")
    assert _sha(text) == "71f03834480d029379f38f0ec7c716b97a9d18cb006a99b217e173d10f146c57"
