"""The Strassen LSTM in torch: the cell, the phases, the counts and a short training run."""

import numpy as np
import pytest
import torch

from strassen_hw.train import lstm
from strassen_hw.train.layers import PHASES, StrassenLinear, TWNLinear, set_phase


def _manual(model, chars):
    """The LSTM cell equations step by step, through each product module's own forward."""
    xs = torch.nn.functional.one_hot(chars, model.lstm.input_size).float()
    for cell in model.lstm.cells:
        h = c = torch.zeros(chars.shape[0], model.lstm.hidden_size)
        hs = []
        for t in range(chars.shape[1]):
            z = {g: cell[f"x_{g}"](xs[:, t]) + cell[f"h_{g}"](h) for g in "ifgo"}
            c = torch.sigmoid(z["f"]) * c + torch.sigmoid(z["i"]) * torch.tanh(z["g"])
            h = torch.sigmoid(z["o"]) * torch.tanh(c)
            hs.append(h)
        xs = torch.stack(hs, 1)
    return model.decoder(xs)


@pytest.mark.parametrize("product", ["strassen", "twn", "dense"])
@pytest.mark.parametrize("phase", PHASES)
def test_forward_is_the_lstm_cell(product, phase):
    torch.manual_seed(0)
    model = lstm.CharLM(11, 6, 2, r=1.5, product=product)
    set_phase(model, phase)
    chars = torch.randint(0, 11, (3, 9))
    logits, state = model(chars)
    want = _manual(model, chars)
    assert logits.shape == (3, 9, 11) and len(state) == 2
    assert torch.allclose(logits, want, atol=1e-5)   # float32: fused vs step-by-step order
    # carrying the state over a split gives the same logits
    first, mid = model(chars[:, :4])
    rest, _ = model(chars[:, 4:], mid)
    assert torch.allclose(torch.cat([first, rest], 1), logits, atol=1e-5)


def test_products_are_the_project_layers():
    model = lstm.CharLM(11, 6, 1, r=2, r_x=3, r_out=5)
    cell = model.lstm.cells[0]
    assert sorted(cell) == sorted(["x_i", "x_f", "x_g", "x_o", "h_i", "h_f", "h_g", "h_o"])
    assert all(isinstance(m, StrassenLinear) for m in cell.values())
    assert [cell[k].r for k in ("x_i", "h_i")] == [3, 2] and model.decoder.r == 5
    assert cell["x_f"].bias is not None and cell["h_f"].bias is None
    assert isinstance(lstm.CharLM(11, 6, product="twn").decoder, TWNLinear)
    set_phase(model, "ternary_fixed")
    assert not cell["h_g"].w_b.requires_grad and cell["h_g"].a_tilde.requires_grad
    assert cell["h_g"].quant_b.enabled


def test_multiplication_counts_by_hand():
    model = lstm.CharLM(66, 16, 1, r=2.0)
    counts = lstm.multiplications(model)
    # eight products of r = 2·16 = 32, a decoder of r = 2·66 = 132
    assert counts["products"] == 8 * 32 + 132
    assert counts["elementwise"] == 3 * 16
    # dense: 4 gates × 16 × (66 inputs + 16 hidden), decoder 16 × 66
    assert lstm.dense_multiplications(66, 16) == 4 * 16 * 82 + 16 * 66 == 6304
    two = lstm.multiplications(lstm.CharLM(66, 16, 2, r=1.0))
    assert two["products"] == 16 * 16 + 66 and two["elementwise"] == 96
    twn = lstm.multiplications(lstm.CharLM(66, 16, 1, product="twn"))
    assert twn["products"] == 8 * 16 + 66


def test_bad_arguments():
    with pytest.raises(TypeError, match="hidden_size must be a positive integer, not 0"):
        lstm.StrassenLSTM(5, 0)
    with pytest.raises(ValueError, match="product must be one of strassen, twn, dense"):
        lstm.StrassenLSTM(5, 4, product="fft")
    with pytest.raises(TypeError, match="r must be a positive integer"):
        lstm.StrassenLSTM(5, 4, r=-1.0)


@pytest.mark.slow
def test_short_training_learns():
    """A few dozen steps on a repetitive text: the distilled Strassen student goes well below
    6 bits per character of a uniform guess over the 66 characters."""
    torch.set_num_threads(1)
    data = np.tile(np.arange(11, dtype=np.uint8), 400)
    teacher = lstm.train_teacher(hidden_size=16, steps=60, batch=8, seq=20, data=data, lr=3e-2)
    assert lstm.bits_per_char(teacher, data[:1100], count=4) < 1.0
    student = lstm.train_student(teacher, r=2.0, steps=(40, 40, 20), batch=8, seq=20,
                                 data=data, lr=3e-2)
    assert student.decoder.quant_c.enabled and not student.decoder.w_c.requires_grad
    assert lstm.bits_per_char(student, data[:1100], count=4) < 1.5


@pytest.mark.slow
@pytest.mark.parametrize("layers", [1, 2])
def test_freeze_matches_the_float_model(layers):
    """The frozen integer LM against the float Strassen LM it came from. The ternary matrices
    are the shadows' TWN values exactly; ã is ``α_b·α_c·ã·s_in`` rounded to its grid. The
    logits can only be compared approximately (the integer model rounds every gate, cell and
    hidden value, and the recurrence carries those errors): mean error within 5 % of the
    logits' spread, the same most likely character at 90 % of the steps."""
    from strassen_hw import lstm as fl
    from strassen_hw.train.quantize import ternarize
    torch.manual_seed(1)
    model = lstm.CharLM(66, 12, layers, r=2.0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, StrassenLinear):
                m.a_tilde.mul_(4.0)
                if m.bias is not None:
                    m.bias.uniform_(-0.5, 0.5)
    set_phase(model, "ternary_fixed")
    model.eval()
    chars = np.random.default_rng(0).integers(0, 66, (6, 80))
    lm = lstm.freeze_lm(model, calibration=chars)
    assert len(lm.cells) == layers and lm.alphabet[1] == "\n"
    product = model.lstm.cells[-1]["h_g"]
    frozen = lm.cells[-1].products["h_g"]
    t_b, alpha_b, _ = ternarize(product.w_b.detach())
    t_c, alpha_c, _ = ternarize(product.w_c.detach())
    assert np.array_equal(frozen.w_b, t_b.numpy()) and np.array_equal(frozen.w_c, t_c.numpy())
    a_real = (float(alpha_b) * float(alpha_c) * product.a_tilde.detach().double().numpy()
              * 2.0 ** -lm.cells[-1].hidden_frac)
    assert np.abs(frozen.a_tilde * 2.0 ** -frozen.a_frac_bits - a_real).max() <= \
        2.0 ** -(frozen.a_frac_bits + 1)
    got = fl.lm_forward(lm, chars) * fl.logit_step(lm)
    with torch.no_grad():
        want = model(torch.as_tensor(chars))[0].double().numpy()
    assert np.abs(got - want).mean() < 0.05 * want.std()
    assert (got.argmax(-1) == want.argmax(-1)).mean() >= 0.9
    assert lm.multiplications()["products"] == lstm.multiplications(model)["products"]
