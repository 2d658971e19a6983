"""Benchmark: ``sample_posterior`` against a hand-written ``pm.NormalMixture``, same cores.

On one simulated mixture (n=20,000 rows, 3 features, K=3) fitted by EM, both sample 4 chains of
1000 tuning + 1000 kept draws in the same run:

* the NUTS path's ``sample_posterior(model)`` (:func:`bayes_mlr.bayes.model.sample_posterior`,
  whose ``sampler="auto"`` is PyMC's NUTS; the top-level ``bayes_mlr.sample_posterior`` picks
  the Gibbs sampler at this size, which ``bench_gibbs`` measures) with its defaults, on a copy
  of the fitted model whose standard errors have not been computed yet, so that its time
  includes everything a user waits for after ``fit``: the EM standard errors (observed
  information) that the over-dispersed chain starts and the relabelling need, the search for
  other optima, building the model, the curvature at EM, sampling, relabelling, the mode
  analysis and the pointwise log-likelihood;
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

Then **where the time goes** in our run (medians over the runs; ``--no-breakdown`` to skip):
the seconds of ``sample_posterior`` in each phase (chain starts, building and compiling the
model, the curvature at EM, ``pm.sample``, relabelling, pointwise log-likelihood, modes, the
rest), split into fixed costs and sampling; the gradient evaluations of both samplers (leapfrog
steps, tuning included, all chains: both run with ``discard_tuned_samples=False`` to count them)
and the wall time per evaluation and core; one log-density-and-gradient evaluation for ours, the
baseline and the *numpy floor* (the same arithmetic as ours in plain numpy, one vectorised pass
per operation over the ``(K, n)`` arrays: means, residuals, log densities, logsumexp,
responsibilities, gradient sums); the sampler's own cost per leapfrog step outside the gradient
(one chain in this process, ``pm.sample``'s loop time less the time inside the compiled
function); and the bound these put on the ratio (printed with its arithmetic).

Timings on a shared machine are noisy: compare only within one run.

Run alone with ``.venv/bin/python -m tests.benchmarks.bench_sampling [--quick] [--n N]
[--draws D] [--tune T] [--chains C] [--runs R] [--samplers pymc,nutpie,...]
[--no-breakdown]``.
"""

from __future__ import annotations

import contextlib
import copy
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._common import (
    add_sampling_arguments,
    base_parser,
    commit_label,
    environment_line,
    print_table,
    sampling_sizes,
    say,
    time_call,
)

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
    """Mean leapfrog steps per kept draw (gradient evaluations), NaN if not recorded."""
    stats = idata["sample_stats"]
    for name in ("n_steps", "tree_size"):
        if name in stats:
            return float(stats[name].mean())
    return float("nan")


def _total_steps(idata: Any) -> float:
    """Leapfrog steps (gradient evaluations) of all chains, tuning included when the tuning
    draws were kept (``warmup_sample_stats``); NaN if not recorded."""
    total = 0.0
    for group in ("sample_stats", "warmup_sample_stats"):
        if group not in idata.children:
            continue
        stats = idata[group]
        name = next((n for n in ("n_steps", "tree_size") if n in stats), None)
        if name is None:
            return float("nan")
        total += float(stats[name].sum())
    return total


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


def _baseline(
    model: Any,
    *,
    draws: int,
    tune: int,
    chains: int,
    cores: int | None,
    seed: int,
    keep_tuning: bool = False,
):
    """Sample the hand-written model: EM initvals, adapt_diag (no jitter), PyMC's NUTS.

    ``keep_tuning``: keep the tuning draws' statistics (``discard_tuned_samples=False``), to
    count every gradient evaluation."""
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
            discard_tuned_samples=not keep_tuning,
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
    x_base = np.concatenate([np.ravel(v) for v in point.values()])
    floor = _numpy_floor(model)
    return {
        "ours_ms": per_call(ours, x_ours),
        "baseline_ms": per_call(base, x_base),
        "numpy_floor_ms": per_call(lambda _: floor(), None),
    }


