"""Rediscover Strassen: learn ternary ``W_a``, ``W_b``, ``W_c`` that multiply matrices exactly.

The model is the bilinear sum-product network of the paper (Sec. 3.1)::

    vec(C) = W_c[(W_b vec(B)) ⊙ (W_a vec(A))]

trained on random pairs ``(A, B)`` with entries from U[-1, 1]. Many restarts train at once:
every weight tensor has a leading restart dimension and one ``einsum`` serves them all (on CUDA
when present). A restart counts as exact only when its ternary matrices pass the integer tensor
identity (:meth:`strassen_hw.matmul.BilinearAlgorithm.is_exact`), never by a small loss.

Two recipes (:data:`RECIPES`):

``paper``
    The paper's protocol: 100k fixed pairs, init U[-1, 1], SGD (lr 0.1, momentum 0.9, batch 4)
    for one epoch at full precision, then TWN quantization (threshold ``0.7·mean|W|``, scale
    ``α``, straight-through gradient) for one epoch at lr 0.001. Exactness is checked once, on
    the final TWN ternary matrices.
``default``
    Adam (lr 0.1, batch 64 fresh pairs each step) for 1,000 steps at full precision, then 1,000
    steps with an annealed penalty ``λ(t) Σ w²(w²-1)²`` that pulls every weight toward
    {-1, 0, 1} while the data loss keeps the fit (``λ`` grows geometrically from 1e-3 to 1).
    Every 50 steps each restart's weights are rounded (as they are, and after scaling each
    product's ``a_j``, ``b_j`` to a largest entry of 1) and checked; a restart is kept as soon
    as it is exact.

Either recipe can fit the product tensor itself instead of sampled pairs
(``objective="tensor"``): for entries from U[-1, 1] the expected data loss is proportional to the
squared residual of the restart's tensor ``Σ_j (W_c)_{ij} (W_a)_{jk} (W_b)_{jl}`` against the
matrix-multiplication tensor, so this is the same loss without sampling noise.
"""

import time
from dataclasses import dataclass, replace

import numpy as np

__all__ = ["Recipe", "RECIPES", "DiscoveryResult", "discover", "ternary_penalty"]


@dataclass(frozen=True)
class Recipe:
    """How to train the restarts. See the module docstring for the two presets.

    Attributes
    ----------
    optimizer : ``'sgd'`` (with ``momentum``) or ``'adam'``
    lr_fit, lr_quant : learning rates of the full-precision and the quantization phase
    batch : pairs per step
    dataset : size of a fixed training set (shuffled each epoch), or None for fresh pairs
    fit_steps, quant_steps : steps of each phase
    quantizer : ``'twn'`` (TWN forward, straight-through) or ``'anneal'`` (ternary penalty)
    penalty : ``(start, end)`` weight of the ternary penalty (``'anneal'`` only)
    check_every : steps between exactness checks; None checks only after the last step
    objective : ``'data'`` (random matrix pairs) or ``'tensor'`` (the tensor residual itself)
    """
    name: str
    optimizer: str
    lr_fit: float
    lr_quant: float
    batch: int
    fit_steps: int
    quant_steps: int
    quantizer: str
    momentum: float = 0.0
    dataset: int | None = None
    penalty: tuple = (1e-3, 1.0)
    check_every: int | None = None
    objective: str = "data"


RECIPES = {
    "default": Recipe("default", "adam", lr_fit=0.1, lr_quant=0.1, batch=64, fit_steps=1000,
                      quant_steps=1000, quantizer="anneal", check_every=50),
    "paper": Recipe("paper", "sgd", lr_fit=0.1, lr_quant=0.001, momentum=0.9, batch=4,
                    dataset=100_000, fit_steps=25_000, quant_steps=25_000, quantizer="twn"),
}


