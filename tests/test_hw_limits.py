"""Valid but enormous networks: each is refused by generate, simulate and report in one line
that names the product that is too large, at once and with nothing written."""

import numpy as np
import pytest

from strassen_hw import frozen
from strassen_hw.cli import main
from strassen_hw.frozen import ConvGeometry, Format, FrozenConvLayer, FrozenLayer, FrozenNetwork


def _conv(h, w, k, s, pad, p, c=1):
    g = ConvGeometry(in_channels=c, out_channels=1, height=h, width=w, kernel=(k, k),
                     stride=(s, s), padding=(pad, pad), p=p, groups=1, pool="none", pool_size=1)
    patch = FrozenLayer(w_b=np.ones((1, g.n_window), int), a_tilde=[3],
                        w_c=np.ones((g.n_patch, 1), int), bias=[0] * g.n_patch, a_width=4,
                        bias_width=2, output=Format(8, True))
    return FrozenNetwork("huge", Format(8, True), [FrozenConvLayer(g, patch)])


CASES = {
    "padding 64 on a 1×1 image": (lambda: _conv(1, 1, 1, 1, 64, 1),
                                  "the output vector is 16,641 values × 8 bits"),
    "p = 64 on a 1×1 image": (lambda: _conv(1, 1, 1, 1, 0, 64),
                              "64×64 window out of 64 rows"),
    "stride 64 with p = 2": (lambda: _conv(1, 1, 1, 64, 0, 2), "65×65 window"),
    "a 1×4096 row": (lambda: _conv(1, 4096, 1, 1, 0, 1), "rows of 4096 pixels with 4096 "),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("command", ["generate", "simulate", "report"])
def test_enormous_networks_get_one_line(case, command, tmp_path, capsys):
    make, message = CASES[case]
    path = tmp_path / "huge.json"
    frozen.save(make(), path)
    out = tmp_path / "out"
    args = [command, str(path)] + (["-o", str(out)] if command == "generate" else [])
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()        # simulate says first what it starts on
    assert "Traceback" not in err and len(lines) <= 2, err
    assert lines[-1].startswith("strassen-hw: error: ") and message in lines[-1], err
    assert not out.exists()
