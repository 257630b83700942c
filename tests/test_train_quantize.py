"""TWN ternary quantizer: threshold, α, exactly ternary output, straight-through gradient."""

import pytest
import torch

from strassen_hw.train.quantize import TernaryQuantizer, ternarize, ternary_ste


def _hand_weight():
    # mean|W| = (0.9 + 0.05 + 0.3 + 0.6 + 0.02 + 1.2) / 6 = 3.07 / 6; Δ = 0.7 · that = 0.358167
    # kept: 0.9, -0.6, -1.2 (0.3 < Δ); α = (0.9 + 0.6 + 1.2) / 3 = 0.9
    return torch.tensor([[0.9, -0.05, 0.3], [-0.6, 0.02, -1.2]], dtype=torch.float64)


def test_threshold_alpha_and_ternary_values_by_hand():
    ternary, alpha, delta = ternarize(_hand_weight())
    assert delta.item() == pytest.approx(0.7 * 3.07 / 6)
    assert alpha.item() == pytest.approx(0.9)
    assert ternary.tolist() == [[1, 0, 0], [-1, 0, -1]]


def test_entries_just_above_and_below_the_threshold():
    # mean|W| = 1 -> Δ = 0.7: 0.71 is kept, 0.69 is not; α = mean(0.71, 2.6) = 1.655
    w = torch.tensor([0.71, -0.69, 2.6, 0.0], dtype=torch.float64)
    ternary, alpha, delta = ternarize(w)
    assert delta.item() == pytest.approx(0.7)
    assert ternary.tolist() == [1, 0, 1, 0]
    assert alpha.item() == pytest.approx(1.655)


def test_output_is_exactly_alpha_times_ternary():
    w = torch.randn(16, 24, generator=torch.Generator().manual_seed(1))
    ternary, alpha, _ = ternarize(w)
    assert set(torch.unique(ternary).tolist()) == {-1.0, 0.0, 1.0}
    out = ternary_ste(w)
    assert torch.equal(out, alpha * ternary)
    assert set(torch.unique(out).tolist()) == {-alpha.item(), 0.0, alpha.item()}


def test_all_zero_weight_gives_zero_alpha_not_nan():
    ternary, alpha, _ = ternarize(torch.zeros(3, 3))
    assert alpha.item() == 0.0
    assert not ternary.any()


def test_straight_through_gradient_reaches_the_shadow_unchanged():
    w = _hand_weight().clone().requires_grad_(True)
    upstream = torch.tensor([[1.0, -2.0, 3.0], [0.5, 7.0, -4.0]], dtype=torch.float64)
    (ternary_ste(w) * upstream).sum().backward()
    # identity in the backward pass: also where the forward value is 0
    assert w.grad.tolist() == upstream.tolist()


def test_quantizer_switch():
    q = TernaryQuantizer()
    w = _hand_weight().clone().requires_grad_(True)
    assert torch.equal(q(w), w)                   # off: full precision
    q.enabled = True
    expected = torch.tensor([[0.9, 0, 0], [-0.9, 0, -0.9]], dtype=torch.float64)
    assert torch.allclose(q(w), expected)
    q(w).sum().backward()
    assert w.grad.tolist() == [[1.0] * 3] * 2
