"""Benchmark: the structured EM (grouped rows + concomitant variables + a shared coefficient)
of bayes_mlr against R's flexmix on the same data.

A mixture of K=2 linear regressions with ``n`` rows in ``n // 5`` groups (all rows of a group
share one component; 20,000 rows by default) is simulated by ``bayes_mlr.simulate``: two
features, the second (``w``) with the coefficient 0.5 in both components, and prior weights
``softmax_j(α_j + z_g γ_j)`` in one concomitant variable ``z`` drawn once per group. It is
fitted by ``bayes_mlr.fit_structured(X, y, 2, groups=ids, concomitant=z, shared=[1],
n_init=5, tol=1e-8, random_state=0)`` (what ``MixtureOfRegressions.from_formula("y ~ x | id",
df, 2, concomitant="~ z", shared="~ w")`` runs) and, in the same run and on the same data, by
``flexmix::stepFlexmix(y ~ x | id, k=2, nrep=5, model=FLXMRglmfix(fixed = ~ w),
concomitant=FLXPmultinom(~ z), control=list(tolerance=1e-8))`` via ``Rscript`` (see
``flexmix_structured_bench.R``; only the fit itself is timed inside R). bayes_mlr is timed as
the median of ``--repeats`` fits after one warm-up, half of them before and half after the R
run, so that a change of load on a shared machine hits both sides; the R fit runs once.

flexmix's EM optimum is not exactly the maximum-likelihood one (it pools the shared
coefficients without 1/σ² weights and corrects σ for degrees of freedom), so the observed-data
log-likelihood of every fit is recomputed here by one independent formula,
Σ_g logsumexp_j [log π_gj + Σ_{i∈g} log N(y_i | a_j + x_iᵀb_j, σ_j²)] with
π_gj = softmax_j(α_j + z_gᵀγ_j), and the table shows each package's own value next to it.
Parameters are compared after matching the component labels (the permutation closest in the
regression parameters; concomitant coefficients re-referenced to the same component).

Run alone with ``.venv/bin/python -m tests.benchmarks.bench_structured [--n N] [--repeats R]
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
from .bench_em import INSTALL_HINT, r_status

__all__ = ["main", "simulate_structured", "structured_loglik"]

R_SCRIPT = Path(__file__).with_name("flexmix_structured_bench.R")

# The simulated truth (column 1 of X is the shared w; the concomitant is constant in groups).
TRUE_INTERCEPT = np.array([-1.0, 1.5])
TRUE_COEF = np.array([[1.0, 0.5], [-1.0, 0.5]])
TRUE_SIGMA = np.array([0.6, 0.8])
TRUE_CONC_INTERCEPT = np.array([0.0, 0.3])
TRUE_CONC_COEF = np.array([[0.0], [1.2]])
SHARED = (1,)  # 0-based columns of X with a shared coefficient
ROWS_PER_GROUP = 5
DATA_SEED = 20_240_602

# The fit settings under test (flexmix gets the same K, number of starts and tolerance).
N_COMPONENTS = 2
N_INIT = 5
TOL = 1e-8
RANDOM_STATE = 0

PARAM_KEYS = ("intercept", "coef", "sigma", "concomitant_intercept", "concomitant_coef")
TRUTH = {
    "intercept": TRUE_INTERCEPT,
    "coef": TRUE_COEF,
    "sigma": TRUE_SIGMA,
    "concomitant_intercept": TRUE_CONC_INTERCEPT,
    "concomitant_coef": TRUE_CONC_COEF,
}

#: Printed by ``python -m tests.benchmarks`` (see its docstring).
TARGETS = (
    (
        "ratio_vs_flexmix",
        "<=",
        1.0,
        "structured EM (grouped + concomitant + shared), n=20k: bayes_mlr / flexmix time",
    ),
    (
        "loglik_diff_vs_flexmix",
        ">=",
        0.0,
        "structured EM: bayes_mlr - flexmix exact log-likelihood",
    ),
)


# ---------------------------------------------------------------------------------------------
# Data and an independent log-likelihood
# ---------------------------------------------------------------------------------------------


def simulate_structured(n: int, seed: int = DATA_SEED) -> tuple[np.ndarray, ...]:
    """Draw ``n`` rows in ``n // 5`` groups from the benchmark's model.

    Returns ``X`` (n, 2), ``y`` (n,), integer group codes (n,) and the concomitant ``Z`` (n, 1).
    """
    from bayes_mlr import simulate

    sim = simulate(
        n,
        intercept=TRUE_INTERCEPT,
        coef=TRUE_COEF,
        sigma=TRUE_SIGMA,
        n_groups=n // ROWS_PER_GROUP,
        concomitant_intercept=TRUE_CONC_INTERCEPT,
        concomitant_coef=TRUE_CONC_COEF,
        random_state=seed,
    )
    return sim.X, sim.y, np.asarray(sim.groups, dtype=np.int64), sim.concomitant


def _group_terms(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    Z: np.ndarray,
    params: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a_gj = log π_gj + Σ_{i∈g} log N(y_i | a_j + x_iᵀ b_j, σ_j²), shape (G, K); the group
    index of every row; and the residuals (n, K)."""
    _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    Zg = Z[first]
    if not np.array_equal(Z, Zg[inverse]):
        raise ValueError("the concomitant variables vary within a group")
    intercept = np.asarray(params["intercept"], float)
    sigma = np.asarray(params["sigma"], float)
    resid = y[:, None] - (intercept[None, :] + X @ np.asarray(params["coef"], float).T)
    row_ll = -np.log(sigma) - 0.5 * np.log(2.0 * np.pi) - 0.5 * (resid / sigma) ** 2
    G, K = first.shape[0], sigma.shape[0]
    group_ll = np.column_stack(
        [np.bincount(inverse, weights=row_ll[:, j], minlength=G) for j in range(K)]
    )
    eta = (
        np.asarray(params["concomitant_intercept"], float)
        + Zg @ np.asarray(params["concomitant_coef"], float).reshape(K, -1).T
    )
    log_prior = eta - logsumexp(eta, axis=1, keepdims=True)
    return log_prior + group_ll, inverse, resid


