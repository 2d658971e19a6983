"""How often ``posterior_n_components`` recovers K+ on simulated data with known K.

For K = 2, 3, 4 and ``--seeds`` seeds each: n = 300 rows from well-separated components
(``bayes_mlr.simulate.default_truth``), K_max = 6, e0 = 0.01. Prints, per K, the share of
seeds whose posterior mode of K+ is K and the mean posterior probability of K+ = K.

Run: ``.venv/bin/python -m tests.calibration.k_plus [--seeds 10] [--n 300]``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from bayes_mlr import posterior_n_components, simulate
    from bayes_mlr.simulate import default_truth

    parser = argparse.ArgumentParser(prog="k_plus", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--e0", default="0.01", help="a number, or 'gamma'")
    args = parser.parse_args(argv)
    e0 = args.e0 if args.e0 == "gamma" else float(args.e0)
    t0 = time.perf_counter()
    print(f"n = {args.n}, K_max = 6, e0 = {e0}, {args.seeds} seeds per K")
    print(f"{'K':>3} {'recovered':>10} {'mean P(K+ = K)':>15} {'modes seen':>20}")
    for K in (2, 3, 4):
        hits, probs, modes = 0, [], []
        for seed in range(args.seeds):
            data = simulate(args.n, **default_truth(K), random_state=seed)
            result = posterior_n_components(data.X, data.y, 6, e0=e0, random_state=seed)
            hits += result.mode == K
            probs.append(float(result.probabilities.get(K, 0.0)))
            modes.append(result.mode)
        print(
            f"{K:>3} {hits:>5} / {args.seeds:<3} {np.mean(probs):>15.3f} {sorted(set(modes))!s:>20}"
        )
    print(f"{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