def _numpy_floor(model: Any):
    """The likelihood's log density and gradient at EM in plain numpy: the arithmetic of ours,
    one vectorised pass per operation over component-major ``(K, n)`` arrays, ``X.T``
    contiguous, no checks (no clamping, no degenerate rows), priors left out. A call returns
    ``(logp, d_intercept, d_coef, d_log_w, d_sigma)``."""
    X = np.asarray(model._fit_X, dtype=float)
    XT = np.ascontiguousarray(X.T)
    y = np.asarray(model._fit_y, dtype=float)
    intercept, coef = np.asarray(model.intercept_), np.asarray(model.coef_)
    log_w, sigma = np.log(model.weights_), np.asarray(model.sigma_)
    log_sqrt_2pi = 0.5 * np.log(2 * np.pi)

    def floor() -> tuple:
        inv = 1.0 / sigma
        z = coef @ XT  # means, (K, n)
        np.subtract(y, z, out=z)  # residuals, standardised
        z -= intercept[:, None]
        z *= inv[:, None]
        t = z * z  # log densities
        t *= -0.5
        t += (log_w + np.log(inv) - log_sqrt_2pi)[:, None]
        top = t.max(axis=0)  # logsumexp
        t -= top
        np.exp(t, out=t)
        total = t.sum(axis=0)
        logp = np.log(total).sum() + top.sum()
        t /= total  # responsibilities
        d_log_w = t.sum(axis=1)  # gradient sums
        t *= z
        d_sigma = (np.einsum("kn,kn->k", t, z) - d_log_w) * inv
        return logp, t.sum(axis=1) * inv, (t @ X) * inv[:, None], d_log_w, d_sigma

    return floor


