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
    ([(8, 6, 4)], 1, "5e1a75b5e4896e7d6793f9709b813616176740053b1d55d264b9b8eb2f3b3449"),
    ([(6, 5, 4), (4, 3, 3)], 2, "f01fa012857e042f36075656163569322f2253e406c51d8729e6c0e3c145a494"),
])
def test_network_verilog_is_unchanged(shapes, seed, expected):
    assert _sha(generate_verilog(random_network(shapes, seed=seed, name="golden"))) == expected


def test_strassen_multiplier_verilog_is_unchanged():
    text, _ = generate_bilinear_verilog(STRASSEN, Format(8, True), name="strassen2")
    assert _sha(text) == "321b1427a0cfce39c56a7cb9d0b13201555780ff5766fc826e95ec87a1cc7b68"