def structured_loglik(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    Z: np.ndarray,
    params: dict[str, np.ndarray],
) -> float:
    """Exact observed-data log-likelihood Σ_g logsumexp_j [log π_gj + Σ_{i∈g} log N(y_i |
    a_j + x_iᵀ b_j, σ_j²)] with π_gj = softmax_j(α_j + z_gᵀ γ_j).

    ``params`` holds ``intercept`` (K,), ``coef`` (K, p), ``sigma`` (K,),
    ``concomitant_intercept`` (K,) and ``concomitant_coef`` (K, r). Deliberately independent
    of bayes_mlr's own code, so it can check every package's fit.
    """
    a, _, _ = _group_terms(X, y, groups, Z, params)
    return float(logsumexp(a, axis=1).sum())


def ml_sigma(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    Z: np.ndarray,
    params: dict[str, np.ndarray],
) -> np.ndarray:
    """Maximum-likelihood sigmas given the other parameters: one conditional M-step for σ,
    σ_j² = Σ_i γ_gj r_ij² / Σ_i γ_gj with γ the group responsibilities at ``params`` (the
    log-likelihood cannot decrease)."""
    a, inverse, resid = _group_terms(X, y, groups, Z, params)
    gamma = np.exp(a - logsumexp(a, axis=1, keepdims=True))[inverse]
    return np.sqrt((gamma * resid**2).sum(axis=0) / gamma.sum(axis=0))