@dataclass
class DiscoveryResult:
    """What a discovery run found.

    Attributes
    ----------
    exact : ndarray of bool, shape (restarts,); which restarts ended exact
    solutions : list of BilinearAlgorithm, the exact ones in the order found
    first_seconds : seconds from the start of :func:`discover` to the first exact solution
    fit_fraction : share of restarts whose full-precision loss fell below 1e-4
    """
    n: int
    r: int
    recipe: Recipe
    restarts: int
    exact: np.ndarray
    solutions: list
    first_seconds: float | None
    seconds: float
    fit_fraction: float
    device: str

    @property
    def rate(self):
        """Share of restarts that found an exact algorithm."""
        return float(self.exact.mean())

    @property
    def first(self):
        """The first exact algorithm found, or None."""
        return self.solutions[0] if self.solutions else None

    def distinct(self):
        """Number of distinct algorithms, up to order of products and sign flips."""
        return len({s.canonical() for s in self.solutions})


def _twn(w):
    """TWN ternary values and scale per restart (dims after the first)."""
    from .quantize import ternarize
    t, alpha, _ = ternarize(w, dim=(1, 2))
    return t, alpha


def _straight_through(w):
    """Forward ``α·W^t`` (TWN), backward as if the identity (straight-through estimator)."""
    t, alpha = _twn(w)
    return w + (t * alpha - w).detach()


def ternary_penalty(weights, penalty, t):
    """The annealed pull toward {-1, 0, 1}: ``λ(t) Σ w²(w²-1)²`` over ``weights``, with ``λ``
    growing geometrically from ``penalty[0]`` (``t = 0``) to ``penalty[1]`` (``t = 1``)."""
    lo, hi = penalty
    lam = lo * (hi / lo) ** t
    return lam * sum((w * w * (w * w - 1) ** 2).sum() for w in weights)


def _candidates(wa, wb, wc, quantizer):
    """Integer ternary candidates ``(W_a, W_b, W_c)`` (each with a restart dim) to check."""
    if quantizer == "twn":
        return [tuple(_twn(w)[0] for w in (wa, wb, wc))]

    def rnd(w):
        return w.round().clamp(-1, 1)
    sa = wa.abs().amax(dim=2).clamp(min=1e-12)          # (R, r): largest entry of a_j
    sb = wb.abs().amax(dim=2).clamp(min=1e-12)
    scaled = (wa / sa[:, :, None], wb / sb[:, :, None], wc * (sa * sb)[:, None, :])
    return [tuple(rnd(w) for w in (wa, wb, wc)), tuple(rnd(w) for w in scaled)]


def _exact_mask(candidate, target):
    """Restarts whose ternary candidate satisfies the tensor identity, decided in integers."""
    import torch
    a, b, c = (w.to(torch.int64) for w in candidate)
    t = torch.einsum("Rij,Rjk,Rjl->Rikl", c, a, b)
    return (t == target).flatten(1).all(dim=1)


def discover(n=2, r=7, restarts=1000, *, seed=0, recipe="default", device=None,
             progress=False, threads=1, **overrides):
    """Train ``restarts`` bilinear networks at once; return every exact algorithm found.

    Parameters
    ----------
    n, r : matrix size and number of products
    restarts : independent random initializations, trained together
    seed : seeds initial weights and data (results repeat on the same device)
    recipe : a name in :data:`RECIPES` or a :class:`Recipe`
    device : torch device; default CUDA when available, else CPU
    progress : show a tqdm progress bar
    threads : CPU threads for torch during the run (the tensors are small: more threads mostly
        add synchronisation, and on a busy machine one thread was 25x faster than two)
    **overrides : fields of the recipe to replace (``fit_steps=...``, ``quant_steps=...``)

    Returns
    -------
    DiscoveryResult
    """
    import torch
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _discover(n, r, restarts, seed, recipe, device, progress, overrides)
    finally:
        torch.set_num_threads(saved)


