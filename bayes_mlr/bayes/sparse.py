"""K from the posterior: a sparse finite mixture of regressions, sampled by Gibbs.

:func:`posterior_n_components` fits ``max_components`` components with a Dirichlet(e0)
prior on the weights and a small ``e0`` (Malsiner-Walli, Frühwirth-Schnatter & Grün 2016,
"Model-based clustering based on sparse finite Gaussian mixtures"; Rousseau & Mengersen 2011:
with ``e0 < d / 2`` the superfluous components empty out). The number of *filled* components
``K+`` (those holding at least one observation) is counted in every draw, from allocations
drawn given that draw's parameters, and its posterior is the answer: no component count is
fixed in advance, unlike BIC or LOO, which compare fits of fixed K.

The sampler is the data-augmentation Gibbs sampler of the mixture (Diebolt & Robert 1994):

1. ``z_i | theta ~ Categorical(gamma_i)``, the responsibilities of EM's E-step;
2. ``weights | z ~ Dirichlet(e0 + n_1, ..., e0 + n_K)``;
3. ``(intercept_k, coef_k) | z, sigma_k ~ Normal``, the weighted least-squares of EM's M-step
   with the prior's precision added;
4. ``sigma_k^2 | z, coef ~ InvGamma(c0 + n_k / 2, C0 + RSS_k / 2)``;

and, with ``e0="gamma"``, ``e0 ~ Gamma(10, 10 K)`` (Malsiner-Walli et al.) updated by a
random-walk Metropolis step on ``log e0``. The priors are conjugate, scaled to the data like
:func:`bayes_mlr.default_priors`:

* ``(intercept_k, coef_k) ~ Normal(b0, B0)``: ``b0 = (mean(y), 0, ..., 0)``, ``B0`` diagonal
  with the variances of :func:`bayes_mlr.default_priors`;
* ``sigma_k^2 ~ InvGamma(c0 = 2.5, C0 = 1.5 * s_y^2 / 4)``: prior mean of ``sigma^2``
  ``s_y^2 / 4``, i.e. sigma about half the sd of y, with a heavy right tail.

An empty component's parameters are drawn from the prior. numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import gammaln, logsumexp

__all__ = ["NComponentsPosterior", "posterior_n_components", "prior_n_filled"]

#: The Gamma(a, b * K) hyperprior on e0 of ``e0="gamma"`` (shape, rate per component).
E0_HYPERPRIOR = (10.0, 10.0)
_C0 = 2.5


@dataclass(frozen=True)
class NComponentsPosterior:
    """The posterior of the number of filled components, from :func:`posterior_n_components`.

    Attributes
    ----------
    probabilities : pandas.Series
        Posterior probability of each number of filled components ``K+`` (index ``K+``,
        name ``probability``), summing to 1.
    prior : pandas.Series
        The prior of ``K+`` that ``e0`` implies for these ``n`` observations (Monte Carlo).
    n_filled : ndarray of int, shape (chains, draws)
        ``K+`` of every kept draw.
    posterior : xarray.DataTree
        Group ``posterior``: ``weights``, ``intercept``, ``coef``, ``sigma`` (chain, draw,
        component[, feature]) and ``e0`` (chain, draw); group ``sample_stats``: ``n_filled``.
        The component labels switch freely: only label-invariant quantities are meaningful.
    max_components : int
    e0 : float or str
        The fixed ``e0``, or ``"gamma"``.
    """

    probabilities: pd.Series
    prior: pd.Series
    n_filled: np.ndarray
    posterior: Any
    max_components: int
    e0: float | str

    @property
    def mode(self) -> int:
        """The most probable ``K+``."""
        return int(self.probabilities.idxmax())

    def __str__(self) -> str:
        table = pd.DataFrame({"posterior": self.probabilities, "prior": self.prior}).fillna(0.0)
        return (
            f"Posterior of the number of filled components (sparse finite mixture, "
            f"K_max = {self.max_components}, e0 = {self.e0}):\n"
            + table.to_string(float_format=lambda v: f"{v:.3f}")
        )


def _scales(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Prior mean and variances of (intercept, coef), from :func:`bayes_mlr.default_priors`,
    and the InvGamma(c0, C0) of sigma^2."""
    from bayes_mlr.bayes.priors import default_priors

    prior = default_priors(X, y, 1)
    s_y = float(prior["sigma"]["sigma"])  # the sd of y (1 for a constant y)
    b0 = np.concatenate([[float(prior["intercept"]["mu"])], np.zeros(X.shape[1])])
    B0 = np.concatenate([[float(prior["intercept"]["sigma"]) ** 2], prior["coef"]["sigma"] ** 2])
    C0 = (_C0 - 1.0) * s_y**2 / 4.0
    return b0, B0, _C0, C0


