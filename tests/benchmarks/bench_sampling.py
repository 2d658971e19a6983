"""Benchmark: ``sample_posterior`` against a hand-written ``pm.NormalMixture``.

On one simulated mixture (n=20,000 rows, 3 features, K=3) fitted by EM, both sample 4 chains of
1000 tuning + 1000 kept draws in the same run:

* ``sample_posterior(model)`` with its defaults (``sampler="auto"``, which includes building
  the model, the curvature at EM, relabelling and the pointwise log-likelihood);
* the baseline: ``pm.NormalMixture`` with ``mu = X1 @ coef.T`` (``X1`` with a column of ones),
  the same priors, the EM values as ``initvals``, ``nuts_sampler="pymc"``,
  ``init="adapt_diag"`` and PyMC's default number of cores (``--baseline-cores`` to change);
* ``sample_posterior(model, starts="em")``, every chain at the EM estimate: the time cost of
  the default dispersed starts (the search for other optima, the per-draw log density and
  the mode analysis) is the ratio of the two wall times (``--no-em-starts`` to skip);
* the same baseline given as many cores as ``sample_posterior`` uses, when that differs from
  PyMC's default (PyMC assumes hyper-threads and uses half the CPUs): the like-for-like ratio,
  which isolates what the model and sampler settings gain from what parallel chains gain
  (``--no-like-for-like`` to skip).

Wall time includes compilation. The figure of merit is the minimum bulk ESS over all scalar
parameters per second of wall time, and the ratio ours / baseline. Timings on a shared machine
are noisy: compare only within one run.

Run alone with ``.venv/bin/python -m tests.benchmarks.bench_sampling [--quick] [--n N]
[--draws D] [--tune T] [--chains C] [--samplers pymc,nutpie,...]``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._common import base_parser, environment_line, print_table, say

__all__ = ["main"]

TRUE_WEIGHTS = np.array([0.5, 0.3, 0.2])
TRUE_INTERCEPT = np.array([-2.0, 0.5, 3.0])
TRUE_COEF = np.array([[1.0, -1.0, 0.5], [-1.0, 2.0, 0.0], [0.5, 0.5, -2.0]])
TRUE_SIGMA = np.array([1.0, 0.7, 1.3])
DATA_SEED = 20_261_126
#: Printed by ``python -m tests.benchmarks`` (see its docstring).
TARGETS = (
    ("ours_auto_ratio_ess_per_second", ">=", 2.0, "sample_posterior ESS/s / pm.NormalMixture"),
    ("ours_auto_max_rhat", "<=", 1.01, "sample_posterior max R-hat"),
    ("ours_auto_relabelled_fraction", "<=", 0.05, "sample_posterior relabelled fraction"),
)


def _min_ess_bulk(idata: Any, var_names: Sequence[str]) -> tuple[float, float]:
    """(min bulk ESS, max R-hat) over every scalar of ``var_names``."""
    import arviz_stats as azs

    post = idata["posterior"].to_dataset()[list(var_names)]
    ess = azs.ess(post, method="bulk")
    rhat = azs.rhat(post)
    min_ess = min(float(ess[v].min()) for v in ess.data_vars)
    max_rhat = max(float(rhat[v].max()) for v in rhat.data_vars)
    return min_ess, max_rhat


def _mean_steps(idata: Any) -> float:
    """Mean leapfrog steps per draw (gradient evaluations), NaN if not recorded."""
    stats = idata["sample_stats"]
    for name in ("n_steps", "tree_size"):
        if name in stats:
            return float(stats[name].mean())
    return float("nan")


def _baseline(model: Any, *, draws: int, tune: int, chains: int, cores: int | None, seed: int):
    """The hand-written model: pm.NormalMixture, EM initvals, adapt_diag (no jitter)."""
    import pymc as pm

    from bayes_mlr.bayes.model import default_priors

    X, y = model._fit_X, model._fit_y
    n, p = X.shape
    K = model.n_components
    prior = default_priors(X, y, K)
    X1 = np.column_stack([np.ones(n), X])
    beta_mu = np.zeros((K, p + 1))
    beta_mu[:, 0] = prior["intercept"]["mu"]
    beta_sd = np.empty((K, p + 1))
    beta_sd[:, 0] = prior["intercept"]["sigma"]
    beta_sd[:, 1:] = prior["coef"]["sigma"]
    with pm.Model():
        X1_data = pm.Data("X1", X1)
        w = pm.Dirichlet("w", a=prior["weights"]["alpha"])
        beta = pm.Normal("beta", mu=beta_mu, sigma=beta_sd, shape=(K, p + 1))
        sigma = pm.HalfNormal("sigma", sigma=prior["sigma"]["sigma"], shape=K)
        mu = X1_data @ beta.T
        pm.NormalMixture("y", w=w, mu=mu, sigma=sigma, observed=y)
        initvals = {
            "w": model.weights_,
            "beta": np.column_stack([model.intercept_, model.coef_]),
            "sigma": model.sigma_,
        }
        return pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            nuts_sampler="pymc",
            init="adapt_diag",
            initvals=initvals,
            random_seed=seed,
            progressbar=False,
            compute_convergence_checks=False,
        )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; return its figures (seconds, min ESS, ESS/s, ratios)."""
    parser = base_parser(__doc__.splitlines()[0], prog="bench_sampling")
    parser.add_argument("--n", type=int, default=None, help="rows (default 20000; quick 2000)")
    parser.add_argument("--draws", type=int, default=None, help="kept draws per chain")
    parser.add_argument("--tune", type=int, default=None, help="tuning steps per chain")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument(
        "--samplers",
        default="auto",
        help="comma-separated sample_posterior samplers to time (default: auto)",
    )
    parser.add_argument(
        "--baseline-cores",
        type=int,
        default=None,
        help="cores for the baseline's pm.sample (default: PyMC's own default)",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline")
    parser.add_argument("--no-em-starts", action="store_true", help="skip the run with starts='em'")
    parser.add_argument(
        "--no-like-for-like",
        action="store_true",
        help="skip the baseline run with as many cores as sample_posterior uses",
    )
    args = parser.parse_args(argv)
    n = args.n or (2000 if args.quick else 20_000)
    draws = args.draws or (200 if args.quick else 1000)
    tune = args.tune if args.tune is not None else (200 if args.quick else 1000)
    chains = args.chains

    import logging

    from bayes_mlr import MixtureOfRegressions, simulate
    from bayes_mlr.bayes.model import sample_posterior

    logging.getLogger("pymc").setLevel(logging.ERROR)
    say(environment_line())
    data = simulate(
        n,
        TRUE_WEIGHTS,
        TRUE_INTERCEPT,
        TRUE_COEF,
        TRUE_SIGMA,
        random_state=DATA_SEED,
    )
    model = MixtureOfRegressions(3, random_state=0).fit(data.X, data.y)
    _ = model.standard_errors_  # computed once, outside both timings
    say(f"n={n}, p=3, K=3, {chains} chains x ({tune} tune + {draws} draws)")

    figures: dict[str, Any] = {"n": n, "draws": draws, "tune": tune, "chains": chains}
    rows = []
    runs = [(sampler, "dispersed") for sampler in args.samplers.split(",")]
    if not args.no_em_starts:
        runs.append((args.samplers.split(",")[0], "em"))
    for sampler, starts in runs:
        t0 = time.perf_counter()
        idata = sample_posterior(
            model,
            draws=draws,
            tune=tune,
            chains=chains,
            sampler=sampler,
            random_seed=1,
            progressbar=False,
            starts=starts,
        )
        seconds = time.perf_counter() - t0
        used = idata["posterior"].attrs["sampler"]
        names = [v for v in ("weights", "intercept", "coef", "sigma") if v in idata["posterior"]]
        min_ess, max_rhat = _min_ess_bulk(idata, names)
        label = f"sample_posterior[{sampler}->{used}, starts={starts}]"
        steps = _mean_steps(idata)
        sampling = float(idata["posterior"].attrs["sampling_wall_time"])
        rows.append([label, seconds, sampling, steps, min_ess, min_ess / seconds, max_rhat])
        if starts == "em":
            figures["em_starts_seconds"] = seconds
            figures["dispersed_over_em_seconds"] = figures[f"ours_{sampler}_seconds"] / seconds
            figures["em_starts_n_modes"] = int(idata["modes"].attrs["n_modes"])
            del idata
            continue
        figures[f"ours_{sampler}_n_modes"] = int(idata["modes"].attrs["n_modes"])
        key = f"ours_{sampler}"
        figures.update(
            {
                f"{key}_seconds": seconds,
                f"{key}_sampling_seconds": sampling,
                f"{key}_mean_leapfrog_steps": steps,
                f"{key}_min_ess_bulk": min_ess,
                f"{key}_ess_per_second": min_ess / seconds,
                f"{key}_max_rhat": max_rhat,
                f"{key}_relabelled_fraction": idata["posterior"].attrs["relabelled_fraction"],
            }
        )
        del idata
    baselines = []  # (label, figure key prefix, cores)
    if not args.no_baseline:
        baselines.append(("baseline pm.NormalMixture", "baseline", args.baseline_cores))
        ours_cores = max(1, min(chains, os.cpu_count() or 1))
        pymc_default = args.baseline_cores or min(4, max(1, (os.cpu_count() or 2) // 2))
        if not args.no_like_for_like and ours_cores != pymc_default:
            baselines.append((f"baseline, cores={ours_cores}", "baseline_same_cores", ours_cores))
    for label, prefix, cores in baselines:
        t0 = time.perf_counter()
        base = _baseline(model, draws=draws, tune=tune, chains=chains, cores=cores, seed=1)
        seconds = time.perf_counter() - t0
        min_ess, max_rhat = _min_ess_bulk(base, ["w", "beta", "sigma"])
        steps = _mean_steps(base)
        rows.append([label, seconds, None, steps, min_ess, min_ess / seconds, max_rhat])
        figures.update(
            {
                f"{prefix}_cores": cores if cores is not None else pymc_default,
                f"{prefix}_seconds": seconds,
                f"{prefix}_mean_leapfrog_steps": steps,
                f"{prefix}_min_ess_bulk": min_ess,
                f"{prefix}_ess_per_second": min_ess / seconds,
                f"{prefix}_max_rhat": max_rhat,
            }
        )
        suffix = "" if prefix == "baseline" else "_same_cores"
        for sampler in args.samplers.split(","):
            key = f"ours_{sampler}"
            figures[f"{key}_ratio_ess_per_second{suffix}"] = (
                figures[f"{key}_ess_per_second"] / figures[f"{prefix}_ess_per_second"]
            )
    print_table(
        ["run", "seconds", "of which MCMC", "steps/draw", "min ESS bulk", "ESS/s", "max R-hat"],
        rows,
    )
    if "dispersed_over_em_seconds" in figures:
        say(
            "time of dispersed starts / EM starts (search, per-draw log density, modes): "
            f"{figures['dispersed_over_em_seconds']:.2f}"
        )
    for sampler in args.samplers.split(","):
        ratio = figures.get(f"ours_{sampler}_ratio_ess_per_second")
        if ratio is not None:
            say(f"ratio ESS/s sample_posterior[{sampler}] / baseline: {ratio:.2f} (target >= 2)")
        same = figures.get(f"ours_{sampler}_ratio_ess_per_second_same_cores")
        if same is not None:
            say(
                f"ratio ESS/s sample_posterior[{sampler}] / baseline with the same cores "
                f"({figures['baseline_same_cores_cores']}): {same:.2f}"
            )
    return figures


if __name__ == "__main__":
    main()