def _discover(n, r, restarts, seed, recipe, device, progress, overrides):
    import torch

    from strassen_hw.matmul import BilinearAlgorithm, matmul_tensor
    start = time.perf_counter()
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
        recipe = RECIPES[recipe]
    recipe = replace(recipe, **overrides) if overrides else recipe
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    n2, R = n * n, restarts
    gen = torch.Generator(device=device).manual_seed(seed)

    def uniform(*shape):
        return torch.rand(*shape, generator=gen, device=device) * 2 - 1

    wa, wb, wc = uniform(R, r, n2), uniform(R, r, n2), uniform(R, n2, r)
    params = [w.requires_grad_() for w in (wa, wb, wc)]
    if recipe.dataset:
        data_a, data_b = uniform(recipe.dataset, n, n), uniform(recipe.dataset, n, n)
        order = torch.randperm(recipe.dataset, generator=gen, device=device)
    target = torch.as_tensor(matmul_tensor(n), device=device)
    if recipe.objective not in ("data", "tensor"):
        raise ValueError(f"unknown objective {recipe.objective!r}; choose 'data' or 'tensor'")
    target_float = target.to(wa.dtype)

    def optimizer(lr):
        if recipe.optimizer == "adam":
            return torch.optim.Adam(params, lr=lr)
        return torch.optim.SGD(params, lr=lr, momentum=recipe.momentum)

    exact = torch.zeros(R, dtype=torch.bool, device=device)
    solutions, first_seconds, fit_fraction = [], None, 0.0
    total = recipe.fit_steps + recipe.quant_steps
    opt = optimizer(recipe.lr_fit)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, desc=f"discover {n}x{n} r={r}", unit="step", leave=False,
                   disable=None)

    def check():
        nonlocal first_seconds
        with torch.no_grad():
            for w in params:                      # a diverged restart can never be exact
                torch.nan_to_num_(w, nan=0.0, posinf=0.0, neginf=0.0)
            for cand in _candidates(wa, wb, wc, recipe.quantizer):
                new = _exact_mask(cand, target) & ~exact
                for i in new.nonzero().flatten().tolist():
                    ints = [w[i].to(torch.int64).cpu().numpy() for w in cand]
                    solutions.append(BilinearAlgorithm(*ints))
                exact.logical_or_(new)
        if solutions and first_seconds is None:
            first_seconds = time.perf_counter() - start

    for step in range(total):
        quant = step >= recipe.fit_steps
        if step == recipe.fit_steps:
            opt = optimizer(recipe.lr_quant)
        fa, fb, fc = wa, wb, wc
        if quant and recipe.quantizer == "twn":
            fa, fb, fc = (_straight_through(w) for w in (wa, wb, wc))
        if recipe.objective == "tensor":
            tensor = torch.einsum("Rij,Rjk,Rjl->Rikl", fc, fa, fb)
            loss = ((tensor - target_float) ** 2).sum(dim=(1, 2, 3))
        else:
            if recipe.dataset:
                pos = (step * recipe.batch) % recipe.dataset
                if step and pos == 0:
                    order = torch.randperm(recipe.dataset, generator=gen, device=device)
                idx = order[pos:pos + recipe.batch]
                a, b = data_a[idx], data_b[idx]
            else:
                a, b = uniform(recipe.batch, n, n), uniform(recipe.batch, n, n)
            c = (a @ b).reshape(-1, n2)
            a, b = a.reshape(-1, n2), b.reshape(-1, n2)
            u = torch.einsum("Rjk,bk->Rbj", fa, a) * torch.einsum("Rjl,bl->Rbj", fb, b)
            loss = ((torch.einsum("Rij,Rbj->Rbi", fc, u) - c) ** 2).mean(dim=(1, 2))
        total_loss = loss.sum()
        if quant and recipe.quantizer == "anneal":
            progress_q = (step - recipe.fit_steps) / max(1, recipe.quant_steps)
            total_loss = total_loss + ternary_penalty(params, recipe.penalty, progress_q)
        opt.zero_grad(set_to_none=True)
        total_loss.backward()
        opt.step()
        if step == recipe.fit_steps - 1:
            fit_fraction = float((loss.detach() < 1e-4).float().mean())
        if (recipe.check_every and step % recipe.check_every == 0) or step == total - 1:
            check()
        if bar is not None:
            bar.update(1)
            if step % 100 == 0:
                bar.set_postfix(exact=int(exact.sum()))
    if bar is not None:
        bar.close()
    return DiscoveryResult(n=n, r=r, recipe=recipe, restarts=R, exact=exact.cpu().numpy(),
                           solutions=solutions, first_seconds=first_seconds,
                           seconds=time.perf_counter() - start, fit_fraction=fit_fraction,
                           device=str(device))
