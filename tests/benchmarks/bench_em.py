"""Benchmark: bayes_mlr.fit_em against R's flexmix (and optionally mixtools) on the same data.

A simulated mixture of K=3 linear regressions (n=100,000 rows, 4 features by default) is fitted
in the same run and on the same data by

* flexmix, the reference: ``stepFlexmix(y ~ ., k=3, nrep=5, control=list(tolerance=1e-8))``
  via ``Rscript`` (``flexmix_bench.R``): 5 starts, each a random hard assignment of the rows
  run to convergence on all rows, the best kept;
* bayes_mlr like-for-like: ``fit_em(X, y, 3, init="random", n_init=5, tol=1e-8,
  random_state=0)``: 5 random starts, each run to convergence on all rows, the best kept;
* bayes_mlr's default start strategy: ``fit_em(X, y, 3, n_init=5, tol=1e-8, random_state=0)``
  (``init="auto"``; fit_em's own default is ``n_init=10``). On more than 40,000 rows the 5
  starts only scout (20 EM iterations on a random subsample of 20,000 rows) and a start
  continues to convergence on all rows when it ranks among the best 2 scouts so far (at least
  2, at most 5 of them; the output says how many did). Cheaper than flexmix's 5 full starts by
  design, so this is not a like-for-like comparison.

Every configuration is timed ``--repeats`` times (default 3) and the medians compared:
bayes_mlr after one untimed warm-up, half of its fits before and half after the R run, so that
a change of load on a shared machine hits both sides; R in one ``Rscript`` process, only the
fits timed, each repeat after the same ``set.seed`` (the same computation every time).
Optionally ``mixtools::regmixEM`` with one start (``--mixtools``; slow). After the timings, one
untimed fit of each configuration with a progress callback prints the EM updates of every run
(each an E-step on all rows; SQUAREM adds about one more per three), which is where the time
goes: in the like-for-like fit most random starts climb a long plateau to a lower optimum.

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
    commit_label,
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
#: The bayes_mlr configurations: figure-key prefix, table label, fit_em keyword arguments.
CONFIGS = (
    (
        "like_for_like",
        f"fit_em init='random', {N_INIT} full starts",
        {"init": "random", "n_init": N_INIT},
    ),
    ("default", f"fit_em default path, n_init={N_INIT}", {"n_init": N_INIT}),
)
#: Printed by ``python -m tests.benchmarks`` (see its docstring).
TARGETS = (
    (
        "ratio_like_for_like_vs_flexmix",
        "<=",
        LATER_TARGET_RATIO,
        "EM 5 full starts / flexmix stepFlexmix(nrep=5)",
    ),
    (
        "ratio_default_vs_flexmix",
        "<=",
        LATER_TARGET_RATIO,
        "EM default path (scouting) / flexmix(nrep=5)",
    ),
    (
        "loglik_diff_per_obs_like_for_like_vs_flexmix",
        ">=",
        -SAME_LOGLIK_PER_OBS,
        "EM 5 full starts - flexmix loglik, per obs",
    ),
    (
        "loglik_diff_per_obs_default_vs_flexmix",
        ">=",
        -SAME_LOGLIK_PER_OBS,
        "EM default path - flexmix loglik, per obs",
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
    repeats: int,
    mixtools: bool,
    timeout: float,
) -> dict[str, dict[str, Any]]:
    """Fit flexmix (and mixtools) ``repeats`` times each in one ``Rscript`` process on exactly
    these data.

    The data travel as raw little-endian float64 (exact, and quicker for R than CSV). Returns
    one record per method as printed by ``flexmix_bench.R`` (``seconds`` the median of the
    repeats, ``seconds_all`` each), with the parameters converted to ``weights``,
    ``intercept``, ``coef`` (k_fit, p) and ``sigma`` arrays.
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
            str(repeats),
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
        rec["seconds_all"] = [float(v) for v in rec["seconds_all"]]
        records[rec["method"]] = rec
    if "flexmix" not in records:
        raise RuntimeError(f"no flexmix result in Rscript output:\n{proc.stdout[-2000:]}")
    return records


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------


