"""Benchmark: bayes_mlr.fit_em against R's flexmix (and optionally mixtools) on the same data.

A simulated mixture of K=3 linear regressions (n=100,000 rows, 4 features by default) is fitted
by ``bayes_mlr.fit_em(X, y, 3, n_init=5, tol=1e-8, random_state=0)`` and, in the same run and on
the same data, by ``flexmix::stepFlexmix(y ~ ., k=3, nrep=5, control=list(tolerance=1e-8))`` via
``Rscript`` (see ``flexmix_bench.R``; only the fit itself is timed inside R). Optionally
``mixtools::regmixEM`` with one start (``--mixtools``; slow). bayes_mlr is timed as the median
of ``--repeats`` fits after one warm-up, half of them before and half after the R run, so that a
change of load on a shared machine hits both sides; the R fits run once each.

flexmix estimates sigma with a degrees-of-freedom correction, so its optimum is not exactly the
maximum-likelihood one. For an apples-to-apples comparison the observed-data log-likelihood of
every fit is recomputed here by one independent formula, Σ_i log Σ_j π_j N(y_i | a_j + x_iᵀb_j,
σ_j²), and the table shows the package's own value next to the recomputed one.

Convergence rules differ: bayes_mlr stops when the log-likelihood gain is at most ``tol`` per
observation; flexmix when the relative change |Δℓ| / (|ℓ| + 0.1) is below ``tolerance``;
mixtools when |Δℓ| < ``epsilon`` (absolute, hence much stricter at large n).

Run alone with ``.venv/bin/python -m tests.benchmarks.bench_em [--n N] [--repeats R]
[--mixtools] [--no-r]``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import logsumexp

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

__all__ = ["main", "mixture_loglik", "simulate"]

R_SCRIPT = Path(__file__).with_name("flexmix_bench.R")
INSTALL_HINT = (
    "install with: apt-get update && apt-get install -y r-base-core r-cran-flexmix "
    "r-cran-mixtools   (Debian/Ubuntu, as root)"
)

# The simulated truth: well separated but realistic (overlapping noise, unequal weights/sigmas).
TRUE_WEIGHTS = np.array([0.5, 0.3, 0.2])
TRUE_INTERCEPT = np.array([-2.0, 0.5, 3.0])
TRUE_COEF = np.array(
    [
        [1.0, -1.0, 0.5, 0.0],
        [-1.0, 2.0, 0.0, 1.0],
        [0.5, 0.5, -2.0, -1.0],
    ]
)
TRUE_SIGMA = np.array([1.0, 0.7, 1.3])
DATA_SEED = 20_240_601

# The fit settings under test (flexmix gets the same K, number of starts and tolerance).
N_COMPONENTS = 3
N_INIT = 5
TOL = 1e-8
RANDOM_STATE = 0

# Speed targets for bayes_mlr time / flexmix time: now, and the project's later goal.
TARGET_RATIO = 0.25
LATER_TARGET_RATIO = 0.05
# "Same log-likelihood" allowance per observation (both fits stop at a tolerance of ~1e-8 per
# observation, so differences below this are convergence noise, not a worse optimum).
SAME_LOGLIK_PER_OBS = 1e-7
#: Printed by ``python -m tests.benchmarks`` (see its docstring).
TARGETS = (
    ("ratio_vs_flexmix", "<=", LATER_TARGET_RATIO, "EM time / flexmix stepFlexmix(nrep=5)"),
    (
        "loglik_diff_per_obs_vs_flexmix",
        ">=",
        -SAME_LOGLIK_PER_OBS,
        "EM - flexmix log-likelihood, per observation",
    ),
)

FitFunc = Callable[..., Any]


# ---------------------------------------------------------------------------------------------
# Data and an independent log-likelihood
# ---------------------------------------------------------------------------------------------


def simulate(n: int, seed: int = DATA_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` rows from the benchmark's mixture of regressions.

    Returns ``X`` of shape (n, 4) with standard normal entries and ``y`` of shape (n,).
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, TRUE_COEF.shape[1]))
    z = rng.choice(TRUE_WEIGHTS.shape[0], size=n, p=TRUE_WEIGHTS)
    mean = TRUE_INTERCEPT[z] + np.einsum("ij,ij->i", X, TRUE_COEF[z])
    y = mean + TRUE_SIGMA[z] * rng.standard_normal(n)
    return X, y


def _log_joint(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    intercept: np.ndarray,
    coef: np.ndarray,
    sigma: np.ndarray,
) -> np.ndarray:
    """log π_j + log N(y_i | a_j + x_iᵀ b_j, σ_j²), shape (n, K)."""
    resid = y[:, None] - (intercept[None, :] + X @ coef.T)
    with np.errstate(divide="ignore"):
        log_w = np.log(weights)
    return log_w - np.log(sigma) - 0.5 * np.log(2.0 * np.pi) - 0.5 * (resid / sigma) ** 2


def mixture_loglik(
    X: np.ndarray,
    y: np.ndarray,
    weights: Sequence[float],
    intercept: Sequence[float],
    coef: np.ndarray,
    sigma: Sequence[float],
) -> float:
    """Exact observed-data log-likelihood Σ_i log Σ_j π_j N(y_i | a_j + x_iᵀ b_j, σ_j²).

    Deliberately independent of bayes_mlr's own code, so it can check every package's fit.
    """
    lj = _log_joint(
        X,
        y,
        np.asarray(weights, float),
        np.asarray(intercept, float),
        np.asarray(coef, float),
        np.asarray(sigma, float),
    )
    return float(logsumexp(lj, axis=1).sum())


def ml_sigma(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    intercept: np.ndarray,
    coef: np.ndarray,
    sigma: np.ndarray,
) -> np.ndarray:
    """Maximum-likelihood sigmas given the other parameters: one conditional M-step for σ.

    σ_j² = Σ_i γ_ij r_ij² / Σ_i γ_ij with γ the responsibilities at the given parameters. This
    replaces a degrees-of-freedom-corrected sigma (flexmix) by the ML one; by the ECM argument
    the log-likelihood cannot decrease.
    """
    lj = _log_joint(X, y, weights, intercept, coef, sigma)
    gamma = np.exp(lj - logsumexp(lj, axis=1, keepdims=True))
    resid2 = (y[:, None] - (intercept[None, :] + X @ coef.T)) ** 2
    return np.sqrt((gamma * resid2).sum(axis=0) / gamma.sum(axis=0))


def _canonical_order(X: np.ndarray, intercept: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Component order by mean prediction over the data (bayes_mlr's documented order)."""
    return np.argsort(intercept + coef @ X.mean(axis=0), kind="stable")