def _sampler_overhead_ms(model: Any, *, draws: int, tune: int) -> dict[str, float]:
    """The NUTS sampler's own cost per leapfrog step, outside the log density and gradient.

    ``sample_posterior``'s model and NUTS step (dense mass matrix from the curvature at EM), one
    chain in this process: ``pm.sample``'s loop time (``sampling_time``) less the time spent
    inside the compiled log-density-and-gradient function, per gradient evaluation."""
    from bayes_mlr.bayes import sampling
    from bayes_mlr.bayes.model import build_model, em_initial_point

    pm_model = build_model(model)
    start = em_initial_point(model, pm_model)
    spent = {"seconds": 0.0, "calls": 0}
    original = sampling._logp_dlogp

    def counted(*args: Any, **kwargs: Any) -> Any:
        value_vars, func = original(*args, **kwargs)
        inner = func._pytensor_function

        def timed(*x: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return inner(*x)
            finally:
                spent["seconds"] += time.perf_counter() - t0
                spent["calls"] += 1

        func._pytensor_function = timed
        return value_vars, func

    sampling._logp_dlogp = counted
    try:
        idata = sampling._sample_pymc(
            pm_model,
            [start],
            draws=draws,
            tune=tune,
            chains=1,
            random_seed=2,
            progressbar=False,
            target_accept=0.8,
            kwargs={"cores": 1, "discard_tuned_samples": False},
        )
    finally:
        sampling._logp_dlogp = original
    steps = _total_steps(idata)
    loop = float(idata["sample_stats"].attrs["sampling_time"])
    # the calls outside the loop (the curvature at EM) are not in the loop's time
    in_loop = spent["seconds"] * steps / spent["calls"]
    return {
        "steps": steps,
        "loop_seconds": loop,
        "gradient_ms_in_loop": 1e3 * in_loop / steps,
        "overhead_ms": 1e3 * (loop - in_loop) / steps,
    }


#: The phases of ``sample_posterior`` timed by :func:`_phases`: (label, module, function).
_PHASES = (
    ("chain starts (EM optima search, dispersed points)", "bayes_mlr.bayes.starts", "chain_starts"),
    ("build the model", "bayes_mlr.bayes.model", "_build"),
    ("compile log density + gradient", "bayes_mlr.bayes.sampling", "_logp_dlogp"),
    ("curvature at EM (mass matrix)", "bayes_mlr.bayes.sampling", "_hessian_covariance"),
    ("pm.sample (sampling)", "pymc", "sample"),
    ("relabelling (EM alignment, Stephens)", "bayes_mlr.bayes.model", "_align_to_em"),
    ("pointwise log-likelihood", "bayes_mlr.bayes.model", "_log_likelihood_group"),
    ("modes (per-draw log density, grouping)", "bayes_mlr.bayes.model", "_add_modes"),
)


@contextlib.contextmanager
def _phases():
    """Time the phases of ``sample_posterior`` (:data:`_PHASES`): yields a dict of seconds by
    label, filled while the block runs; the functions are restored afterwards."""
    import importlib

    seconds: dict[str, float] = {label: 0.0 for label, _, _ in _PHASES}
    patched = []
    for label, module_name, name in _PHASES:
        module = importlib.import_module(module_name)
        original = getattr(module, name)

        def timed(*args: Any, _f: Any = original, _label: str = label, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return _f(*args, **kwargs)
            finally:
                seconds[_label] += time.perf_counter() - t0

        setattr(module, name, timed)
        patched.append((module, name, original))
    try:
        yield seconds
    finally:
        for module, name, original in patched:
            setattr(module, name, original)


def _run_ours(
    model: Any, *, sampler: str, starts: str, draws: int, tune: int, chains: int
) -> dict[str, Any]:
    """One timed ``sample_posterior`` on a copy of ``model`` without standard errors yet.

    The NUTS path's (:func:`bayes_mlr.bayes.model.sample_posterior`, whose ``"auto"`` is PyMC's
    NUTS); ``sampler="gibbs"`` goes through :func:`bayes_mlr.sample_posterior`, whose
    ``"auto"`` picks the Gibbs sampler at this size (``bench_gibbs`` measures that)."""
    from bayes_mlr.bayes import model as nuts_path
    from bayes_mlr.bayes import posterior

    sample_posterior = (
        posterior.sample_posterior if sampler == "gibbs" else nuts_path.sample_posterior
    )

    fresh = copy.deepcopy(model)  # standard errors not computed: sample_posterior pays for them
    # the tuning draws' statistics are kept (pymc back-end) to count every gradient evaluation
    extra = {"discard_tuned_samples": False} if sampler in ("auto", "pymc") else {}
    with _phases() as phases:
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
            **extra,
        )
        seconds = time.perf_counter() - t0
    post = idata["posterior"]
    names = [v for v in ("weights", "intercept", "coef", "sigma") if v in post]
    min_ess, max_rhat = _min_ess_bulk(idata, names)
    return {
        "used": post.attrs["sampler"],
        "seconds": seconds,
        "sampling_seconds": float(post.attrs["sampling_wall_time"]),
        "loop_seconds": float(idata["sample_stats"].attrs.get("sampling_time", float("nan"))),
        "mean_leapfrog_steps": _mean_steps(idata),
        "total_steps": _total_steps(idata),
        "min_ess_bulk": min_ess,
        "ess_per_second": min_ess / seconds,
        "max_rhat": max_rhat,
        "relabelled_fraction": float(post.attrs["relabelled_fraction"]),
        "n_modes": int(idata["modes"].attrs["n_modes"]),
        "phases": dict(phases),
    }


def _run_baseline(model: Any, *, draws: int, tune: int, chains: int, cores: int) -> dict:
    """One timed baseline ``pm.sample``."""
    t0 = time.perf_counter()
    base = _baseline(
        model, draws=draws, tune=tune, chains=chains, cores=cores, seed=1, keep_tuning=True
    )
    seconds = time.perf_counter() - t0
    min_ess, max_rhat = _min_ess_bulk(base, ["w", "beta", "sigma"])
    return {
        "cores": cores,
        "seconds": seconds,
        "loop_seconds": float(base["sample_stats"].attrs.get("sampling_time", float("nan"))),
        "mean_leapfrog_steps": _mean_steps(base),
        "total_steps": _total_steps(base),
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
    add_sampling_arguments(parser)
    parser.add_argument(
        "--samplers",
        default="auto",
        help="comma-separated sample_posterior samplers to time (default: auto)",
    )
    parser.add_argument("--no-em-starts", action="store_true", help="skip the run with starts='em'")
    parser.add_argument("--no-gradient", action="store_true", help="skip the gradient timing")
    parser.add_argument(
        "--no-breakdown",
        action="store_true",
        help="skip the sampler-overhead run of the 'where the time goes' breakdown",
    )
    args = parser.parse_args(argv)
    n, draws, tune, chains, runs = sampling_sizes(args)
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
        figures["logp_dlogp_ms_numpy_floor"] = grad["numpy_floor_ms"]
    if not args.no_breakdown:
        overhead = _sampler_overhead_ms(model, draws=min(draws, 300), tune=min(tune, 300))
        figures["sampler_overhead_ms_per_step"] = overhead["overhead_ms"]
        figures["sampler_overhead_gradient_ms_in_loop"] = overhead["gradient_ms_in_loop"]

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
            f"{figures['logp_dlogp_ms_baseline']:.3f} ms, numpy floor of the likelihood "
            f"{figures['logp_dlogp_ms_numpy_floor']:.3f} ms  [commit {commit}]"
        )
    if base_runs:
        _where_the_time_goes(samplers[0], ours_runs[samplers[0]], base_runs, figures, commit)
    return figures


def _where_the_time_goes(
    sampler: str,
    ours: list[dict[str, Any]],
    base: list[dict[str, Any]],
    figures: dict[str, Any],
    commit: str,
) -> None:
    """Print (and add to ``figures``) where the wall time of our runs goes, and the factors of
    the ESS/s ratio."""
    med = statistics.median
    cores, chains, draws = figures["cores"], figures["chains"], figures["draws"]
    kept = chains * draws
    say("")
    say(
        f"WHERE THE TIME GOES in sample_posterior[{sampler}] (median over {len(ours)} run(s), "
        f"{cores} core(s))  [commit {commit}]"
    )
    total = med(r["seconds"] for r in ours)
    phases = {label: med(r["phases"][label] for r in ours) for label, _, _ in _PHASES}
    sampling = phases["pm.sample (sampling)"]
    loop = med(r["loop_seconds"] for r in ours)
    fixed = med(r["seconds"] - r["phases"]["pm.sample (sampling)"] for r in ours)
    figures[f"ours_{sampler}_fixed_seconds"] = fixed
    figures[f"ours_{sampler}_phases"] = phases
    say(
        f"  total {total:.1f} s = fixed costs {fixed:.1f} s ({fixed / total:.0%}) + pm.sample "
        f"{sampling:.1f} s (its MCMC loop {loop:.1f} s; worker start-up and collection "
        f"{sampling - loop:.1f} s)"
    )
    for label, seconds in phases.items():
        if label != "pm.sample (sampling)":
            say(f"    {label:<50} {seconds:6.2f} s")
    other = total - sum(phases.values())
    say(f"    {'other (checks, priors, the em group, ...)':<50} {other:6.2f} s")
    say(
        f"    (the EM standard errors, {figures['standard_errors_seconds']:.2f} s alone, fall in "
        "the first phase that needs them)"
    )
    steps_o = med(r["total_steps"] for r in ours)
    steps_b = med(r["total_steps"] for r in base)
    iterations = chains * (figures["draws"] + figures["tune"])
    say(
        "  gradient evaluations (leapfrog steps, tuning included, all chains): ours "
        f"{steps_o:,.0f} ({steps_o / iterations:.2f} per iteration), baseline {steps_b:,.0f} "
        f"({steps_b / iterations:.2f})"
    )
    per_o = [1e3 * r["loop_seconds"] * cores / r["total_steps"] for r in ours]
    per_b = [1e3 * r["loop_seconds"] * cores / r["total_steps"] for r in base]
    say(
        f"  MCMC loop wall time per gradient evaluation and core: ours {med(per_o):.3f} ms, "
        f"baseline {med(per_b):.3f} ms (baseline / ours {med(per_b) / med(per_o):.2f}x; the "
        "load of the machine inflates both)"
    )
    g_o = figures.get("logp_dlogp_ms_ours")
    g_b = figures.get("logp_dlogp_ms_baseline")
    h = figures.get("sampler_overhead_ms_per_step")
    if g_o is not None:
        say(
            f"  one log density + gradient, one process: ours {g_o:.3f} ms, baseline {g_b:.3f} "
            f"ms, numpy floor of the likelihood alone {figures['logp_dlogp_ms_numpy_floor']:.3f}"
            " ms"
        )
    if h is not None:
        say(
            f"  PyMC's NUTS per leapfrog step outside the gradient (1 chain, this process): "
            f"{h:.3f} ms (the gradient inside that loop: "
            f"{figures['sampler_overhead_gradient_ms_in_loop']:.3f} ms)"
        )
        if g_o is not None:
            say(
                f"  so a leapfrog step costs ours {g_o + h:.3f} ms, the baseline {g_b + h:.3f} "
                f"ms in one process: {(g_b + h) / (g_o + h):.2f}x"
            )
    ess_o = [r["min_ess_bulk"] / kept for r in ours]
    ess_b = [r["min_ess_bulk"] / kept for r in base]
    say(
        f"  ESS per kept draw (min bulk ESS / {kept}): ours {med(ess_o):.3f}, baseline "
        f"{med(ess_b):.3f}"
    )
    say(
        "  the ratio per run = ESS per draw x fewer evaluations x cheaper evaluation x the time "
        "outside the MCMC loops (theirs / ours); without the last factor:"
    )
    for i, (o, b) in enumerate(zip(ours, base, strict=True)):
        e = o["min_ess_bulk"] / b["min_ess_bulk"]
        fewer = b["total_steps"] / o["total_steps"]
        cheaper = (b["loop_seconds"] / b["total_steps"]) / (o["loop_seconds"] / o["total_steps"])
        overheads = (b["seconds"] / b["loop_seconds"]) / (o["seconds"] / o["loop_seconds"])
        say(
            f"    run {i + 1}: {e:.2f} x {fewer:.2f} x {cheaper:.2f} x {overheads:.2f} = "
            f"{e * fewer * cheaper * overheads:.2f}; {e * fewer * cheaper:.2f}  (our loop is "
            f"{o['loop_seconds'] / o['seconds']:.0%} of our time, the baseline's "
            f"{b['loop_seconds'] / b['seconds']:.0%} of its)"
        )


if __name__ == "__main__":
    main()
