"""Benchmark: ``sample_posterior`` against a hand-written ``pm.NormalMixture``, same cores.

On one simulated mixture (n=20,000 rows, 3 features, K=3) fitted by EM, both sample 4 chains of
1000 tuning + 1000 kept draws in the same run:

* ``sample_posterior(model)`` with its defaults (``sampler="auto"``), on a copy of the fitted
  model whose standard errors have not been computed yet, so that its time includes everything
  a user waits for after ``fit``: the EM standard errors (observed information) that the
  over-dispersed chain starts and the relabelling need, the search for other optima, building
  the model, the curvature at EM, sampling, relabelling, the mode analysis and the pointwise
  log-likelihood;
* the baseline: ``pm.NormalMixture`` with ``mu = X1 @ coef.T`` (``X1`` with a column of ones),
  the same priors, the EM values as ``initvals``, ``nuts_sampler="pymc"``,
  ``init="adapt_diag"``, on the same number of cores as ``sample_posterior`` uses (its default:
  one per chain up to the CPU count). Its time is ``pm.sample`` alone (compilation included).

The headline is like-for-like: the ratio of min bulk ESS per second of wall time (ours /
baseline), the pair run ``--runs`` times (default 3, in alternating order) and the median and
the lowest ratio reported. Secondary figures, each labelled as such:

* the baseline on PyMC's default number of cores (it assumes hyper-threads and takes half the
  CPUs: 1 on 2 CPUs), against the median of our runs; the headline of earlier versions of this
  benchmark, which credited parallel chains to the model (``--no-pymc-default`` to skip);
* ``sample_posterior(model, starts="em")``, every chain at the EM estimate: the time cost of
  the default dispersed starts is the ratio of the two wall times (``--no-em-starts``);
* the standard errors alone (the part of our time the baseline does not need);
* one log-density-and-gradient evaluation at the EM estimate, compiled as each sampler compiles
  it: ``sample_posterior``'s model (the fused likelihood Op, ``bayes_mlr/bayes/mixture_op.py``)
  against the baseline's ``pm.NormalMixture`` graph (``--no-gradient``);
* ESS per draw and leapfrog steps per draw, ours / baseline: where the ESS/s ratio comes from
  (per-draw efficiency against cost per draw). What causes a difference in ESS per draw (the
  dense mass matrix from the curvature at EM, the over-dispersed starts) is not separated here.

Timings on a shared machine are noisy: compare only within one run.

Run alone with ``.venv/bin/python -m tests.benchmarks.bench_sampling [--quick] [--n N]
[--draws D] [--tune T] [--chains C] [--runs R] [--samplers pymc,nutpie,...]``.
"""

from __future__ import annotations

import copy
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._common import base_parser, commit_label, environment_line, print_table, say, time_call

__all__ = ["main"]

