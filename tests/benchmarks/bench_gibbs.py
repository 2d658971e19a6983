"""Benchmark: ``sample_posterior(sampler="gibbs")`` against a hand-written ``pm.NormalMixture``.

Three figures (issue #13):

1. **ESS per second.** On the problem of ``bench_sampling`` (n=20,000 rows, 3 features, K=3,
   fitted by EM) both sample 4 chains of 1000 tuning (burn-in) + 1000 kept draws in the same
   run: ``sample_posterior(model, sampler="gibbs")`` with its defaults (the Metropolis move on),
   on a copy of the fitted
   model without standard errors yet (its time includes them, the starts, relabelling, modes
   and the pointwise log-likelihood), and the baseline of ``bench_sampling`` (EM initvals,
   ``adapt_diag``; ``pm.sample`` alone). The headline is like-for-like: the baseline on the
   cores the Gibbs chains use, the pair run ``--runs`` times (default 3, alternating order),
   median and lowest ratio of min bulk ESS over all scalars per second of wall time. Secondary,
   labelled: the baseline on PyMC's default cores (1 on 2 CPUs), ESS per draw and wall
   milliseconds per draw of both (where the ratio comes from), and CPU seconds (user + system
   of the process and its workers: the cost when the machine is shared).
2. **Sweep time.** One chain's sweeps at the same n, in this process (milliseconds per plain
   sweep and per row block of ``gibbs_sweep.BLOCK_ROWS`` rows), and milliseconds per iteration
   with the move (its default schedule of sweeps and move-only iterations).
3. **A million rows.** 1,000,000 rows x 10 features, K=3, written to a scratch file and read
   back only through Dask (chunk by chunk, never whole in memory), fitted by EM and sampled
   with ``sampler="gibbs"`` (4 x (200 + 1000) iterations: chains start at and around EM, so
   200 burn-in iterations are many times the chains' autocorrelation time, and 4,000 draws give
   more than the bulk ESS diagnose() asks for; ``--large-tune``, ``--large-draws`` to change;
   no pointwise log-likelihood) in a fresh child process: wall time of the fit and of the
   posterior, min bulk ESS and max R-hat, and peak RSS of the process (VmHWM) and of its chain
   workers.
   ``--quick`` uses 100,000 rows and 4 x (50 + 100); ``--no-large`` skips it.

Timings on a shared machine are noisy: compare only within one run.

Run alone with ``.venv/bin/python -m tests.benchmarks.bench_gibbs [--quick] [--n N]
[--draws D] [--tune T] [--chains C] [--runs R] [--no-baseline] [--large-n N] [--no-large]``.
"""

from __future__ import annotations

import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
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
)
from .bench_sampling import (
    DATA_SEED,
    TRUE_COEF,
    TRUE_INTERCEPT,
    TRUE_SIGMA,
    TRUE_WEIGHTS,
    _baseline,
    _min_ess_bulk,
    _pymc_default_cores,
)

__all__ = ["main", "read_rows"]

#: Printed by ``python -m tests.benchmarks`` (see its docstring).
TARGETS = (
    (
        "gibbs_ratio_ess_per_second",
        ">=",
        5.0,
        "Gibbs ESS/s / pm.NormalMixture, same cores (median of runs)",
    ),
    ("gibbs_ratio_ess_per_second_lowest", ">=", 5.0, "the same, lowest of the runs"),
    ("gibbs_max_rhat", "<=", 1.01, "Gibbs max R-hat"),
    ("sweep_ms", "<=", 2.0, "Gibbs sweep at n=20k, K=3, p=3 (ms)"),
    ("large_total_seconds", "<=", 600.0, "Gibbs 1e6 x 10: fit + posterior (s)"),
)
_REPO = Path(__file__).resolve().parents[2]