def prior_n_filled(
    n_obs: int,
    max_components: int,
    e0: float | str,
    *,
    n_draws: int = 20_000,
    random_state: Any = 0,
) -> pd.Series:
    """The prior of ``K+``: weights from Dirichlet(e0), then ``n_obs`` allocations.

    With ``e0="gamma"`` each prior draw first draws ``e0`` from its hyperprior.

    Returns
    -------
    pandas.Series
        Probability of each ``K+`` (index ``K+``), by Monte Carlo over ``n_draws`` draws.
    """
    rng = np.random.default_rng(random_state)
    K = max_components
    if e0 == "gamma":
        shape, rate = E0_HYPERPRIOR[0], E0_HYPERPRIOR[1] * K
        e = rng.gamma(shape, 1.0 / rate, size=(n_draws, 1))
    else:
        e = np.full((n_draws, 1), float(e0))
    # Dirichlet(e0) for tiny e0 underflows in numpy's gamma sampler: draw in logs
    log_g = np.log(rng.gamma(e + 1.0, size=(n_draws, K))) + np.log(rng.random((n_draws, K))) / e
    w = np.exp(log_g - logsumexp(log_g, axis=1, keepdims=True))
    counts = np.array([rng.multinomial(n_obs, wi) for wi in w])
    filled = (counts > 0).sum(axis=1)
    return _distribution(filled, max_components)


def _distribution(filled: np.ndarray, max_components: int) -> pd.Series:
    values = np.bincount(np.ravel(filled), minlength=max_components + 1)[1:]
    series = pd.Series(
        values / values.sum(),
        index=pd.RangeIndex(1, max_components + 1, name="K+"),
        name="probability",
    )
    return series[series > 0]


