"""Experiment for the 3×3 stretch: fit the matrix-multiplication tensor directly.

The default recipe trains on random matrix pairs; for inputs drawn from U[-1, 1] the expected
loss is proportional to the squared residual of the algorithm's tensor against the
matrix-multiplication tensor, so this script minimises that residual itself (no sampling noise),
then runs the same annealed ternary penalty and the same integer exactness check as
``strassen-hw discover``. Prints the share of restarts fitted at full precision and the exact ones.

    python benchmarks/discover_tensor_loss.py --size 2 --rank 7 --restarts 1000
    python benchmarks/discover_tensor_loss.py --size 3 --rank 23 --restarts 200 \\
        --fit-steps 20000 --quant-steps 5000 --lr 0.01 --seed 1
"""

import argparse
import time

import torch

from strassen_hw.matmul import matmul_tensor
from strassen_hw.train.discover import RECIPES, _candidates, _exact_mask, ternary_penalty


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=2)
    p.add_argument("--rank", type=int, default=7)
    p.add_argument("--restarts", type=int, default=1000)
    p.add_argument("--fit-steps", type=int, default=1000)
    p.add_argument("--quant-steps", type=int, default=1000)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    n, r, restarts, n2 = args.size, args.rank, args.restarts, args.size ** 2
    gen = torch.Generator().manual_seed(args.seed)
    params = [(torch.rand(*shape, generator=gen) * 2 - 1).requires_grad_()
              for shape in ((restarts, r, n2), (restarts, r, n2), (restarts, n2, r))]
    wa, wb, wc = params
    target_int = torch.as_tensor(matmul_tensor(n))
    target = target_int.float()
    exact = torch.zeros(restarts, dtype=torch.bool)
    fitted = 0.0
    start = time.perf_counter()
    opt = torch.optim.Adam(params, lr=args.lr)
    total = args.fit_steps + args.quant_steps
    for step in range(total):
        if step == args.fit_steps:
            opt = torch.optim.Adam(params, lr=args.lr)
        tensor = torch.einsum("Rij,Rjk,Rjl->Rikl", wc, wa, wb)
        residual = ((tensor - target) ** 2).sum(dim=(1, 2, 3))
        loss = residual.sum()
        if step >= args.fit_steps:
            t = (step - args.fit_steps) / max(1, args.quant_steps)
            loss = loss + ternary_penalty(params, RECIPES["default"].penalty, t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step == args.fit_steps - 1:
            fitted = float((residual.detach() < 1e-3).float().mean())
        if step % 50 == 0 or step == total - 1:
            with torch.no_grad():
                for cand in _candidates(wa, wb, wc, "anneal"):
                    exact |= _exact_mask(cand, target_int)
    print(f"{n}x{n} rank {r}, {restarts} restarts, tensor loss, lr {args.lr}, "
          f"{args.fit_steps}+{args.quant_steps} steps: fitted at full precision "
          f"{100 * fitted:.1f}% (residual < 1e-3), exact {int(exact.sum())} "
          f"({100 * float(exact.float().mean()):.1f}%), {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