def default_path_description(n: int, n_init: int = N_INIT) -> str:
    """What ``fit_em``'s default start strategy does on ``n`` rows, from the constants in
    :mod:`bayes_mlr.core.em` (so the printed description follows the code)."""
    from bayes_mlr.core.em import SHORT_RUN_ITER, SHORT_RUN_KEEP, SHORT_RUN_ROWS

    if n <= 2 * SHORT_RUN_ROWS:
        return (
            f"init='auto' on n={n} <= {2 * SHORT_RUN_ROWS} rows: every one of the {n_init} "
            "starts (minimal-subset and random in turn) runs to convergence on all rows"
        )
    return (
        f"init='auto': the {n_init} starts (minimal-subset and random in turn) scout "
        f"{SHORT_RUN_ITER} EM iterations on a random subsample of {SHORT_RUN_ROWS} of the {n} "
        f"rows; a start continues to convergence on all rows when it ranks among the best "
        f"{SHORT_RUN_KEEP} scouts so far (at least {min(SHORT_RUN_KEEP, n_init)}, at most "
        f"{n_init} continue)"
    )


def count_updates(fit: Callable[..., Any]) -> dict[str, list[int]]:
    """One untimed fit with a progress callback: the EM updates of each run, by stage
    (``"run"``: on all rows; ``"scout"``: the default path's subsample), in the order the runs
    ended. Each update is one E-step on the rows of its stage; SQUAREM's extrapolations add
    about one more per three (bayes_mlr.core.em._run_em)."""
    counts: dict[str, list[int]] = {}

    def callback(progress: Any) -> None:
        if progress.done:
            counts.setdefault(progress.stage, []).append(int(progress.n_iter))

    fit(callback=callback)
    return counts


