"""Benchmark: a Poisson mixture regression with an exposure offset, bayes_mlr against R's
flexmix on the same data.

A mixture of K=3 Poisson regressions with a log link (n=100,000 rows, 3 features and an
exposure ``h`` ~ U(0.5, 2) entering as the offset ``log(h)``) is simulated here and fitted by
``bayes_mlr.fit_structured(X, y, 3, family="poisson", offset=np.log(h), n_init=5, tol=1e-8,
random_state=0)`` (what ``MixtureOfRegressions(3, family="poisson", n_init=5,
random_state=0).fit(X, y, offset=np.log(h))`` runs): 5 random starts, each run to
convergence with one IRLS (Newton) step per EM iteration, the best kept. In the same run and
on the same data, by ``flexmix::stepFlexmix(y ~ x1 + x2 + x3, k=3, nrep=5,
model=FLXMRglm(family="poisson", offset=log(h)), control=list(tolerance=1e-8))`` via
``Rscript`` (see ``flexmix_families_bench.R``; only the fit itself is timed inside R): 5 starts
from random hard assignments, each run to convergence with a full ``glm.fit`` (IRLS to its own
convergence, warm-started) per component per EM iteration, the best kept. Both sides get the
same K, number of starts and tolerance and flexmix's other defaults (``iter.max=200``,
``minprior=0.05``) are left as they are.

Both are timed ``--repeats`` times (default 3) and the medians compared: bayes_mlr after one
untimed warm-up, half of its fits before and half after the R run, so that a change of load on
a shared machine hits both sides; R in one ``Rscript`` process, each repeat after the same
``set.seed`` (the same computation every time).

Convergence rules differ: bayes_mlr stops when the log-likelihood gain is at most ``tol`` per
observation; flexmix when the relative change |Δℓ| / (|ℓ| + 0.1) is below ``tolerance``. The
observed-data log-likelihood of both fits is recomputed here by one independent formula,
Σ_i log Σ_j π_j Poisson(y_i | h_i exp(a_j + x_iᵀb_j)), next to each package's own value.

Run alone with ``.venv/bin/python -m tests.benchmarks.bench_families [--n N] [--repeats R]
[--no-r]``.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import gammaln, logsumexp

from ._common import (
    Timing,
    add_peer_arguments,
    base_parser,
    environment_line,
    peer_sizes,
    print_table,
    say,
    time_call,
)
from .bench_em import INSTALL_HINT, r_status

__all__ = ["main", "poisson_mixture_loglik", "simulate_poisson"]

R_SCRIPT = Path(__file__).with_name("flexmix_families_bench.R")

# The simulated truth: rates from about 0.2 to 15 events per unit exposure, overlapping.
TRUE_WEIGHTS = np.array([0.5, 0.3, 0.2])
TRUE_INTERCEPT = np.array([-0.5, 0.7, 1.6])
TRUE_COEF = np.array(
    [
        [0.6, -0.4, 0.2],
        [-0.5, 0.3, 0.4],
        [0.2, 0.5, -0.6],
    ]
)
EXPOSURE_RANGE = (0.5, 2.0)  # h ~ U(0.5, 2); the offset is log(h)
DATA_SEED = 20_240_603

# The fit settings under test (flexmix gets the same K, number of starts and tolerance).
N_COMPONENTS = 3
N_INIT = 5
TOL = 1e-8
RANDOM_STATE = 0

# Speed target for bayes_mlr time / flexmix time (issue #12).
TARGET_RATIO = 0.1
# "Same log-likelihood" allowance per observation (both fits stop at a tolerance of ~1e-8 per
# observation, so differences below this are convergence noise, not a worse optimum).
SAME_LOGLIK_PER_OBS = 1e-7
#: Printed by ``python -m tests.benchmarks`` (see its docstring).
TARGETS = (
    (
        "ratio_vs_flexmix",
        "<=",
        TARGET_RATIO,
        "Poisson mixture, offset, n=100k: time / flexmix(nrep=5)",
    ),
    (
        "loglik_diff_per_obs_vs_flexmix",
        ">=",
        -SAME_LOGLIK_PER_OBS,
        "Poisson mixture: bayes_mlr - flexmix loglik, per obs",
    ),
)

PARAM_KEYS = ("weights", "intercept", "coef")
TRUTH = {"weights": TRUE_WEIGHTS, "intercept": TRUE_INTERCEPT, "coef": TRUE_COEF}


# ---------------------------------------------------------------------------------------------
# Data and an independent log-likelihood
# ---------------------------------------------------------------------------------------------


def simulate_poisson(n: int, seed: int = DATA_SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``n`` rows from the benchmark's Poisson mixture.

    Returns ``X`` of shape (n, 3) with standard normal entries, the counts ``y`` (n,) as floats
    and the exposures ``h`` (n,).
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, TRUE_COEF.shape[1]))
    h = rng.uniform(*EXPOSURE_RANGE, size=n)
    z = rng.choice(TRUE_WEIGHTS.shape[0], size=n, p=TRUE_WEIGHTS)
    eta = np.log(h) + TRUE_INTERCEPT[z] + np.einsum("ij,ij->i", X, TRUE_COEF[z])
    y = rng.poisson(np.exp(eta)).astype(float)
    return X, y, h


def poisson_mixture_loglik(
    X: np.ndarray,
    y: np.ndarray,
    log_exposure: np.ndarray,
    weights: Sequence[float],
    intercept: Sequence[float],
    coef: np.ndarray,
) -> float:
    """Exact observed-data log-likelihood Σ_i log Σ_j π_j Poisson(y_i | exp(η_ij)) with
    η_ij = log h_i + a_j + x_iᵀ b_j.

    Deliberately independent of bayes_mlr's own code, so it can check every package's fit.
    """
    eta = (
        log_exposure[:, None]
        + np.asarray(intercept, float)[None, :]
        + X @ np.asarray(coef, float).T
    )
    with np.errstate(divide="ignore"):
        log_w = np.log(np.asarray(weights, float))
    lj = log_w + y[:, None] * eta - np.exp(eta) - gammaln(y + 1.0)[:, None]
    return float(logsumexp(lj, axis=1).sum())


def _matched_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float | None:
    """Largest absolute difference over weights, intercepts and coefficients after matching
    the component labels (the permutation of ``b`` closest to ``a``); None if K differs."""
    K = np.shape(a["weights"])[0]
    if np.shape(b["weights"])[0] != K:
        return None

    def gap(perm: tuple[int, ...]) -> float:
        idx = list(perm)
        return max(
            float(np.max(np.abs(np.asarray(a[k], float) - np.asarray(b[k], float)[idx])))
            for k in PARAM_KEYS
        )

    return min(gap(perm) for perm in itertools.permutations(range(K)))


def _ll(value: float | None) -> str:
    """A log-likelihood for the table: fixed decimals, so small differences stay visible."""
    return "n/a" if value is None else f"{value:.4f}"


def _gap(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


# ---------------------------------------------------------------------------------------------
# R: flexmix
# ---------------------------------------------------------------------------------------------


def run_r(
    X: np.ndarray,
    y: np.ndarray,
    h: np.ndarray,
    *,
    k: int,
    nrep: int,
    tol: float,
    seed: int,
    repeats: int,
    timeout: float,
) -> dict[str, Any]:
    """Fit flexmix ``repeats`` times in one ``Rscript`` process on exactly these data.

    The data travel as raw little-endian float64 (exact, and quicker for R than CSV). Returns
    the record printed by ``flexmix_families_bench.R`` with the parameters converted to
    ``weights``, ``intercept`` and ``coef`` (k_fit, p) arrays.
    """
    n, p = X.shape
    with tempfile.TemporaryDirectory(prefix="bayes_mlr_bench_") as tmp:
        path = Path(tmp) / "data.bin"
        np.ascontiguousarray(np.column_stack([X, y, h]), dtype="<f8").tofile(path)
        cmd = [
            "Rscript",
            "--vanilla",
            str(R_SCRIPT),
            str(path),
            str(n),
            str(p),
            str(k),
            str(nrep),
            repr(tol),
            str(seed),
            str(repeats),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"flexmix_families_bench.R exited with status {proc.returncode}:\n{proc.stderr[-2000:]}"
        )
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            rec = json.loads(line[len("BENCH_JSON ") :])
            break
    else:
        raise RuntimeError(f"no flexmix result in Rscript output:\n{proc.stdout[-2000:]}")
    k_fit = int(rec["k_fit"])
    beta = np.asarray(rec["coef"], dtype=float).reshape(k_fit, p + 1)  # R: column-major
    rec["weights"] = np.asarray(rec["prior"], dtype=float)
    rec["intercept"] = beta[:, 0]
    rec["coef"] = beta[:, 1:]
    rec["seconds_all"] = [float(s) for s in rec["seconds_all"]]
    return rec


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print a table and return the key figures as a dict."""
    parser = base_parser(__doc__.splitlines()[0], prog="python -m tests.benchmarks.bench_families")
    add_peer_arguments(parser, default_n=100_000, quick_n=20_000)
    args = parser.parse_args(argv)
    n, repeats = peer_sizes(parser, args, default_n=100_000, quick_n=20_000)

    X, y, h = simulate_poisson(n)
    log_h = np.log(h)
    say(
        f"bench_families: Poisson, log link, offset log(h), n={n}, p={X.shape[1]}, "
        f"K={N_COMPONENTS}, n_init={N_INIT}, tol={TOL:g}, data seed {DATA_SEED}"
    )
    say(
        f"  bayes_mlr: fit_structured(X, y, {N_COMPONENTS}, family='poisson', offset=log(h), "
        f"n_init={N_INIT}, tol={TOL:g}, random_state={RANDOM_STATE}): {N_INIT} random starts "
        "to convergence, one IRLS step per EM iteration"
    )
    say(
        f"  flexmix:   stepFlexmix(y ~ x1 + x2 + x3, k={N_COMPONENTS}, nrep={N_INIT}, "
        "model=FLXMRglm(family='poisson', offset=log(h)), "
        f"control=list(tolerance={TOL:g})): {N_INIT} random hard-assignment starts to "
        "convergence, glm.fit per component per EM iteration"
    )
    say(environment_line())
    loglik_truth = poisson_mixture_loglik(X, y, log_h, **TRUTH)
    figures: dict[str, Any] = {
        "n": n,
        "repeats": repeats,
        "mean_count": float(y.mean()),
        "loglik_truth": loglik_truth,
    }
    rows: list[list[Any]] = []

    # --- bayes_mlr, part 1: warm-up and the first timed fits ----------------------------------
    from bayes_mlr import fit_structured

    def fit() -> Any:
        return fit_structured(
            X,
            y,
            N_COMPONENTS,
            family="poisson",
            offset=log_h,
            n_init=N_INIT,
            tol=TOL,
            random_state=RANDOM_STATE,
        )

    will_run_r = not args.no_r
    before = (repeats + 1) // 2 if will_run_r else repeats
    seconds: list[float] = []
    say(f"bayes_mlr.fit_structured: 1 warm-up + {before} timed fit(s) ...")
    timing, res = time_call(fit, repeats=before, warmup=1)
    seconds.extend(timing.seconds)
    say(f"  {timing.describe()}")

    # --- R -----------------------------------------------------------------------------------
    rec: dict[str, Any] | None = None
    if args.no_r:
        say("R reference fit skipped (--no-r).")
    else:
        ok, info = r_status()
        figures["r_available"] = ok
        if not ok:
            say(f"R/flexmix not available ({info}); skipping the reference fit.")
            say(f"  {INSTALL_HINT}")
        else:
            say(f"{info}: running flexmix stepFlexmix {repeats} time(s) (timed inside R) ...")
            t0 = time.perf_counter()
            try:
                rec = run_r(
                    X,
                    y,
                    h,
                    k=N_COMPONENTS,
                    nrep=N_INIT,
                    tol=TOL,
                    seed=RANDOM_STATE,
                    repeats=repeats,
                    timeout=args.r_timeout,
                )
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                # Keep the bayes_mlr figures; report the R failure instead of crashing.
                figures["r_error"] = f"{type(exc).__name__}: {exc}"[:500]
                say(f"!! the R reference fit failed: {figures['r_error']}")
            else:
                say(
                    f"  Rscript finished in {time.perf_counter() - t0:.1f} s wall "
                    "(including R start-up and data loading)"
                )
                say(f"  flexmix: {Timing(tuple(rec['seconds_all'])).describe()}")
            say(environment_line())

    # --- bayes_mlr, part 2: the remaining timed fits, then its figures ------------------------
    after = repeats - len(seconds)
    if after > 0:
        say(f"bayes_mlr.fit_structured: {after} more timed fit(s) after the R run ...")
        timing, res = time_call(fit, repeats=after, warmup=0)
        seconds.extend(timing.seconds)
        say(f"  {timing.describe()}")
    timing = Timing(tuple(seconds))
    say(f"bayes_mlr.fit_structured overall: {timing.describe()}")
    bayes = {key: np.asarray(getattr(res, key), float) for key in PARAM_KEYS}
    ll_exact = poisson_mixture_loglik(X, y, log_h, **bayes)
    best_runs = res.optima[0].n_runs if res.optima else None
    figures.update(
        bayes_seconds_median=timing.median,
        bayes_seconds_best=timing.best,
        bayes_n_iter=int(res.n_iter),
        bayes_n_runs=int(res.n_runs),
        bayes_runs_at_best=best_runs,
        bayes_converged=bool(res.converged),
        bayes_loglik=float(res.log_likelihood),
        bayes_loglik_exact=ll_exact,
        bayes_max_abs_err_vs_truth=_matched_diff(TRUTH, bayes),
    )
    rows.append(
        [
            "bayes_mlr fit_structured",
            f"{timing.median:.3f}",
            "",
            _ll(res.log_likelihood),
            _ll(ll_exact),
            "",
            _gap(figures["bayes_max_abs_err_vs_truth"]),
            int(res.n_iter),
            bool(res.converged),
        ]
    )

    if rec is not None:
        params = {key: rec[key] for key in PARAM_KEYS}
        k_fit = int(rec["k_fit"])
        ratio = timing.median / rec["seconds"]
        if k_fit != N_COMPONENTS:
            # A fit with fewer components is still a valid model; its exact log-likelihood
            # is comparable, its parameters are not.
            say(f"  note: flexmix returned {k_fit} components (dropped small ones)")
        ll_fm = poisson_mixture_loglik(X, y, log_h, **params)
        figures.update(
            flexmix_seconds_median=rec["seconds"],
            flexmix_seconds_best=min(rec["seconds_all"]),
            flexmix_iter=rec["iter"],
            flexmix_converged=rec["converged"],
            flexmix_k_fit=k_fit,
            flexmix_loglik_reported=rec["loglik"],
            flexmix_loglik_exact=ll_fm,
            flexmix_max_abs_err_vs_truth=_matched_diff(TRUTH, params),
            ratio_vs_flexmix=ratio,
            loglik_diff_vs_flexmix=ll_exact - ll_fm,
            loglik_diff_per_obs_vs_flexmix=(ll_exact - ll_fm) / n,
            max_abs_param_diff_vs_flexmix=_matched_diff(bayes, params),
        )
        rows.append(
            [
                "flexmix stepFlexmix",
                f"{rec['seconds']:.3f}",
                f"{ratio:.4f}",
                _ll(rec["loglik"]),
                _ll(ll_fm),
                _gap(figures["max_abs_param_diff_vs_flexmix"]),
                _gap(figures["flexmix_max_abs_err_vs_truth"]),
                rec["iter"],
                rec["converged"],
            ]
        )

    # --- report ------------------------------------------------------------------------------
    say("")
    say(
        f"Timing: medians of {repeats} fits on each side, each fit with {N_INIT} starts; "
        "bayes_mlr after a warm-up (split around the R run), flexmix timed inside R (fit "
        "only). ratio = bayes_mlr median / flexmix median (lower is faster)."
    )
    say(
        "loglik (own) = each package's reported value; loglik (exact) = recomputed here by one "
        "formula for both fits. max|d| = largest difference in weights, intercepts and "
        "coefficients after matching labels. iter = EM iterations of the best start."
    )
    print_table(
        [
            "method",
            "seconds",
            "ratio",
            "loglik (own)",
            "loglik (exact)",
            "max|d| vs bayes_mlr",
            "max|d| vs truth",
            "iter",
            "converged",
        ],
        rows,
    )
    say(f"log-likelihood at the true parameters: {loglik_truth:.6f}")
    gap = figures["bayes_loglik"] - figures["bayes_loglik_exact"]
    say(f"bayes_mlr reported minus recomputed log-likelihood: {gap:.3g}")
    say(f"bayes_mlr: {best_runs} of {res.n_runs} runs ended at the returned optimum")
    if "loglik_diff_vs_flexmix" in figures:
        diff = figures["loglik_diff_vs_flexmix"]
        allowance = SAME_LOGLIK_PER_OBS * n
        verdict = "better" if diff > allowance else ("same" if diff >= -allowance else "WORSE")
        figures["loglik_vs_flexmix"] = verdict
        say(
            f"bayes_mlr - flexmix exact log-likelihood: {diff:+.6g} ({diff / n:+.3g} per row) "
            f"-> {verdict} (|diff| <= {allowance:.3g} counts as the same)"
        )
        pd = figures["max_abs_param_diff_vs_flexmix"]
        if pd is not None:
            say(f"max |param difference| bayes_mlr vs flexmix: {pd:.4g}")
        ratio = figures["ratio_vs_flexmix"]
        say(
            f"speed ratio vs flexmix: {ratio:.4f} (target <= {TARGET_RATIO}: "
            f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}); "
            f"flexmix / bayes_mlr = {1.0 / ratio:.1f}x"
        )
        figures["meets_target_ratio"] = bool(ratio <= TARGET_RATIO)
    return figures


if __name__ == "__main__":
    main()