def _max_param_diff(
    X: np.ndarray, a: dict[str, np.ndarray], b: dict[str, np.ndarray]
) -> float | None:
    """Largest absolute difference over weights, intercepts, coefficients and sigmas after
    putting both fits in canonical component order; None if K differs."""
    if a["weights"].shape != b["weights"].shape:
        return None
    oa = _canonical_order(X, a["intercept"], a["coef"])
    ob = _canonical_order(X, b["intercept"], b["coef"])
    return float(
        max(np.max(np.abs(a[k][oa] - b[k][ob])) for k in ("weights", "intercept", "coef", "sigma"))
    )


def _ll(value: float | None) -> str:
    """A log-likelihood for the table: fixed decimals, so small differences stay visible."""
    return "n/a" if value is None else f"{value:.4f}"


TRUTH = {
    "weights": TRUE_WEIGHTS,
    "intercept": TRUE_INTERCEPT,
    "coef": TRUE_COEF,
    "sigma": TRUE_SIGMA,
}


# ---------------------------------------------------------------------------------------------
# bayes_mlr
# ---------------------------------------------------------------------------------------------


def load_fit_em() -> tuple[FitFunc | None, str]:
    """Return ``(bayes_mlr.fit_em, "")``, or ``(None, reason)`` if it cannot be imported."""
    try:
        from bayes_mlr import fit_em
    except ImportError as exc:  # the EM module may not exist yet on a fresh branch
        return None, f"{type(exc).__name__}: {exc}"
    return fit_em, ""


