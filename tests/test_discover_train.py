"""Discovery learns exact algorithms; exactness is judged by the tensor identity and A @ B."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from strassen_hw.matmul import BilinearAlgorithm  # noqa: E402
from strassen_hw.train.discover import RECIPES, _twn, discover  # noqa: E402

SHORT = dict(fit_steps=400, quant_steps=800)


@pytest.fixture(scope="module")
def short_run():
    return discover(2, 7, 48, seed=1, device="cpu", **SHORT)


def test_short_run_finds_exact_algorithms(short_run):
    assert short_run.exact.shape == (48,)
    assert short_run.first is not None
    assert short_run.rate >= 0.25
    assert len(short_run.solutions) == int(short_run.exact.sum())
    assert 1 <= short_run.distinct() <= len(short_run.solutions)
    assert short_run.first_seconds <= short_run.seconds


def test_every_solution_is_exact_and_multiplies_integers(short_run):
    rng = np.random.default_rng(7)
    a, b = rng.integers(-10**6, 10**6, (2, 200, 2, 2))
    for solution in short_run.solutions:
        assert isinstance(solution, BilinearAlgorithm) and (solution.n, solution.r) == (2, 7)
        assert solution.is_exact()
        assert np.array_equal(solution.multiply(a, b), a @ b)


def test_seeded_runs_repeat(short_run):
    again = discover(2, 7, 48, seed=1, device="cpu", **SHORT)
    assert np.array_equal(again.exact, short_run.exact)
    assert again.first.canonical() == short_run.first.canonical()


def test_too_few_products_never_count_as_exact():
    result = discover(2, 6, 16, seed=0, device="cpu", fit_steps=100, quant_steps=200)
    assert result.first is None and not result.exact.any() and result.rate == 0.0


def test_tensor_objective_finds_exact_algorithms():
    result = discover(2, 7, 32, seed=0, device="cpu", objective="tensor", **SHORT)
    assert result.first is not None and result.recipe.objective == "tensor"
    rng = np.random.default_rng(3)
    a, b = rng.integers(-1000, 1000, (2, 50, 2, 2))
    for solution in result.solutions:
        assert solution.is_exact() and np.array_equal(solution.multiply(a, b), a @ b)


def test_unknown_objective_is_refused():
    with pytest.raises(ValueError, match="unknown objective 'noise'"):
        discover(2, 7, 2, device="cpu", objective="noise", fit_steps=1, quant_steps=1)


def test_paper_recipe_is_the_papers_protocol():
    paper = RECIPES["paper"]
    assert (paper.optimizer, paper.lr_fit, paper.momentum, paper.batch) == ("sgd", 0.1, 0.9, 4)
    assert (paper.dataset, paper.fit_steps * paper.batch) == (100_000, 100_000)
    assert (paper.quantizer, paper.lr_quant, paper.quant_steps * paper.batch) == \
           ("twn", 0.001, 100_000)
    result = discover(2, 7, 8, seed=0, recipe="paper", device="cpu",
                      fit_steps=50, quant_steps=50)
    assert result.exact.shape == (8,) and all(s.is_exact() for s in result.solutions)


def test_twn_threshold_and_scale():
    w = torch.tensor([[[0.1, -0.9], [0.5, -0.2]]])        # mean |w| = 0.425, Δ = 0.2975
    t, alpha = _twn(w)
    assert t.tolist() == [[[0.0, -1.0], [1.0, 0.0]]]
    assert alpha.flatten().tolist() == pytest.approx([0.7])  # mean of 0.9 and 0.5