def _time_split(
    fit: Callable[[], Any], count: int, *, warmup: int, label: str
) -> tuple[list[float], Any]:
    """``count`` timed calls of ``fit`` after ``warmup`` untimed ones (none when count is 0)."""
    if count <= 0:
        return [], None
    say(f"{label}: {warmup} warm-up + {count} timed fit(s) ...")
    timing, res = time_call(fit, repeats=count, warmup=warmup)
    say(f"  {timing.describe()}")
    return list(timing.seconds), res


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print a table and return the key figures as a dict."""
    parser = base_parser(__doc__.splitlines()[0], prog="python -m tests.benchmarks.bench_em")
    add_peer_arguments(parser, default_n=100_000, quick_n=20_000)
    parser.add_argument(
        "--mixtools", action="store_true", help="also time mixtools::regmixEM with one start (slow)"
    )
    args = parser.parse_args(argv)
    n, repeats = peer_sizes(parser, args, default_n=100_000, quick_n=20_000)
    commit = commit_label()  # the code under test is what is checked out now

    say(
        f"bench_em: n={n}, p={TRUE_COEF.shape[1]}, K={N_COMPONENTS}, {N_INIT} starts, "
        f"tol={TOL:g}, data seed {DATA_SEED}"
    )
    say(
        f"  flexmix (reference): stepFlexmix(y ~ ., k={N_COMPONENTS}, nrep={N_INIT}, "
        f"control=list(tolerance={TOL:g})): {N_INIT} random hard-assignment starts, each to "
        "convergence on all rows"
    )
    say(
        f"  like-for-like: fit_em(X, y, {N_COMPONENTS}, init='random', n_init={N_INIT}, "
        f"tol={TOL:g}, random_state={RANDOM_STATE}): {N_INIT} random starts, each to "
        "convergence on all rows"
    )
    say(
        f"  default path:  fit_em(X, y, {N_COMPONENTS}, n_init={N_INIT}, tol={TOL:g}, "
        f"random_state={RANDOM_STATE}) (fit_em's own default is n_init=10):"
    )
    say(f"    {default_path_description(n)}")
    say(environment_line())
    X, y = simulate(n)
    loglik_truth = mixture_loglik(X, y, **TRUTH)
    figures: dict[str, Any] = {"n": n, "repeats": repeats, "loglik_truth": loglik_truth}
    rows: list[list[Any]] = []

    # --- bayes_mlr, part 1: warm-up and the first timed fits ----------------------------------
    # The timed bayes_mlr fits are split around the R run (half before, half after) so that a
    # change of load on a shared machine during the long R fits affects both sides alike.
    fit_em, why = load_fit_em()
    fits: dict[str, Callable[[], Any]] = {}
    seconds: dict[str, list[float]] = {}
    results: dict[str, Any] = {}
    before = (repeats + 1) // 2 if not args.no_r else repeats
    if fit_em is None:
        say(f"bayes_mlr.fit_em is not importable ({why}); timing only the reference fits.")
    else:
        for key, label, kwargs in CONFIGS:

            def fit(kwargs: dict[str, Any] = kwargs, **more: Any) -> Any:
                return fit_em(
                    X, y, N_COMPONENTS, tol=TOL, random_state=RANDOM_STATE, **kwargs, **more
                )

            fits[key] = fit
            seconds[key], results[key] = _time_split(fit, before, warmup=1, label=label)

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
            say(f"{info}: running {what} {repeats} time(s) each (timed inside R) ...")
            t0 = time.perf_counter()
            try:
                records = run_r(
                    X,
                    y,
                    k=N_COMPONENTS,
                    nrep=N_INIT,
                    tol=TOL,
                    seed=RANDOM_STATE,
                    repeats=repeats,
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
                for method, rec in records.items():
                    say(f"  {method}: {Timing(tuple(rec['seconds_all'])).describe()}")
            say(environment_line())

    # --- bayes_mlr, part 2: the remaining timed fits, then its figures ------------------------
    fitted: dict[str, dict[str, np.ndarray]] = {}
    for key, label, _ in CONFIGS:
        if key not in fits:
            continue
        more, res = _time_split(fits[key], repeats - before, warmup=0, label=label + " (after R)")
        seconds[key] += more
        res = res if res is not None else results[key]
        timing = Timing(tuple(seconds[key]))
        say(f"{label} overall: {timing.describe()}")
        params = res.params()
        fitted[key] = params
        updates = count_updates(fits[key])
        figures[f"{key}_updates_per_run"] = updates.get("run", [])
        figures[f"{key}_updates_per_scout"] = updates.get("scout", [])
        ll_exact = mixture_loglik(X, y, **params)
        figures.update(
            {
                f"{key}_seconds_median": timing.median,
                f"{key}_seconds_best": timing.best,
                f"{key}_n_iter": int(res.n_iter),
                f"{key}_n_runs_on_all_rows": int(res.n_runs),
                f"{key}_converged": bool(res.converged),
                f"{key}_loglik": float(res.log_likelihood),
                f"{key}_loglik_exact": ll_exact,
                f"{key}_max_abs_err_vs_truth": _max_param_diff(X, params, TRUTH),
            }
        )

    for method, label in (("flexmix", "flexmix stepFlexmix"), ("mixtools", "mixtools regmixEM")):
        rec = records.get(method)
        if rec is None:
            continue
        params = {key: rec[key] for key in ("weights", "intercept", "coef", "sigma")}
        ll_exact = mixture_loglik(X, y, **params)
        figures.update(
            {
                f"{method}_seconds_median": rec["seconds"],
                f"{method}_seconds_best": min(rec["seconds_all"]),
                f"{method}_iter": rec["iter"],
                f"{method}_converged": rec["converged"],
                f"{method}_k_fit": rec["k_fit"],
                f"{method}_loglik_reported": rec["loglik"],
                f"{method}_loglik_exact": ll_exact,
            }
        )
        if rec["k_fit"] != N_COMPONENTS:
            say(f"  note: {method} returned {rec['k_fit']} components (dropped small ones)")
        starts = f"{N_INIT} of {N_INIT}" if method == "flexmix" else "1 of 1"
        rows.append(
            [
                label,
                f"{rec['seconds']:.3f}",
                "1 (reference)" if method == "flexmix" else "",
                _ll(rec["loglik"]),
                _ll(ll_exact),
                starts,
                rec["iter"],
                rec["converged"],
            ]
        )
        if method == "flexmix":
            sig = ml_sigma(X, y, **params)
            ll_ml = mixture_loglik(X, y, **{**params, "sigma": sig})
            figures["flexmix_loglik_ml_sigma"] = ll_ml
            rows.append(["  flexmix params, ML sigma", "", "", "", _ll(ll_ml), "", "", ""])
        for key, _, _ in CONFIGS:
            if key not in fitted:
                continue
            ratio = figures[f"{key}_seconds_median"] / rec["seconds"]
            diff = figures[f"{key}_loglik_exact"] - ll_exact
            figures[f"ratio_{key}_vs_{method}"] = ratio
            figures[f"loglik_diff_{key}_vs_{method}"] = diff
            figures[f"loglik_diff_per_obs_{key}_vs_{method}"] = diff / n
            figures[f"max_abs_param_diff_{key}_vs_{method}"] = _max_param_diff(
                X, fitted[key], params
            )
    bayes_rows = []
    for key, label, _ in CONFIGS:
        if key in fitted:
            ratio = figures.get(f"ratio_{key}_vs_flexmix")
            bayes_rows.append(
                [
                    f"bayes_mlr {label}",
                    f"{figures[f'{key}_seconds_median']:.3f}",
                    "" if ratio is None else f"{ratio:.4f}",
                    _ll(figures[f"{key}_loglik"]),
                    _ll(figures[f"{key}_loglik_exact"]),
                    f"{figures[f'{key}_n_runs_on_all_rows']} of {N_INIT}",
                    figures[f"{key}_n_iter"],
                    figures[f"{key}_converged"],
                ]
            )
    rows = bayes_rows + rows

    # --- report ------------------------------------------------------------------------------
    say("")
    say(
        f"Timing: medians of {repeats} fits on each side; bayes_mlr after a warm-up (split "
        "around the R run), R timed inside R (fits only). ratio = bayes_mlr median / flexmix "
        "median (lower is faster). runs = starts run to convergence on all rows."
    )
    say(
        "loglik (own) = each package's reported value; loglik (exact) = recomputed here by one "
        "formula for all fits. iter = EM iterations of the best run."
    )
    print_table(
        [
            "method",
            "seconds",
            "ratio",
            "loglik (own)",
            "loglik (exact)",
            "runs",
            "iter",
            "converged",
        ],
        rows,
    )
    say(f"log-likelihood at the true parameters: {loglik_truth:.6f}")
    for key, label, _ in CONFIGS:
        if key not in fitted:
            continue
        gap = figures[f"{key}_loglik"] - figures[f"{key}_loglik_exact"]
        say(
            f"{label}: reported minus recomputed log-likelihood {gap:.3g}; max |param - truth| "
            f"{figures[f'{key}_max_abs_err_vs_truth']:.4g}"
        )
    for key, label, _ in CONFIGS:
        if key not in fitted:
            continue
        runs, scouts = figures[f"{key}_updates_per_run"], figures[f"{key}_updates_per_scout"]
        line = (
            f"{label}: EM updates of each run on all rows {', '.join(map(str, runs))} "
            f"({sum(runs)} in all)"
        )
        if scouts:
            line += f"; scouting updates of each start {', '.join(map(str, scouts))}"
        say(line + " (one untimed fit with a progress callback)")
    allowance = SAME_LOGLIK_PER_OBS * n
    for method in ("flexmix", "mixtools"):
        for key, label, _ in CONFIGS:
            if f"loglik_diff_{key}_vs_{method}" not in figures:
                continue
            diff = figures[f"loglik_diff_{key}_vs_{method}"]
            verdict = "better" if diff > allowance else ("same" if diff >= -allowance else "WORSE")
            figures[f"loglik_{key}_vs_{method}"] = verdict
            pd = figures[f"max_abs_param_diff_{key}_vs_{method}"]
            say(
                f"{label} - {method} exact log-likelihood: {diff:+.6g} -> {verdict} "
                f"(|diff| <= {allowance:.3g} counts as the same); max |param difference| "
                + ("n/a" if pd is None else f"{pd:.4g}")
            )
        if method == "flexmix" and "flexmix_loglik_ml_sigma" in figures:
            for key, label, _ in CONFIGS:
                if key in fitted:
                    diff_ml = figures[f"{key}_loglik_exact"] - figures["flexmix_loglik_ml_sigma"]
                    say(f"{label} - flexmix params with ML sigma: {diff_ml:+.6g}")
    for key, label, _ in CONFIGS:
        ratio = figures.get(f"ratio_{key}_vs_flexmix")
        if ratio is None:
            continue
        say(
            f"speed ratio vs flexmix, {label}: {ratio:.4f} (target <= {TARGET_RATIO}: "
            f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}; later target <= "
            f"{LATER_TARGET_RATIO}: {'met' if ratio <= LATER_TARGET_RATIO else 'not yet'}); "
            f"flexmix / bayes_mlr = {1.0 / ratio:.1f}x  [commit {commit}]"
        )
        figures[f"meets_target_ratio_{key}"] = bool(ratio <= TARGET_RATIO)
    return figures


if __name__ == "__main__":
    main()