def _dirichlet(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dirichlet(alpha) that stays exact for tiny alpha (logs of Gamma(alpha + 1) U^(1/alpha))."""
    log_g = np.log(rng.gamma(alpha + 1.0)) + np.log(rng.random(alpha.shape)) / alpha
    return np.exp(log_g - logsumexp(log_g))


def _gibbs_chain(
    X1: np.ndarray,
    y: np.ndarray,
    K: int,
    e0: float | str,
    draws: int,
    tune: int,
    rng: np.random.Generator,
    start: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    n, q = X1.shape
    b0, B0, c0, C0 = _scales(X1[:, 1:], y)
    prior_prec = 1.0 / B0
    weights = start["weights"].copy()
    beta = start["beta"].copy()  # (K, q): intercept then coef
    sigma2 = start["sigma"] ** 2
    e = 0.01 if e0 == "gamma" else float(e0)
    a_e, b_e = E0_HYPERPRIOR[0], E0_HYPERPRIOR[1] * K
    total = draws + tune
    out = {
        "weights": np.empty((draws, K)),
        "beta": np.empty((draws, K, q)),
        "sigma": np.empty((draws, K)),
        "e0": np.empty(draws),
        "n_filled": np.empty(draws, dtype=int),
    }
    for it in range(total):
        # 1. allocations given the parameters
        resid = y[:, None] - X1 @ beta.T  # (n, K)
        log_p = np.log(np.maximum(weights, 1e-300)) - 0.5 * np.log(sigma2) - 0.5 * resid**2 / sigma2
        log_p -= logsumexp(log_p, axis=1, keepdims=True)
        cum = np.cumsum(np.exp(log_p), axis=1)
        z = np.minimum((rng.random(n)[:, None] > cum).sum(axis=1), K - 1)
        counts = np.bincount(z, minlength=K)
        # 2. weights
        weights = _dirichlet(e + counts.astype(float), rng)
        # 3-4. each component's regression and variance
        for k in range(K):
            rows = z == k
            if counts[k] == 0:
                beta[k] = b0 + np.sqrt(B0) * rng.standard_normal(q)
                sigma2[k] = C0 / rng.gamma(c0)
                continue
            Xk, yk = X1[rows], y[rows]
            prec = Xk.T @ Xk / sigma2[k] + np.diag(prior_prec)
            chol = np.linalg.cholesky(prec)
            rhs = Xk.T @ yk / sigma2[k] + prior_prec * b0
            mean = np.linalg.solve(prec, rhs)
            beta[k] = mean + np.linalg.solve(chol.T, rng.standard_normal(q))
            rss = float(np.sum((yk - Xk @ beta[k]) ** 2))
            sigma2[k] = (C0 + 0.5 * rss) / rng.gamma(c0 + 0.5 * counts[k])
        # 5. e0 (random-walk Metropolis on log e0), given the weights
        if e0 == "gamma":
            proposal = e * math.exp(0.3 * rng.standard_normal())
            log_w = float(np.sum(np.log(np.maximum(weights, 1e-300))))
            ratio = _log_e0_target(proposal, K, log_w, a_e, b_e) - _log_e0_target(
                e, K, log_w, a_e, b_e
            )
            if math.log(rng.random()) < ratio:
                e = proposal
        if it >= tune:
            s = it - tune
            out["weights"][s] = weights
            out["beta"][s] = beta
            out["sigma"][s] = np.sqrt(sigma2)
            out["e0"][s] = e
            out["n_filled"][s] = int(np.count_nonzero(counts))
    return out


def _log_e0_target(v: float, K: int, sum_log_w: float, a: float, b: float) -> float:
    """log p(e0 = v | weights) + log v: Dirichlet(v) density of the weights, Gamma(a, b)
    prior, and the Jacobian of the random walk on log e0."""
    return (
        gammaln(K * v)
        - K * gammaln(v)
        + (v - 1.0) * sum_log_w
        + (a - 1.0) * math.log(v)
        - b * v
        + math.log(v)
    )


def posterior_n_components(
    X: Any,
    y: Any,
    max_components: int = 6,
    *,
    e0: float | str = 0.01,
    draws: int = 2000,
    tune: int = 1000,
    chains: int = 2,
    random_state: Any = None,
    **kw: Any,
) -> NComponentsPosterior:
    """The posterior of the number of filled components, by a sparse finite mixture.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    max_components : int, default=6
        ``K_max``: components of the overfitted mixture; it must exceed the ``K+`` the data
        support (the result says so when ``K_max`` itself gets probability).
    e0 : float or "gamma", default=0.01
        The Dirichlet parameter of the weights: small empties superfluous components. With
        ``"gamma"`` it gets the hyperprior ``Gamma(10, 10 K_max)`` (prior mean ``1 / K_max``).
    draws, tune, chains : int
        Gibbs sweeps kept and discarded per chain, and chains.
    random_state : int, numpy.random.Generator or None
    **kw
        Passed to :class:`bayes_mlr.MixtureOfRegressions` for the EM fit that starts each
        chain (``n_init``, ...); ``variance`` must stay ``"component"``.

    Returns
    -------
    NComponentsPosterior
        ``.probabilities`` (pandas Series indexed by ``K+``), ``.prior``, ``.posterior``.

    Examples
    --------
    >>> from bayes_mlr import posterior_n_components, simulate
    >>> from bayes_mlr.simulate import default_truth
    >>> data = simulate(300, **default_truth(3), random_state=0)
    >>> result = posterior_n_components(data.X, data.y, 6, draws=300, tune=200, random_state=0)
    >>> result.mode
    3
    >>> bool(result.probabilities[3] > 0.8)
    True

    Raises
    ------
    ValueError
        Bad input or settings (before any computation).
    NotImplementedError
        ``family=`` other than Gaussian.
    """
    import warnings

    import xarray as xr

    from bayes_mlr._validation import check_data
    from bayes_mlr.estimator import MixtureOfRegressions
    from bayes_mlr.exceptions import ConvergenceWarning, DegenerateFitWarning

    if isinstance(max_components, bool) or not isinstance(max_components, int | np.integer):
        raise TypeError(f"max_components must be an integer; got {max_components!r}")
    if max_components < 2:
        raise ValueError(f"max_components must be >= 2; got {max_components}")
    if not (e0 == "gamma" or (isinstance(e0, int | float) and 0 < float(e0) <= 1)):
        raise ValueError(f"e0 must be a number in (0, 1] or 'gamma'; got {e0!r}")
    for name, value, low in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
    if kw.get("variance", "component") != "component":
        raise ValueError("posterior_n_components fits one sigma per component (variance)")
    family = kw.get("family", "gaussian")
    name = getattr(family, "name", family)
    if name != "gaussian":
        raise NotImplementedError(
            f"posterior_n_components samples Gaussian components only (its Gibbs steps are the "
            f"conjugate normal updates), not family={name!r}: compare K for this family with "
            "BIC or with LOO on sample_posterior's draws (compare_n_components)"
        )
    X_arr, y_arr, _, names = check_data(X, y, None)
    X_arr = np.asarray(X_arr, dtype=float)
    y_arr = np.asarray(y_arr, dtype=float)
    n, p = X_arr.shape
    if n < 2 * max_components:
        raise ValueError(
            f"need at least {2 * max_components} rows for max_components={max_components}"
        )
    rng = np.random.default_rng(random_state)
    K = int(max_components)
    with warnings.catch_warnings():
        # the overfitted start may be degenerate or spurious: the sampler leaves it at once
        warnings.simplefilter("ignore", DegenerateFitWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = MixtureOfRegressions(
            K, spurious="allow", random_state=int(rng.integers(2**31)), **kw
        ).fit(X_arr, y_arr)
    X1 = np.column_stack([np.ones(n), X_arr])
    start = {
        "weights": np.asarray(fit.weights_),
        "beta": np.column_stack([fit.intercept_, fit.coef_]),
        "sigma": np.maximum(np.asarray(fit.sigma_), 1e-3 * (y_arr.std() or 1.0)),
    }
    runs = [
        _gibbs_chain(X1, y_arr, K, e0, draws, tune, np.random.default_rng(seed), start)
        for seed in rng.spawn(chains)
    ]
    stack = {k: np.stack([r[k] for r in runs]) for k in runs[0]}
    feature_names = names if names is not None else [f"x{j}" for j in range(p)]
    coords = {
        "chain": np.arange(chains),
        "draw": np.arange(draws),
        "component": np.arange(K),
        "feature": list(feature_names),
    }
    posterior = xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset(
                {
                    "weights": (("chain", "draw", "component"), stack["weights"]),
                    "intercept": (("chain", "draw", "component"), stack["beta"][..., 0]),
                    "coef": (("chain", "draw", "component", "feature"), stack["beta"][..., 1:]),
                    "sigma": (("chain", "draw", "component"), stack["sigma"]),
                    "e0": (("chain", "draw"), stack["e0"]),
                },
                coords=coords,
                attrs={"sampler": "gibbs (sparse finite mixture)", "max_components": K},
            ),
            "sample_stats": xr.Dataset(
                {"n_filled": (("chain", "draw"), stack["n_filled"])},
                coords={"chain": coords["chain"], "draw": coords["draw"]},
            ),
        }
    )
    return NComponentsPosterior(
        probabilities=_distribution(stack["n_filled"], K),
        prior=prior_n_filled(n, K, e0, random_state=rng.spawn(1)[0]),
        n_filled=stack["n_filled"],
        posterior=posterior,
        max_components=K,
        e0=e0,
    )