def read_rows(path: str, n_cols: int, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of a raw float64 file of ``n_cols`` columns (plain reads, no memory
    map: the process holds only the rows it asked for)."""
    count = (stop - start) * n_cols
    return np.fromfile(path, dtype=np.float64, count=count, offset=start * n_cols * 8).reshape(
        stop - start, n_cols
    )


CHILD = r"""
import json, os, resource, sys, tempfile, time, warnings
import numpy as np

def peak_kb():
    # this process's own peak RSS: VmHWM, which exec resets (ru_maxrss keeps the peak of the
    # process that started this one, here a benchmark runner that may hold gigabytes)
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

def main():
    n, p, chunk, draws, tune, chains = (int(a) for a in sys.argv[1:7])
    import dask, dask.array as da
    from bayes_mlr import MixtureOfRegressions
    from tests.benchmarks.bench_gibbs import read_rows
    base = peak_kb()
    rng = np.random.default_rng(7)
    coef = rng.normal(size=(3, p))
    intercept, sigma = np.array([-2.0, 0.5, 3.0]), np.array([1.0, 0.7, 1.3])
    with tempfile.TemporaryDirectory(prefix="bench_gibbs_") as tmp:
        path = os.path.join(tmp, "rows.f8")
        with open(path, "wb") as f:  # written chunk by chunk: never whole in memory
            for start in range(0, n, chunk):
                m = min(chunk, n - start)
                r = np.random.default_rng([11, start])
                X = r.normal(size=(m, p))
                z = r.choice(3, size=m, p=[0.5, 0.3, 0.2])
                y = intercept[z] + np.einsum("ij,ij->i", X, coef[z]) + sigma[z] * r.normal(size=m)
                f.write(np.column_stack([X, y]).tobytes())
        parts = [
            da.from_delayed(dask.delayed(read_rows)(path, p + 1, a, min(a + chunk, n)),
                            shape=(min(a + chunk, n) - a, p + 1), dtype=float)
            for a in range(0, n, chunk)
        ]
        rows = da.concatenate(parts)
        X, y = rows[:, :p], rows[:, p]
        t = time.perf_counter()
        model = MixtureOfRegressions(3, random_state=0).fit(X, y)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = model.sample_posterior(draws, tune, chains, sampler="gibbs", random_seed=1,
                                          log_likelihood=False, progressbar=False)
        post_s = time.perf_counter() - t
    import arviz_stats as azs
    ds = post["posterior"].to_dataset()[["weights", "intercept", "coef", "sigma"]]
    ess, rhat = azs.ess(ds, method="bulk"), azs.rhat(ds)
    attrs = post["posterior"].attrs
    print(json.dumps({
        "fit_seconds": fit_s, "posterior_seconds": post_s,
        "sampling_seconds": float(attrs["sampling_wall_time"]), "cores": int(attrs["cores"]),
        "min_ess_bulk": min(float(ess[v].min()) for v in ess.data_vars),
        "max_rhat": max(float(rhat[v].max()) for v in rhat.data_vars),
        "max_abs_coef_error": float(np.max(np.abs(
            np.sort(post["posterior"]["coef"].mean(("chain", "draw")).values[:, 0])
            - np.sort(coef[:, 0])))),
        "peak_kb": peak_kb(),
        "children_peak_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        "base_kb": base,
    }))

if __name__ == "__main__":
    main()
"""


def large(n: int, p: int, chunk: int, draws: int, tune: int, chains: int) -> dict[str, Any]:
    """The million-row run in a fresh child process (its own peak RSS)."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, (n, p, chunk, draws, tune, chains))],
        capture_output=True,
        text=True,
        cwd=_REPO,
        env={**os.environ, "PYTHONPATH": str(_REPO)},
    )
    if out.returncode != 0:
        raise RuntimeError(f"the million-row child failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def sweep_time(model: Any, sweeps: int) -> dict[str, float]:
    """Milliseconds per iteration of one chain started at the EM estimate (no pointwise
    log-likelihood), best of 3: plain sweeps (``metropolis=False``), and with the move after
    a burn-in of ``sweeps`` iterations (move-only iterations between sweeps, as
    ``sample_posterior`` runs it)."""
    from bayes_mlr.bayes import gibbs, gibbs_sweep

    data = gibbs._Data(model, None)
    problem = data.problem
    K, p = problem.n_components, problem.X.shape[1]
    prior = gibbs_sweep.internal_prior(data.prior, data.scaler, K, p, problem.variance)
    em = gibbs._em_values(model)
    start = gibbs._internal(em, data)
    proposal, _ = gibbs._proposal(data, prior, em, True)

    def per_iteration(tune: int, proposal: Any) -> float:
        seed = np.random.SeedSequence(0)
        job = gibbs._chain_job(
            data, prior, start, draws=sweeps, tune=tune, seed=seed, proposal=proposal
        )
        return min(gibbs_sweep.run_chain(job).seconds for _ in range(3)) / (tune + sweeps + 1)

    best = per_iteration(0, None)
    blocks = -(-data.n_rows // gibbs_sweep.BLOCK_ROWS)
    return {
        "sweep_ms": best * 1e3,
        "block_us": best * 1e6 / blocks,
        "blocks_per_sweep": blocks,
        "iteration_ms": per_iteration(sweeps, proposal) * 1e3 if proposal is not None else None,
    }


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its reaped children so far."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _run_gibbs(model: Any, *, draws: int, tune: int, chains: int) -> dict[str, Any]:
    """One timed ``sample_posterior(sampler="gibbs")`` on a copy of ``model`` without standard
    errors yet."""
    from bayes_mlr.bayes.posterior import sample_posterior

    fresh = copy.deepcopy(model)  # standard errors not computed: the call pays for them
    cpu, t0 = _cpu_seconds(), time.perf_counter()
    idata = sample_posterior(
        fresh, draws=draws, tune=tune, chains=chains, sampler="gibbs", random_seed=1,
        progressbar=False,
    )  # fmt: skip
    seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu
    min_ess, max_rhat = _min_ess_bulk(idata, ["weights", "intercept", "coef", "sigma"])
    attrs = idata["posterior"].attrs
    return {
        "seconds": seconds,
        "sampling_seconds": float(attrs["sampling_wall_time"]),
        "cpu_seconds": cpu,
        "cores": int(attrs["cores"]),
        "min_ess_bulk": min_ess,
        "ess_per_second": min_ess / seconds,
        "max_rhat": max_rhat,
        "relabelled_fraction": float(attrs["relabelled_fraction"]),
        "n_modes": int(idata["modes"].attrs["n_modes"]),
    }


def _run_base(model: Any, *, draws: int, tune: int, chains: int, cores: int) -> dict[str, Any]:
    """One timed baseline ``pm.sample`` (``bench_sampling``'s hand-written model)."""
    cpu, t0 = _cpu_seconds(), time.perf_counter()
    base = _baseline(model, draws=draws, tune=tune, chains=chains, cores=cores, seed=1)
    seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu
    min_ess, max_rhat = _min_ess_bulk(base, ["w", "beta", "sigma"])
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "cores": cores,
        "min_ess_bulk": min_ess,
        "ess_per_second": min_ess / seconds,
        "max_rhat": max_rhat,
    }


def _row(label: str, rec: dict[str, Any]) -> list[Any]:
    return [
        label,
        rec["seconds"],
        rec.get("sampling_seconds"),
        rec["cpu_seconds"],
        rec["min_ess_bulk"],
        rec["ess_per_second"],
        rec["max_rhat"],
    ]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; return its figures."""
    parser = base_parser(__doc__.splitlines()[0], prog="bench_gibbs")
    add_sampling_arguments(parser)
    parser.add_argument("--large-n", type=int, default=None, help="rows of the large run")
    parser.add_argument("--large-features", type=int, default=10)
    parser.add_argument("--large-chunk", type=int, default=100_000, help="Dask chunk rows")
    parser.add_argument(
        "--large-draws",
        type=int,
        default=None,
        help="kept draws per chain of the large run (default 1000; quick 100)",
    )
    parser.add_argument(
        "--large-tune",
        type=int,
        default=None,
        help="burn-in iterations per chain of the large run (default 200; quick 50)",
    )
    parser.add_argument("--no-large", action="store_true", help="skip the million-row run")
    args = parser.parse_args(argv)
    n, draws, tune, chains, runs = sampling_sizes(args)
    if runs < 1:
        parser.error("--runs must be at least 1")

    import logging

    from bayes_mlr import MixtureOfRegressions, simulate
    from bayes_mlr.bayes.gibbs import _default_cores

    logging.getLogger("pymc").setLevel(logging.ERROR)
    commit = commit_label()  # the code under test is what is checked out now
    say(environment_line())
    data = simulate(n, TRUE_WEIGHTS, TRUE_INTERCEPT, TRUE_COEF, TRUE_SIGMA, random_state=DATA_SEED)
    model = MixtureOfRegressions(3, random_state=0).fit(data.X, data.y)  # not timed: both need it
    cores = _default_cores(chains, draws + tune, n, 3)
    say(
        f"n={n}, p=3, K=3, {chains} chains x ({tune} tune + {draws} draws); Gibbs and the "
        f"like-for-like baseline on {cores} core(s); {runs} run(s) of each"
    )
    figures: dict[str, Any] = {
        "n": n, "draws": draws, "tune": tune, "chains": chains, "runs": runs, "cores": cores,
    }  # fmt: skip

    sweep = sweep_time(model, 200 if args.quick else 1000)
    figures.update(sweep)
    say(
        f"one sweep: {sweep['sweep_ms']:.3f} ms ({sweep['blocks_per_sweep']} blocks of "
        f"{sweep['block_us']:.0f} us); one iteration with the Metropolis move (default): "
        + (f"{sweep['iteration_ms']:.3f} ms" if sweep["iteration_ms"] else "no proposal")
    )

    rows: list[list[Any]] = []
    ours: list[dict[str, Any]] = []
    bases: list[dict[str, Any]] = []
    for i in range(runs):
        order = ["gibbs", "baseline"] if i % 2 == 0 else ["baseline", "gibbs"]
        for who in order:
            if who == "gibbs":
                rec = _run_gibbs(model, draws=draws, tune=tune, chains=chains)
                ours.append(rec)
                rows.append(_row(f"run {i + 1}: sample_posterior[gibbs]", rec))
            elif not args.no_baseline:
                rec = _run_base(model, draws=draws, tune=tune, chains=chains, cores=cores)
                bases.append(rec)
                rows.append(_row(f"run {i + 1}: baseline, cores={cores}", rec))
    for k in ("seconds", "sampling_seconds", "cpu_seconds", "min_ess_bulk", "ess_per_second"):
        figures[f"gibbs_{k}"] = statistics.median(r[k] for r in ours)
    figures["gibbs_max_rhat"] = max(r["max_rhat"] for r in ours)
    figures["gibbs_relabelled_fraction"] = max(r["relabelled_fraction"] for r in ours)
    figures["gibbs_n_modes"] = max(r["n_modes"] for r in ours)
    total = chains * draws
    figures["gibbs_ess_per_draw"] = figures["gibbs_min_ess_bulk"] / total
    figures["gibbs_ms_per_draw"] = 1e3 * figures["gibbs_seconds"] / total
    if bases:
        pairs = list(zip(ours, bases, strict=True))
        ratios = [o["ess_per_second"] / b["ess_per_second"] for o, b in pairs]
        figures["gibbs_ratio_ess_per_second"] = statistics.median(ratios)
        figures["gibbs_ratio_ess_per_second_lowest"] = min(ratios)
        figures["gibbs_ratio_ess_per_second_runs"] = ratios
        figures["gibbs_ratio_ess_per_cpu_second"] = statistics.median(
            (o["min_ess_bulk"] / o["cpu_seconds"]) / (b["min_ess_bulk"] / b["cpu_seconds"])
            for o, b in pairs
        )
        for k in ("seconds", "cpu_seconds", "min_ess_bulk", "ess_per_second"):
            figures[f"baseline_same_cores_{k}"] = statistics.median(r[k] for r in bases)
        figures["baseline_same_cores_max_rhat"] = max(r["max_rhat"] for r in bases)
        figures["baseline_ess_per_draw"] = figures["baseline_same_cores_min_ess_bulk"] / total
        figures["baseline_ms_per_draw"] = 1e3 * figures["baseline_same_cores_seconds"] / total
    default_cores = _pymc_default_cores(chains)
    if not (args.no_baseline or args.no_pymc_default) and default_cores != cores:
        rec = _run_base(model, draws=draws, tune=tune, chains=chains, cores=default_cores)
        rows.append(_row(f"secondary: baseline, PyMC default cores={default_cores}", rec))
        figures.update({f"baseline_pymc_default_{k}": v for k, v in rec.items()})
        figures["gibbs_ratio_ess_per_second_vs_pymc_default_cores"] = (
            figures["gibbs_ess_per_second"] / rec["ess_per_second"]
        )

    say("")
    say(
        "seconds: wall time of the call (Gibbs: standard errors, starts, sampling, relabelling, "
        "modes, log-likelihood; baseline: pm.sample with compilation); cpu: user + system "
        "seconds of the process and its workers. ESS/s = min bulk ESS over all scalars / seconds."
    )
    print_table(
        ["run", "seconds", "of which sampling", "cpu s", "min ESS bulk", "ESS/s", "max R-hat"],
        rows,
    )
    say(f"[commit {commit}]")
    if "gibbs_ratio_ess_per_second" in figures:
        say(
            f"ratio ESS/s Gibbs / baseline, same cores ({cores}): median "
            f"{figures['gibbs_ratio_ess_per_second']:.2f}, lowest "
            f"{figures['gibbs_ratio_ess_per_second_lowest']:.2f} (target >= 5, aim 10); per CPU "
            f"second {figures['gibbs_ratio_ess_per_cpu_second']:.2f}"
        )
        say(
            f"where it comes from: min bulk ESS per draw {figures['gibbs_ess_per_draw']:.3f} "
            f"(Gibbs) against {figures['baseline_ess_per_draw']:.3f} (baseline); wall ms per draw "
            f"{figures['gibbs_ms_per_draw']:.2f} against {figures['baseline_ms_per_draw']:.2f}"
        )
    if "gibbs_ratio_ess_per_second_vs_pymc_default_cores" in figures:
        say(
            "secondary: ratio against the baseline on PyMC's default cores "
            f"({default_cores}): {figures['gibbs_ratio_ess_per_second_vs_pymc_default_cores']:.2f}"
        )
    if not args.no_large:
        big_n = args.large_n or (100_000 if args.quick else 1_000_000)
        big_draws = args.large_draws or (100 if args.quick else 1000)
        big_tune = args.large_tune if args.large_tune is not None else (50 if args.quick else 200)
        p = args.large_features
        say(
            f"large: {big_n:,} rows x {p} features, K=3, read through Dask in chunks of "
            f"{args.large_chunk:,} rows; EM fit, then Gibbs {chains} x ({big_tune} + {big_draws})"
        )
        got = large(big_n, p, args.large_chunk, big_draws, big_tune, chains)
        peak = max(got["peak_kb"], got["children_peak_kb"]) / 1024**2
        total_s = got["fit_seconds"] + got["posterior_seconds"]
        say(
            f"  fit {got['fit_seconds']:.1f} s, posterior {got['posterior_seconds']:.1f} s "
            f"(sampling {got['sampling_seconds']:.1f} s on {got['cores']} cores), total "
            f"{total_s:.1f} s; min ESS {got['min_ess_bulk']:.0f}, max R-hat "
            f"{got['max_rhat']:.3f}; peak RSS {got['peak_kb'] / 1024**2:.2f} GB (process), "
            f"{got['children_peak_kb'] / 1024**2:.2f} GB (largest chain worker), after imports "
            f"{got['base_kb'] / 1024**2:.2f} GB  [commit {commit}]"
        )
        figures.update(
            {
                "large_rows": big_n,
                "large_features": p,
                "large_draws": big_draws,
                "large_tune": big_tune,
                "large_fit_seconds": got["fit_seconds"],
                "large_posterior_seconds": got["posterior_seconds"],
                "large_sampling_seconds": got["sampling_seconds"],
                "large_ms_per_chain_iteration": 1e3
                * got["sampling_seconds"]
                * got["cores"]
                / (chains * (big_draws + big_tune + 1)),
                "large_total_seconds": total_s,
                "large_min_ess_bulk": got["min_ess_bulk"],
                "large_max_rhat": got["max_rhat"],
                "large_peak_rss_gb": peak,
                "large_max_abs_coef_error": got["max_abs_coef_error"],
            }
        )
    figures["commit"] = commit
    return figures


if __name__ == "__main__":
    main()