# ---------------------------------------------------------------------------------------------
# R: flexmix and mixtools
# ---------------------------------------------------------------------------------------------


def r_status() -> tuple[bool, str]:
    """Whether ``Rscript`` with flexmix is usable, and a one-line description or reason."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return False, "Rscript not found on PATH"
    probe = (
        'ok <- requireNamespace("flexmix", quietly = TRUE); '
        'blas <- basename(extSoftVersion()[["BLAS"]]); '
        'cat(R.version$major, ".", R.version$minor, " ", '
        'if (ok) as.character(packageVersion("flexmix")) else "missing", " ", '
        'if (requireNamespace("mixtools", quietly = TRUE)) '
        'as.character(packageVersion("mixtools")) else "missing", " ", '
        'if (nzchar(blas)) blas else "unknown", "\\n", sep = "")'
    )
    try:
        out = subprocess.run(
            [rscript, "-e", probe], capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"Rscript failed to start: {exc}"
    parts = out.stdout.split()
    if out.returncode != 0 or len(parts) != 4:
        return False, f"Rscript probe failed: {out.stderr.strip()[:300]}"
    r_version, flexmix_version, mixtools_version, blas = parts
    if flexmix_version == "missing":
        return False, f"R {r_version} found but the flexmix package is not installed"
    return True, (
        f"R {r_version} (BLAS {blas}), flexmix {flexmix_version}, mixtools {mixtools_version}"
    )


def run_r(
    X: np.ndarray,
    y: np.ndarray,
    *,
    k: int,
    nrep: int,
    tol: float,
    seed: int,
    mixtools: bool,
    timeout: float,
) -> dict[str, dict[str, Any]]:
    """Fit flexmix (and mixtools) in one ``Rscript`` process on exactly these data.

    The data travel as raw little-endian float64 (exact, and quicker for R than CSV). Returns
    one record per method as printed by ``flexmix_bench.R``, with the parameters converted to
    ``weights``, ``intercept``, ``coef`` (k_fit, p) and ``sigma`` arrays.
    """
    n, p = X.shape
    with tempfile.TemporaryDirectory(prefix="bayes_mlr_bench_") as tmp:
        path = Path(tmp) / "data.bin"
        np.ascontiguousarray(np.column_stack([X, y]), dtype="<f8").tofile(path)
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
        ]
        if mixtools:
            cmd.append("mixtools")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"flexmix_bench.R exited with status {proc.returncode}:\n{proc.stderr[-2000:]}"
        )
    records: dict[str, dict[str, Any]] = {}
    for line in proc.stdout.splitlines():
        if not line.startswith("BENCH_JSON "):
            continue
        rec = json.loads(line[len("BENCH_JSON ") :])
        k_fit = int(rec["k_fit"])
        beta = np.asarray(rec["coef"], dtype=float).reshape(k_fit, p + 1)  # R: column-major
        rec["weights"] = np.asarray(rec["prior"], dtype=float)
        rec["intercept"] = beta[:, 0]
        rec["coef"] = beta[:, 1:]
        rec["sigma"] = np.asarray(rec["sigma"], dtype=float)
        records[rec["method"]] = rec
    if "flexmix" not in records:
        raise RuntimeError(f"no flexmix result in Rscript output:\n{proc.stdout[-2000:]}")
    return records


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print a table and return the key figures as a dict."""
    parser = base_parser(__doc__.splitlines()[0], prog="python -m tests.benchmarks.bench_em")
    add_peer_arguments(parser, default_n=100_000, quick_n=20_000)
    parser.add_argument(
        "--mixtools", action="store_true", help="also time mixtools::regmixEM with one start (slow)"
    )
    args = parser.parse_args(argv)
    n, repeats = peer_sizes(parser, args, default_n=100_000, quick_n=20_000)

    say(
        f"bench_em: n={n}, p={TRUE_COEF.shape[1]}, K={N_COMPONENTS}, n_init={N_INIT}, "
        f"tol={TOL:g}, data seed {DATA_SEED}"
    )
    say(environment_line())
    X, y = simulate(n)
    loglik_truth = mixture_loglik(X, y, **TRUTH)
    figures: dict[str, Any] = {"n": n, "repeats": repeats, "loglik_truth": loglik_truth}
    rows: list[list[Any]] = []

    # --- bayes_mlr, part 1: warm-up and the first timed fits ----------------------------------
    # The timed bayes_mlr fits are split around the R run (half before, half after) so that a
    # change of load on a shared machine during the long R fits affects both sides alike.
    fit_em, why = load_fit_em()
    fit: Callable[[], Any] | None = None
    will_run_r = not args.no_r
    before = (repeats + 1) // 2 if will_run_r else repeats
    seconds: list[float] = []
    res: Any = None
    if fit_em is None:
        say(f"bayes_mlr.fit_em is not importable ({why}); timing only the reference fits.")
    else:

        def fit() -> Any:
            return fit_em(X, y, N_COMPONENTS, n_init=N_INIT, tol=TOL, random_state=RANDOM_STATE)

        say(f"bayes_mlr.fit_em: 1 warm-up + {before} timed fit(s) ...")
        timing, res = time_call(fit, repeats=before, warmup=1)
        seconds.extend(timing.seconds)
        say(f"  {timing.describe()}")

    # --- R -----------------------------------------------------------------------------------
    records: dict[str, dict[str, Any]] = {}
    if args.no_r:
        say("R reference fits skipped (--no-r).")
    else:
        ok, info = r_status()
        figures["r_available"] = ok
        if not ok:
            say(f"R/flexmix not available ({info}); skipping the reference fits.")
            say(f"  {INSTALL_HINT}")
        else:
            what = "flexmix stepFlexmix" + (" + mixtools regmixEM" if args.mixtools else "")
            say(f"{info}: running {what} (timed inside R) ...")
            t0 = time.perf_counter()
            try:
                records = run_r(
                    X,
                    y,
                    k=N_COMPONENTS,
                    nrep=N_INIT,
                    tol=TOL,
                    seed=RANDOM_STATE,
                    mixtools=args.mixtools,
                    timeout=args.r_timeout,
                )
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                # Keep the bayes_mlr figures; report the R failure instead of crashing.
                figures["r_error"] = f"{type(exc).__name__}: {exc}"[:500]
                say(f"!! the R reference fits failed: {figures['r_error']}")
            else:
                say(
                    f"  Rscript finished in {time.perf_counter() - t0:.1f} s wall "
                    "(including R start-up and data loading)"
                )
            say(environment_line())

    # --- bayes_mlr, part 2: the remaining timed fits, then its figures ------------------------
    if fit is not None:
        after = repeats - len(seconds)
        if after > 0:
            say(f"bayes_mlr.fit_em: {after} more timed fit(s) after the R run ...")
            timing, res = time_call(fit, repeats=after, warmup=0)
            seconds.extend(timing.seconds)
            say(f"  {timing.describe()}")
        timing = Timing(tuple(seconds))
        say(f"bayes_mlr.fit_em overall: {timing.describe()}")
        bayes = res.params()
        ll_exact = mixture_loglik(X, y, **bayes)
        figures.update(
            bayes_seconds_median=timing.median,
            bayes_seconds_best=timing.best,
            bayes_n_iter=int(res.n_iter),
            bayes_converged=bool(res.converged),
            bayes_loglik=float(res.log_likelihood),
            bayes_loglik_exact=ll_exact,
            bayes_max_abs_err_vs_truth=_max_param_diff(X, bayes, TRUTH),
        )
        rows.append(
            [
                "bayes_mlr fit_em",
                f"{timing.median:.3f}",
                "",
                _ll(res.log_likelihood),
                _ll(ll_exact),
                int(res.n_iter),
                bool(res.converged),
            ]
        )
    else:
        bayes = None

    base_seconds = figures.get("bayes_seconds_median")
    for method, label in (("flexmix", "flexmix stepFlexmix"), ("mixtools", "mixtools regmixEM")):
        rec = records.get(method)
        if rec is None:
            continue
        params = {key: rec[key] for key in ("weights", "intercept", "coef", "sigma")}
        ll_exact = mixture_loglik(X, y, **params)
        ratio = base_seconds / rec["seconds"] if base_seconds is not None else None
        figures.update(
            {
                f"{method}_seconds": rec["seconds"],
                f"{method}_iter": rec["iter"],
                f"{method}_converged": rec["converged"],
                f"{method}_k_fit": rec["k_fit"],
                f"{method}_loglik_reported": rec["loglik"],
                f"{method}_loglik_exact": ll_exact,
                f"ratio_vs_{method}": ratio,
            }
        )
        if rec["k_fit"] != N_COMPONENTS:
            say(f"  note: {method} returned {rec['k_fit']} components (dropped small ones)")
        rows.append(
            [
                label,
                f"{rec['seconds']:.3f}",
                f"{ratio:.4f}" if ratio is not None else "",
                _ll(rec["loglik"]),
                _ll(ll_exact),
                rec["iter"],
                rec["converged"],
            ]
        )
        if method == "flexmix":
            sig = ml_sigma(X, y, **params)
            ll_ml = mixture_loglik(X, y, **{**params, "sigma": sig})
            figures["flexmix_loglik_ml_sigma"] = ll_ml
            rows.append(["  flexmix params, ML sigma", "", "", "", _ll(ll_ml), "", ""])
        if bayes is not None:
            diff = figures["bayes_loglik_exact"] - ll_exact
            figures[f"loglik_diff_vs_{method}"] = diff
            figures[f"max_abs_param_diff_vs_{method}"] = _max_param_diff(X, bayes, params)

    # --- report ------------------------------------------------------------------------------
    say("")
    say(
        f"Timing: bayes_mlr = median of {repeats} fits after a warm-up (split around the R run); "
        "R fits run once, timed inside R (fit only). ratio = bayes_mlr median / reference time "
        "(lower is faster)."
    )
    say(
        "loglik (own) = each package's reported value; loglik (exact) = recomputed here by one "
        "formula for all fits."
    )
    print_table(
        ["method", "seconds", "ratio", "loglik (own)", "loglik (exact)", "iter", "converged"],
        rows,
    )
    say(f"log-likelihood at the true parameters: {loglik_truth:.6f}")
    if "bayes_loglik_exact" in figures:
        gap = figures["bayes_loglik"] - figures["bayes_loglik_exact"]
        say(f"bayes_mlr reported minus recomputed log-likelihood: {gap:.3g}")
        say(f"bayes_mlr max |param - truth| = {figures['bayes_max_abs_err_vs_truth']:.4g}")
    allowance = SAME_LOGLIK_PER_OBS * n
    for method in ("flexmix", "mixtools"):
        if f"loglik_diff_vs_{method}" not in figures:
            continue
        diff = figures[f"loglik_diff_vs_{method}"]
        figures[f"loglik_diff_per_obs_vs_{method}"] = diff / n
        verdict = "better" if diff > allowance else ("same" if diff >= -allowance else "WORSE")
        figures[f"loglik_vs_{method}"] = verdict
        say(
            f"bayes_mlr - {method} exact log-likelihood: {diff:+.6g} -> {verdict} "
            f"(|diff| <= {allowance:.3g} counts as the same)"
        )
        if method == "flexmix":
            diff_ml = figures["bayes_loglik_exact"] - figures["flexmix_loglik_ml_sigma"]
            say(f"bayes_mlr - flexmix params with ML sigma: {diff_ml:+.6g}")
        pd = figures[f"max_abs_param_diff_vs_{method}"]
        if pd is not None:
            say(f"max |param difference| bayes_mlr vs {method}: {pd:.4g}")
    if "loglik_diff_vs_flexmix" in figures:
        ratio = figures["ratio_vs_flexmix"]
        say(
            f"speed ratio vs flexmix: {ratio:.4f} (target <= {TARGET_RATIO}: "
            f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}; later target <= "
            f"{LATER_TARGET_RATIO}: {'met' if ratio <= LATER_TARGET_RATIO else 'not yet'}); "
            f"flexmix / bayes_mlr = {1.0 / ratio:.1f}x"
        )
        figures["meets_target_ratio"] = bool(ratio <= TARGET_RATIO)
    return figures


if __name__ == "__main__":
    main()
