"""One EM iteration against the hardware floor: ``python -m tests.benchmarks.bench_floor``.

The unavoidable work of an EM iteration is K weighted Gram matrices over all rows. The floor is
measured in the same run as the time of K plain BLAS products ``X1ᵀ X1`` (X1 = X with the
intercept column). One EM iteration is timed as one E-step's sufficient statistics plus the
M-step solved from them, exactly as the fit loop runs them. Target (issue #5): at n=2,000,000,
10 features, K=5, one iteration in at most 2.0x the floor.
"""

from __future__ import annotations

import numpy as np

from bayes_mlr.core.data import InMemoryData, Scaler
from bayes_mlr.core.em import _Params, m_step_from_stats
from bayes_mlr.simulate import simulate

from ._common import base_parser, say, time_call

TARGET = 2.0
#: Printed by ``python -m tests.benchmarks`` (see its docstring).
TARGETS = (("ratio_to_floor", "<=", TARGET, "EM iteration / floor (n=2e6, p=10, K=5)"),)


def main(argv: list[str] | None = None) -> dict:
    parser = base_parser(__doc__.splitlines()[0], prog="bench_floor")
    parser.add_argument("--n", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--components", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    n = 100_000 if args.quick else args.n
    p, K = args.features, args.components
    repeats = 2 if args.quick else args.repeats

    rng = np.random.default_rng(0)
    coef = rng.normal(size=(K, p))
    data = simulate(n, np.full(K, 1 / K), np.linspace(-3, 3, K), coef, 1.0, random_state=1)
    X1 = np.column_stack([np.ones(n), data.X])
    floor, _ = time_call(lambda: [X1.T @ X1 for _ in range(K)], repeats=repeats)

    scaler = Scaler.from_arrays(data.X, data.y, None, True)
    params = _Params(np.full(K, 1 / K), rng.normal(size=(K, p + 1)) * 0.3, np.ones(K))
    with InMemoryData(scaler.augmented(data.X, data.y), None) as source:

        def iteration():
            stats = source.stats(np.log(params.weights), params.beta, params.sigma)
            return m_step_from_stats(
                stats, variance="component", sigma_fixed=None, sigma_floor=1e-6
            )

        em, _ = time_call(iteration, repeats=repeats)
        stats_only, _ = time_call(
            lambda: source.stats(np.log(params.weights), params.beta, params.sigma),
            repeats=repeats,
        )
    ratio = em.median / floor.median
    say(f"n={n:,}, features={p}, K={K}")
    say(f"floor (K x X1ᵀX1, BLAS): {floor.describe()}")
    say(f"one EM iteration:        {em.describe()}")
    say(f"  of which E-step stats: {stats_only.describe()}")
    say(
        f"ratio EM iteration / floor = {ratio:.2f} (target <= {TARGET})"
        f" -> {'MET' if ratio <= TARGET else 'NOT MET'}"
    )
    return {
        "n": n,
        "floor_s": floor.median,
        "em_iteration_s": em.median,
        "ratio_to_floor": ratio,
        "target": TARGET,
        "met": bool(ratio <= TARGET),
    }


if __name__ == "__main__":
    main()
