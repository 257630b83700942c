"""``strassen-hw generate-text``: deterministic sampling from a frozen language model."""

import numpy as np
import pytest

from strassen_hw import lstm as fl
from strassen_hw.cli import main
from strassen_hw.generate_text import sample

from test_lstm_frozen import _fields, _layer


@pytest.fixture
def net(tmp_path):
    rng = np.random.default_rng(5)
    vocab = 6
    cell = fl.LSTM(**_fields(n_in=vocab, n=4, seed=2))
    decoder = _layer(rng, 4, vocab, 9, shift=0)
    lm = fl.language_model("tiny", [cell], decoder, alphabet="ab\n :R")
    path = tmp_path / "lm.json"
    fl.save(lm, path)
    return lm, path


def test_greedy_is_the_argmax_of_the_whole_prefix(net):
    lm, _ = net
    text = sample(lm, "R:", 12, temperature=0)
    codes = [lm.alphabet.index(ch) for ch in text]
    for t in range(2, len(codes)):
        # recomputed from the initial state over the whole prefix, not carried step by step
        logits = fl.lm_forward(lm, np.array([codes[:t]]))[0, -1]
        assert codes[t] == int(np.argmax(logits))


def test_cli_is_deterministic(net, capsys):
    _, path = net
    outs = []
    for seed in (7, 7, 8):
        assert main(["generate-text", str(path), "--prime", "R:", "--chars", "60",
                     "--seed", str(seed), "--temperature", "1.5"]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] != outs[2]
    assert outs[0].startswith("R:") and len(outs[0]) == 2 + 60 + 1    # and print's newline
    assert len(set(outs[0][2:-1])) > 2


def test_cli_errors(net, capsys, tmp_path):
    _, path = net
    assert main(["generate-text", str(path), "--prime", "Rx"]) == 2
    assert "the prime holds 'x', which is not in the model's alphabet" in capsys.readouterr().err
    assert main(["generate-text", str(path), "--chars", "-3"]) == 2
    assert "-3: must be 0..100000" in capsys.readouterr().err
    assert main(["generate-text", str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and err.count("\n") == 1
