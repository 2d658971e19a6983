"""Figures behind issue #9's trust claims, printed (no R needed).

Run with ``python -m tests.peers.trust_figures [--n-boot 99]``:

1. the spread of the default fit's log-likelihood over random_state 0..4 (K = 3 on flexmix's
   NPreg, a two-component data set, and on mixtools' CO2data), with the guard
   (``spurious="avoid"``, the default) and without it (``"allow"``);
2. bootstrap LRT p-values (McLachlan 1987) on a known two-component mixture (simulated, n = 200)
   and on NPreg: 1 against 2 components and 2 against 3.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Sequence

import numpy as np

from bayes_mlr import bootstrap_lrt, fit_em, simulate
from tests.core.test_spurious import CO2, GNP, npreg


def spread(X, y, K: int, spurious: str) -> tuple[list[float], int]:
    lls, flagged = [], 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in range(5):
            res = fit_em(X, y, K, random_state=seed, spurious=spurious)
            lls.append(res.log_likelihood)
            flagged += res.spurious
    return lls, flagged


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-boot", type=int, default=99)
    args = parser.parse_args(argv)
    out: dict = {"spread": {}, "lrt": {}}
    sets = {"NPreg": npreg(), "CO2data": (np.array(GNP)[:, None], np.array(CO2))}
    print("Default fit, K = 3, random_state 0..4: log-likelihoods (spread; spurious fits)")
    for name, (X, y) in sets.items():
        for mode in ("avoid", "allow"):
            lls, flagged = spread(X, y, 3, mode)
            out["spread"][f"{name}/{mode}"] = {"ll": lls, "ptp": float(np.ptp(lls))}
            print(
                f"  {name:8s} spurious={mode:5s}: "
                + ", ".join(f"{v:.2f}" for v in lls)
                + f"   (spread {np.ptp(lls):.3f}; {flagged} of 5 flagged spurious)"
            )
    known = simulate(
        200,
        weights=[0.5, 0.5],
        intercept=[-2.0, 2.0],
        coef=[[1.0], [-1.0]],
        sigma=[0.7, 0.7],
        random_state=0,
    )
    print(f"\nBootstrap LRT, n_boot = {args.n_boot} (p = (1 + #{{T_b >= T}}) / (B + 1))")
    for name, (X, y) in {"simulated K=2": (known.X, known.y), "NPreg": sets["NPreg"]}.items():
        for ks in ((1, 2), (2, 3)):
            t0 = time.perf_counter()
            test = bootstrap_lrt(X, y, ks, n_boot=args.n_boot, random_state=0)
            out["lrt"][f"{name} {ks}"] = {"statistic": test.statistic, "p_value": test.p_value}
            print(
                f"  {name:14s} {ks[0]} vs {ks[1]}: T = {test.statistic:8.3f}, p = "
                f"{test.p_value:.3f}  ({test.n_flagged} flagged fits, "
                f"{time.perf_counter() - t0:.0f} s)"
            )
    return out


if __name__ == "__main__":
    main()