def _matched_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float | None:
    """Largest absolute parameter difference between two fits after matching labels.

    The permutation of ``b``'s components closest to ``a`` in the regression parameters
    (intercept, coefficients, sigma) is chosen; the concomitant coefficients of both are then
    re-referenced to ``a``'s component 0 (they are identified only up to a common shift).
    None if the numbers of components differ.
    """
    K = np.shape(a["sigma"])[0]
    if np.shape(b["sigma"])[0] != K:
        return None

    def regression_gap(perm: tuple[int, ...]) -> float:
        idx = list(perm)
        return max(
            float(np.max(np.abs(np.asarray(a[k]) - np.asarray(b[k])[idx])))
            for k in ("intercept", "coef", "sigma")
        )

    best = list(min(itertools.permutations(range(K)), key=regression_gap))
    gaps = [regression_gap(tuple(best))]
    for key in ("concomitant_intercept", "concomitant_coef"):
        va = np.asarray(a[key], float)
        vb = np.asarray(b[key], float)[best]
        gaps.append(float(np.max(np.abs((va - va[0]) - (vb - vb[0])))))
    return max(gaps)


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
    groups: np.ndarray,
    Z: np.ndarray,
    *,
    k: int,
    nrep: int,
    tol: float,
    seed: int,
    shared: Sequence[int],
    timeout: float,
) -> dict[str, Any]:
    """Fit flexmix in one ``Rscript`` process on exactly these data.

    The data travel as raw little-endian float64 (exact, and quicker for R than CSV). Returns
    the record printed by ``flexmix_structured_bench.R`` with the parameters converted to
    ``intercept``, ``coef`` (k_fit, p), ``sigma``, ``concomitant_intercept`` and
    ``concomitant_coef`` (k_fit, r) arrays.
    """
    n, p = X.shape
    r = Z.shape[1]
    with tempfile.TemporaryDirectory(prefix="bayes_mlr_bench_") as tmp:
        path = Path(tmp) / "data.bin"
        table = np.column_stack([X, y, groups.astype(float), Z])
        np.ascontiguousarray(table, dtype="<f8").tofile(path)
        cmd = [
            "Rscript",
            "--vanilla",
            str(R_SCRIPT),
            str(path),
            str(n),
            str(p),
            str(r),
            str(k),
            str(nrep),
            repr(tol),
            str(seed),
            ",".join(str(j + 1) for j in shared) or "0",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"flexmix_structured_bench.R exited with status {proc.returncode}:\n"
            f"{proc.stderr[-2000:]}"
        )
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            rec = json.loads(line[len("BENCH_JSON ") :])
            break
    else:
        raise RuntimeError(f"no flexmix result in Rscript output:\n{proc.stdout[-2000:]}")
    k_fit = int(rec["k_fit"])
    beta = np.asarray(rec["coef"], dtype=float).reshape(k_fit, p + 1)  # R: column-major
    conc = np.asarray(rec["conc"], dtype=float).reshape(k_fit, r + 1)
    rec["intercept"] = beta[:, 0]
    rec["coef"] = beta[:, 1:]
    rec["sigma"] = np.asarray(rec["sigma"], dtype=float)
    rec["concomitant_intercept"] = conc[:, 0]
    rec["concomitant_coef"] = conc[:, 1:]
    return rec


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print a table and return the key figures as a dict."""
    parser = base_parser(
        __doc__.splitlines()[0], prog="python -m tests.benchmarks.bench_structured"
    )
    add_peer_arguments(parser, default_n=20_000, quick_n=2_000)
    args = parser.parse_args(argv)
    n, repeats = peer_sizes(parser, args, default_n=20_000, quick_n=2_000)

    X, y, groups, Z = simulate_structured(n)
    n_groups = int(np.unique(groups).shape[0])
    say(
        f"bench_structured: n={n} rows in {n_groups} groups, p={X.shape[1]} (shared: column "
        f"{', '.join(map(str, SHARED))}), r={Z.shape[1]} concomitant, K={N_COMPONENTS}, "
        f"n_init={N_INIT}, tol={TOL:g}, data seed {DATA_SEED}"
    )
    say(environment_line())
    loglik_truth = structured_loglik(X, y, groups, Z, TRUTH)
    figures: dict[str, Any] = {
        "n": n,
        "n_groups": n_groups,
        "repeats": repeats,
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
            groups=groups,
            concomitant=Z,
            shared=list(SHARED),
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
            say(f"{info}: running flexmix stepFlexmix (timed inside R) ...")
            t0 = time.perf_counter()
            try:
                rec = run_r(
                    X,
                    y,
                    groups,
                    Z,
                    k=N_COMPONENTS,
                    nrep=N_INIT,
                    tol=TOL,
                    seed=RANDOM_STATE,
                    shared=SHARED,
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
    ll_exact = structured_loglik(X, y, groups, Z, bayes)
    figures.update(
        bayes_seconds_median=timing.median,
        bayes_seconds_best=timing.best,
        bayes_n_iter=int(res.n_iter),
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
        figures.update(
            flexmix_seconds=rec["seconds"],
            flexmix_iter=rec["iter"],
            flexmix_converged=rec["converged"],
            flexmix_k_fit=k_fit,
            flexmix_loglik_reported=rec["loglik"],
            ratio_vs_flexmix=ratio,
        )
        if k_fit != N_COMPONENTS:
            # A fit with fewer components is still a valid model; its exact log-likelihood
            # is comparable, its parameters are not.
            say(f"  note: flexmix returned {k_fit} components (dropped small ones)")
        ll_fm = structured_loglik(X, y, groups, Z, params)
        sig = ml_sigma(X, y, groups, Z, params)
        ll_ml = structured_loglik(X, y, groups, Z, {**params, "sigma": sig})
        figures.update(
            flexmix_loglik_exact=ll_fm,
            flexmix_loglik_ml_sigma=ll_ml,
            flexmix_max_abs_err_vs_truth=_matched_diff(TRUTH, params),
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
        rows.append(["  flexmix params, ML sigma", "", "", "", _ll(ll_ml), "", "", "", ""])

    # --- report ------------------------------------------------------------------------------
    say("")
    say(
        f"Timing: bayes_mlr = median of {repeats} fits after a warm-up (split around the R run); "
        "flexmix runs once, timed inside R (fit only). ratio = bayes_mlr median / flexmix time "
        "(lower is faster)."
    )
    say(
        "loglik (own) = each package's reported value; loglik (exact) = recomputed here by one "
        "formula for both fits. max|d| = largest parameter difference after matching labels "
        "(regression and concomitant coefficients, sigmas)."
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
    if "loglik_diff_vs_flexmix" in figures:
        diff = figures["loglik_diff_vs_flexmix"]
        say(f"bayes_mlr - flexmix exact log-likelihood: {diff:+.6g} ({diff / n:+.3g} per row)")
        diff_ml = figures["bayes_loglik_exact"] - figures["flexmix_loglik_ml_sigma"]
        say(f"bayes_mlr - flexmix params with ML sigma: {diff_ml:+.6g}")
        pd = figures["max_abs_param_diff_vs_flexmix"]
        if pd is not None:
            say(f"max |param difference| bayes_mlr vs flexmix: {pd:.4g}")
        ratio = figures["ratio_vs_flexmix"]
        say(
            f"speed ratio vs flexmix: {ratio:.4f} (target <= 1: "
            f"{'met' if ratio <= 1.0 else 'NOT met'}); flexmix / bayes_mlr = {1.0 / ratio:.1f}x"
        )
    return figures


if __name__ == "__main__":
    main()
