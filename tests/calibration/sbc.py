"""Simulation-based calibration (SBC) of ``sample_posterior`` on a two-component mixture.

Talts, Betancourt, Simpson, Vehtari & Gelman (2018): draw parameters from the prior, data from
the model, sample the posterior of those data, and record the rank of the true value among
``L`` posterior draws. If the sampler is right, every rank is uniform on ``0..L``; a
posterior too narrow gives U-shaped ranks, one biased gives skewed ones.

Mixtures are not identified, so the test quantities are functions of the parameters that do
not depend on the labels (Modrák et al. 2023): the components *sorted by intercept* (prior
draws and posterior draws alike: sorting is a function of the parameters, so their ranks are
uniform as well) and the log-likelihood of the data.

The default priors of ``bayes_mlr`` are scaled to the data (they depend on y), which breaks
the SBC identity: a prior that changes with the data is not the prior the data were drawn
from. SBC therefore runs with fixed, explicit priors passed through ``priors=`` (below).

Run: ``.venv/bin/python -m tests.calibration.sbc [--reps 200] [--jobs 2] [--out sbc.png]``
(``make sbc``); ``tests/bayes/test_sbc.py`` runs a smaller version (marked slow).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import logsumexp

#: The fixed priors of the SBC model (see the module docstring), in ``priors=`` form.
PRIORS = {
    "weights": {"alpha": [4.0, 4.0]},
    "intercept": {"mu": 0.0, "sigma": 2.0},
    "coef": {"mu": 0.0, "sigma": 1.0},
    "sigma": {"sigma": 1.0},
}
N_OBS = 100
DRAWS = 400  # per chain, 2 chains; thinned to L = 99 for the ranks
TUNE = 400
L = 99
QUANTITIES = (
    "weights[low]",
    "intercept[low]",
    "intercept[high]",
    "coef[low]",
    "coef[high]",
    "sigma[low]",
    "sigma[high]",
    "log_likelihood",
)


def _prior_draw(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "weights": rng.dirichlet(PRIORS["weights"]["alpha"]),
        "intercept": rng.normal(PRIORS["intercept"]["mu"], PRIORS["intercept"]["sigma"], 2),
        "coef": rng.normal(PRIORS["coef"]["mu"], PRIORS["coef"]["sigma"], (2, 1)),
        "sigma": np.abs(rng.normal(0.0, PRIORS["sigma"]["sigma"], 2)),
    }


def _log_likelihood(X, y, weights, intercept, coef, sigma) -> np.ndarray:
    """Total log-likelihood of (X, y) for each parameter set (leading axis S)."""
    mean = intercept[:, None, :] + np.einsum("np,skp->snk", X, coef)
    log_p = np.log(weights)[:, None, :] + stats.norm.logpdf(
        y[None, :, None], mean, sigma[:, None, :]
    )
    return logsumexp(log_p, axis=-1).sum(axis=-1)


def _quantities(X, y, values: dict[str, np.ndarray]) -> np.ndarray:
    """The test quantities of each parameter set, ``(S, len(QUANTITIES))``."""
    order = np.argsort(values["intercept"], axis=-1)  # (S, 2): low, high

    def take(a):
        return np.take_along_axis(a, order, axis=-1)

    w, a = take(values["weights"]), take(values["intercept"])
    b, s = take(values["coef"][..., 0]), take(values["sigma"])
    ll = _log_likelihood(
        X, y, values["weights"], values["intercept"], values["coef"], values["sigma"]
    )
    return np.column_stack([w[:, 0], a[:, 0], a[:, 1], b[:, 0], b[:, 1], s[:, 0], s[:, 1], ll])


def one_replicate(seed: int) -> dict[str, Any]:
    """Ranks of the true test quantities among L posterior draws, for one simulated data set."""
    import logging

    from bayes_mlr import MixtureOfRegressions, sample_posterior

    logging.getLogger("pymc").setLevel(logging.ERROR)
    rng = np.random.default_rng(seed)
    truth = _prior_draw(rng)
    X = rng.normal(size=(N_OBS, 1))
    z = rng.choice(2, N_OBS, p=truth["weights"])
    y = (
        truth["intercept"][z]
        + X[:, 0] * truth["coef"][z, 0]
        + truth["sigma"][z] * rng.normal(size=N_OBS)
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate fits, relabelling, modes: all expected here
        model = MixtureOfRegressions(2, random_state=seed).fit(X, y)
        tree = sample_posterior(
            model,
            draws=DRAWS,
            tune=TUNE,
            chains=2,
            sampler="pymc",
            random_seed=seed,
            progressbar=False,
            priors=PRIORS,
            cores=1,
            log_likelihood=False,
        )
    post = tree["posterior"]
    values = {
        name: post[name].transpose("chain", "draw", ...).values.reshape(-1, *post[name].shape[2:])
        for name in ("weights", "intercept", "coef", "sigma")
    }
    S = values["weights"].shape[0]
    thin = np.linspace(0, S - 1, L).astype(int)
    values = {k: v[thin] for k, v in values.items()}
    true = _quantities(X, y, {k: v[None] for k, v in truth.items()})[0]
    draws = _quantities(X, y, values)
    ranks = (draws < true[None, :]).sum(axis=0)
    n_div = (
        int(tree["sample_stats"]["diverging"].sum()) if "diverging" in tree["sample_stats"] else 0
    )
    return {
        "seed": seed,
        **dict(zip(QUANTITIES, ranks.tolist(), strict=True)),
        "divergences": n_div,
        "seconds": time.perf_counter() - t0,
    }


def run_sbc(n_reps: int, *, seed: int = 0, jobs: int = 2) -> pd.DataFrame:
    """``n_reps`` replicates (seeds ``seed .. seed + n_reps - 1``), in ``jobs`` processes."""
    seeds = list(range(seed, seed + n_reps))
    if jobs <= 1:
        rows = [one_replicate(s) for s in seeds]
    else:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            rows = list(pool.map(one_replicate, seeds))
    return pd.DataFrame(rows).set_index("seed")


def uniformity(ranks: pd.DataFrame, bins: int = 5) -> pd.Series:
    """Chi-square p-value of the ranks of each quantity against uniform on 0..L, in ``bins``."""
    out = {}
    for q in QUANTITIES:
        counts = np.bincount(ranks[q].to_numpy() * bins // (L + 1), minlength=bins)
        out[q] = float(stats.chisquare(counts).pvalue)
    return pd.Series(out, name="p_value")


def plot(ranks: pd.DataFrame, path: str) -> None:
    """ECDF of each quantity's fractional rank minus the uniform CDF, with a 95% band."""
    from matplotlib.figure import Figure

    n = len(ranks)
    grid = np.linspace(0, 1, 201)
    fig = Figure(figsize=(11, 5.5), layout="constrained")
    axes = fig.subplots(2, 4, sharex=True, sharey=True).ravel()
    band = 1.96 * np.sqrt(grid * (1 - grid) / n)
    for ax, q in zip(axes, QUANTITIES, strict=True):
        u = (ranks[q].to_numpy() + 0.5) / (L + 1)
        ecdf = (u[None, :] <= grid[:, None]).mean(axis=1)
        ax.fill_between(grid, -band, band, color="0.85", label="95% pointwise band")
        ax.plot(grid, ecdf - grid, color="tab:blue", lw=1.5, label="ECDF - uniform")
        ax.axhline(0, color="0.4", lw=0.6)
        ax.set_title(q, fontsize=10)
    for ax in axes[4:]:
        ax.set_xlabel("fractional rank")
    for ax in axes[::4]:
        ax.set_ylabel("ECDF difference")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
    fig.suptitle(
        f"SBC of sample_posterior: K = 2, n = {N_OBS}, {n} replicates, ranks among {L} draws"
    )
    fig.savefig(path, dpi=150)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sbc", description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="sbc.png", help="ECDF figure (PNG)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    ranks = run_sbc(args.reps, seed=args.seed, jobs=args.jobs)
    p = uniformity(ranks)
    print(f"SBC: {len(ranks)} replicates in {time.perf_counter() - t0:.0f} s")
    print(p.to_frame().assign(mean_rank=[ranks[q].mean() for q in p.index]).to_string())
    print(f"replicates with divergences: {(ranks['divergences'] > 0).sum()}")
    plot(ranks, args.out)
    print(f"figure: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
