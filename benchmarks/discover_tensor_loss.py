"""Experiment for the 3×3 stretch: fit the matrix-multiplication tensor directly.

The default recipe trains on random matrix pairs; for inputs drawn from U[-1, 1] the expected
loss is proportional to the squared residual of the algorithm's tensor against the
matrix-multiplication tensor. This runs the default recipe with ``objective="tensor"`` (that
residual itself, no sampling noise; same annealed ternary penalty, same integer exactness check)
and prints the share of restarts fitted at full precision and the exact ones.

    python benchmarks/discover_tensor_loss.py --size 2 --rank 7 --restarts 1000
    python benchmarks/discover_tensor_loss.py --size 3 --rank 23 --restarts 200 \\
        --fit-steps 20000 --quant-steps 5000 --lr 0.01 --seed 1
"""

import argparse

from strassen_hw.train.discover import discover


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    p.add_argument("--size", type=int, default=2)
    p.add_argument("--rank", type=int, default=7)
    p.add_argument("--restarts", type=int, default=1000)
    p.add_argument("--fit-steps", type=int, default=1000)
    p.add_argument("--quant-steps", type=int, default=1000)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    result = discover(args.size, args.rank, args.restarts, seed=args.seed, progress=True,
                      objective="tensor", lr_fit=args.lr, lr_quant=args.lr,
                      fit_steps=args.fit_steps, quant_steps=args.quant_steps)
    n, exact = args.size, result.exact
    print(f"{n}x{n} rank {args.rank}, {args.restarts} restarts, tensor loss, lr {args.lr}, "
          f"{args.fit_steps}+{args.quant_steps} steps on {result.device}: fitted at full "
          f"precision {100 * result.fit_fraction:.1f}% (residual < 1e-4), exact "
          f"{int(exact.sum())} ({100 * exact.mean():.1f}%), {result.seconds:.1f} s")


if __name__ == "__main__":
    main()