TRUE_WEIGHTS = np.array([0.5, 0.3, 0.2])
TRUE_INTERCEPT = np.array([-2.0, 0.5, 3.0])
TRUE_COEF = np.array([[1.0, -1.0, 0.5], [-1.0, 2.0, 0.0], [0.5, 0.5, -2.0]])
TRUE_SIGMA = np.array([1.0, 0.7, 1.3])
DATA_SEED = 20_261_126
TARGET_RATIO = 2.0
#: Printed by ``python -m tests.benchmarks`` (see its docstring).
TARGETS = (
    (
        "ours_auto_ratio_ess_per_second",
        ">=",
        TARGET_RATIO,
        "NUTS ESS/s / pm.NormalMixture, same cores, median",
    ),
    (
        "ours_auto_ratio_ess_per_second_lowest",
        ">=",
        TARGET_RATIO,
        "NUTS ESS/s / pm.NormalMixture, same cores, lowest",
    ),
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


def _baseline_model(model: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """The hand-written model (pm.NormalMixture, the default priors) and the EM initvals."""
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
    with pm.Model() as pm_model:
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
    return pm_model, initvals


def _baseline(model: Any, *, draws: int, tune: int, chains: int, cores: int | None, seed: int):
    """Sample the hand-written model: EM initvals, adapt_diag (no jitter), PyMC's NUTS."""
    import pymc as pm

    pm_model, initvals = _baseline_model(model)
    with pm_model:
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


def _pymc_default_cores(chains: int) -> int:
    """What ``pm.sample(cores=None)`` uses: half the CPUs (at least 1, at most 4), not more
    than the chains."""
    return min(chains, 4, max(1, (os.cpu_count() or 2) // 2))


def _our_cores(model: Any, chains: int, iterations: int) -> int:
    """The cores ``sample_posterior(model)`` uses by default with the pymc back-end."""
    from bayes_mlr.bayes.model import _default_cores, _problem

    return _default_cores("pymc", _problem(model), chains, iterations)


def _gradient_ms(model: Any, repeats: int) -> dict[str, float]:
    """Milliseconds per log-density-and-gradient evaluation at the EM estimate, compiled as
    each sampler compiles it: ours as ``sample_posterior`` does (``_logp_dlogp``), the
    baseline as ``pm.sample`` does (PyMC's default compile mode)."""
    from bayes_mlr.bayes.model import (
        _logp_dlogp,
        _value_vars_and_point,
        build_model,
        em_initial_point,
    )

    def per_call(func: Any, x0: np.ndarray) -> float:
        calls = 200

        def batch() -> None:
            for _ in range(calls):
                func(x0)

        timing, _ = time_call(batch, repeats=repeats, warmup=1)
        return 1e3 * timing.median / calls

    ours_model = build_model(model)
    free, point = _value_vars_and_point(ours_model, em_initial_point(model, ours_model))
    _, ours = _logp_dlogp(ours_model, free, point)
    x_ours = np.concatenate([np.ravel(v) for v in point.values()])

    base_model, initvals = _baseline_model(model)
    free, point = _value_vars_and_point(base_model, initvals)
    values = [base_model.rvs_to_values[rv] for rv in free]
    base = base_model.logp_dlogp_function(values, ravel_inputs=True, initial_point=point)
    base.trust_input = True
    x_base = np.concatenate([np.ravel(v) for v in point.values()])
    return {"ours_ms": per_call(ours, x_ours), "baseline_ms": per_call(base, x_base)}


def _run_ours(
    model: Any, *, sampler: str, starts: str, draws: int, tune: int, chains: int
) -> dict[str, Any]:
    """One timed ``sample_posterior`` on a copy of ``model`` without standard errors yet."""
    from bayes_mlr.bayes.posterior import sample_posterior

    fresh = copy.deepcopy(model)  # standard errors not computed: sample_posterior pays for them
    t0 = time.perf_counter()
    idata = sample_posterior(
        fresh,
        draws=draws,
        tune=tune,
        chains=chains,
        sampler=sampler,
        random_seed=1,
        progressbar=False,
        starts=starts,
    )
    seconds = time.perf_counter() - t0
    post = idata["posterior"]
    names = [v for v in ("weights", "intercept", "coef", "sigma") if v in post]
    min_ess, max_rhat = _min_ess_bulk(idata, names)
    return {
        "used": post.attrs["sampler"],
        "seconds": seconds,
        "sampling_seconds": float(post.attrs["sampling_wall_time"]),
        "mean_leapfrog_steps": _mean_steps(idata),
        "min_ess_bulk": min_ess,
        "ess_per_second": min_ess / seconds,
        "max_rhat": max_rhat,
        "relabelled_fraction": float(post.attrs["relabelled_fraction"]),
        "n_modes": int(idata["modes"].attrs["n_modes"]),
    }


def _run_baseline(model: Any, *, draws: int, tune: int, chains: int, cores: int) -> dict:
    """One timed baseline ``pm.sample``."""
    t0 = time.perf_counter()
    base = _baseline(model, draws=draws, tune=tune, chains=chains, cores=cores, seed=1)
    seconds = time.perf_counter() - t0
    min_ess, max_rhat = _min_ess_bulk(base, ["w", "beta", "sigma"])
    return {
        "cores": cores,
        "seconds": seconds,
        "mean_leapfrog_steps": _mean_steps(base),
        "min_ess_bulk": min_ess,
        "ess_per_second": min_ess / seconds,
        "max_rhat": max_rhat,
    }


def _row(label: str, rec: dict[str, Any]) -> list[Any]:
    return [
        label,
        rec["seconds"],
        rec.get("sampling_seconds"),
        rec["mean_leapfrog_steps"],
        rec["min_ess_bulk"],
        rec["ess_per_second"],
        rec["max_rhat"],
    ]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; return its figures (seconds, min ESS, ESS/s, ratios)."""
    parser = base_parser(__doc__.splitlines()[0], prog="bench_sampling")
    parser.add_argument("--n", type=int, default=None, help="rows (default 20000; quick 2000)")
    parser.add_argument("--draws", type=int, default=None, help="kept draws per chain")
    parser.add_argument("--tune", type=int, default=None, help="tuning steps per chain")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument(
        "--runs",
        type=int,
        default=None,
        help="like-for-like pairs (ours, baseline on the same cores); default 3, quick 1",
    )
    parser.add_argument(
        "--samplers",
        default="auto",
        help="comma-separated sample_posterior samplers to time (default: auto)",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip every baseline run")
    parser.add_argument(
        "--no-pymc-default",
        action="store_true",
        help="skip the secondary baseline on PyMC's default number of cores",
    )
    parser.add_argument("--no-em-starts", action="store_true", help="skip the run with starts='em'")
    parser.add_argument("--no-gradient", action="store_true", help="skip the gradient timing")
    args = parser.parse_args(argv)
    n = args.n or (2000 if args.quick else 20_000)
    draws = args.draws or (200 if args.quick else 1000)
    tune = args.tune if args.tune is not None else (200 if args.quick else 1000)
    chains = args.chains
    runs = args.runs or (1 if args.quick else 3)
    samplers = args.samplers.split(",")
    if runs < 1:
        parser.error("--runs must be at least 1")

    import logging

    from bayes_mlr import MixtureOfRegressions, simulate

    logging.getLogger("pymc").setLevel(logging.ERROR)
    commit = commit_label()  # the code under test is what is checked out now
    say(environment_line())
    data = simulate(
        n,
        TRUE_WEIGHTS,
        TRUE_INTERCEPT,
        TRUE_COEF,
        TRUE_SIGMA,
        random_state=DATA_SEED,
    )
    model = MixtureOfRegressions(3, random_state=0).fit(data.X, data.y)  # not timed: both need it
    cores = _our_cores(model, chains, draws + tune)
    say(
        f"n={n}, p=3, K=3, {chains} chains x ({tune} tune + {draws} draws); sample_posterior "
        f"and the like-for-like baseline on {cores} core(s); {runs} run(s) of each"
    )
    figures: dict[str, Any] = {
        "n": n,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "runs": runs,
        "cores": cores,
    }
    rows: list[list[Any]] = []

    se_timing, _ = time_call(lambda: copy.deepcopy(model).standard_errors_, repeats=3)
    figures["standard_errors_seconds"] = se_timing.median
    say(f"EM standard errors alone (included in sample_posterior's time): {se_timing.describe()}")

    # --- the headline: like-for-like pairs, in alternating order ------------------------------
    ours_runs: dict[str, list[dict[str, Any]]] = {s: [] for s in samplers}
    base_runs: list[dict[str, Any]] = []
    for i in range(runs):
        order = ["ours", "baseline"] if i % 2 == 0 else ["baseline", "ours"]
        for who in order:
            if who == "ours":
                for sampler in samplers:
                    rec = _run_ours(
                        model, sampler=sampler, starts="dispersed", draws=draws, tune=tune,
                        chains=chains,
                    )  # fmt: skip
                    ours_runs[sampler].append(rec)
                    label = f"run {i + 1}: sample_posterior[{sampler}->{rec['used']}]"
                    rows.append(_row(label, rec))
            elif not args.no_baseline:
                rec = _run_baseline(model, draws=draws, tune=tune, chains=chains, cores=cores)
                base_runs.append(rec)
                rows.append(_row(f"run {i + 1}: baseline, cores={cores}", rec))

    for sampler, recs in ours_runs.items():
        key = f"ours_{sampler}"
        for k in ("seconds", "sampling_seconds", "mean_leapfrog_steps", "min_ess_bulk"):
            figures[f"{key}_{k}"] = statistics.median(r[k] for r in recs)
        figures[f"{key}_ess_per_second"] = statistics.median(r["ess_per_second"] for r in recs)
        figures[f"{key}_max_rhat"] = max(r["max_rhat"] for r in recs)
        figures[f"{key}_relabelled_fraction"] = max(r["relabelled_fraction"] for r in recs)
        figures[f"{key}_n_modes"] = max(r["n_modes"] for r in recs)
        if base_runs:
            ratios = [
                o["ess_per_second"] / b["ess_per_second"]
                for o, b in zip(recs, base_runs, strict=True)
            ]
            figures[f"{key}_ratio_ess_per_second"] = statistics.median(ratios)
            figures[f"{key}_ratio_ess_per_second_lowest"] = min(ratios)
            figures[f"{key}_ratio_ess_per_second_runs"] = ratios
            figures[f"{key}_ratio_ess_per_draw"] = statistics.median(
                o["min_ess_bulk"] / b["min_ess_bulk"] for o, b in zip(recs, base_runs, strict=True)
            )
            figures[f"{key}_ratio_leapfrog_steps_per_draw"] = statistics.median(
                o["mean_leapfrog_steps"] / b["mean_leapfrog_steps"]
                for o, b in zip(recs, base_runs, strict=True)
            )
    if base_runs:
        for k in ("seconds", "mean_leapfrog_steps", "min_ess_bulk", "ess_per_second"):
            figures[f"baseline_same_cores_{k}"] = statistics.median(r[k] for r in base_runs)
        figures["baseline_same_cores_max_rhat"] = max(r["max_rhat"] for r in base_runs)
        figures["baseline_same_cores_cores"] = cores

    # --- secondary figures ----------------------------------------------------------------------
    default_cores = _pymc_default_cores(chains)
    if not (args.no_baseline or args.no_pymc_default) and default_cores != cores:
        rec = _run_baseline(model, draws=draws, tune=tune, chains=chains, cores=default_cores)
        rows.append(_row(f"secondary: baseline, PyMC default cores={default_cores}", rec))
        figures.update({f"baseline_pymc_default_{k}": v for k, v in rec.items()})
        for sampler in samplers:
            key = f"ours_{sampler}"
            figures[f"{key}_ratio_ess_per_second_vs_pymc_default_cores"] = (
                figures[f"{key}_ess_per_second"] / rec["ess_per_second"]
            )
    if not args.no_em_starts:
        rec = _run_ours(
            model, sampler=samplers[0], starts="em", draws=draws, tune=tune, chains=chains
        )
        rows.append(_row(f"secondary: sample_posterior[{samplers[0]}, starts=em]", rec))
        figures["em_starts_seconds"] = rec["seconds"]
        figures["em_starts_n_modes"] = rec["n_modes"]
        figures["dispersed_over_em_seconds"] = (
            figures[f"ours_{samplers[0]}_seconds"] / rec["seconds"]
        )
    if not args.no_gradient:
        grad = _gradient_ms(model, repeats=5)
        figures["logp_dlogp_ms_ours"] = grad["ours_ms"]
        figures["logp_dlogp_ms_baseline"] = grad["baseline_ms"]

    # --- report ----------------------------------------------------------------------------------
    say("")
    say(
        "seconds: wall time of the call (ours: standard errors, starts, model, compilation, "
        "sampling, relabelling, modes, log-likelihood; baseline: pm.sample with compilation). "
        "ESS/s = min bulk ESS over all scalars / seconds."
    )
    print_table(
        ["run", "seconds", "of which MCMC", "steps/draw", "min ESS bulk", "ESS/s", "max R-hat"],
        rows,
    )
    say(f"[commit {commit}]")
    for sampler in samplers:
        key = f"ours_{sampler}"
        if f"{key}_ratio_ess_per_second" in figures:
            per_run = ", ".join(f"{r:.2f}" for r in figures[f"{key}_ratio_ess_per_second_runs"])
            median = figures[f"{key}_ratio_ess_per_second"]
            say(
                f"HEADLINE ratio ESS/s sample_posterior[{sampler}] / baseline, both on {cores} "
                f"core(s), standard errors included: median {median:.2f} over {runs} run(s) "
                f"({per_run}), lowest "
                f"{figures[f'{key}_ratio_ess_per_second_lowest']:.2f} (target >= {TARGET_RATIO})"
                f"  [commit {commit}]"
            )
            say(
                f"  of which ESS per draw {figures[f'{key}_ratio_ess_per_draw']:.2f}x the "
                f"baseline's, leapfrog steps per draw "
                f"{figures[f'{key}_ratio_leapfrog_steps_per_draw']:.2f}x (medians over runs)"
            )
        other = figures.get(f"{key}_ratio_ess_per_second_vs_pymc_default_cores")
        if other is not None:
            say(
                f"secondary, not like-for-like: ratio ESS/s sample_posterior[{sampler}] (median,"
                f" {cores} cores) / baseline on PyMC's default {default_cores} core(s): "
                f"{other:.2f}  [commit {commit}]"
            )
    say(
        f"EM standard errors: {figures['standard_errors_seconds']:.3f} s of sample_posterior's "
        f"time  [commit {commit}]"
    )
    if "dispersed_over_em_seconds" in figures:
        say(
            "time of dispersed starts / EM starts (search, per-draw log density, modes): "
            f"{figures['dispersed_over_em_seconds']:.2f}  [commit {commit}]"
        )
    if "logp_dlogp_ms_ours" in figures:
        say(
            f"one log-density + gradient at EM (n={n}, K=3): sample_posterior's model "
            f"{figures['logp_dlogp_ms_ours']:.3f} ms, baseline pm.NormalMixture "
            f"{figures['logp_dlogp_ms_baseline']:.3f} ms  [commit {commit}]"
        )
    return figures


if __name__ == "__main__":
    main()
