"""Posterior predictive draws at new x, and predictive intervals.

* :func:`posterior_predictive`: for every posterior draw, each component's mean at every new
  row and one draw of ``y`` from the mixture;
* :func:`predictive_interval`: per row, the predictive mean, sd and central interval.

numpy and xarray only (no PyMC): the draws come from the posterior's ``weights``,
``intercept``, ``coef`` and ``sigma``, so they work on any DataTree of
:func:`bayes_mlr.sample_posterior` or :func:`bayes_mlr.approximate_posterior`, also one
loaded from ``posterior.nc``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["posterior_predictive", "predictive_interval"]


def parameter_draws(model: Any, posterior: Any) -> dict[str, np.ndarray]:
    """``(chain, draw, ...)`` arrays of the parameters, component first after the draws.

    ``model`` supplies the known sigma of ``variance="fixed"``; with ``model=None`` a
    posterior without ``sigma`` gives no ``sigma`` entry, nor does a family without sigma
    (Poisson, binomial). Student-t components add ``df`` (from ``constant_data`` when fixed).
    """
    try:
        post = posterior["posterior"]
    except (KeyError, TypeError) as exc:
        raise ValueError("expected a DataTree with a 'posterior' group") from exc
    missing = [v for v in ("coef",) if v not in post]
    if missing:
        raise ValueError(f"the posterior has no {missing[0]!r} variable")
    coef = post["coef"].transpose("chain", "draw", "component", "feature").to_numpy()
    C, D, K, _ = coef.shape
    out = {"coef": coef}
    out["weights"] = (
        post["weights"].transpose("chain", "draw", "component").to_numpy()
        if "weights" in post
        else np.ones((C, D, K))
    )
    out["intercept"] = (
        post["intercept"].transpose("chain", "draw", "component").to_numpy()
        if "intercept" in post
        else np.zeros((C, D, K))
    )
    if "sigma" in post:
        sigma = post["sigma"]
        if "component" in sigma.dims:
            out["sigma"] = sigma.transpose("chain", "draw", "component").to_numpy()
        else:  # one shared sigma
            out["sigma"] = np.repeat(sigma.transpose("chain", "draw").to_numpy()[..., None], K, -1)
    elif model is not None and hasattr(model, "sigma_"):  # variance="fixed": the known sigma
        out["sigma"] = np.broadcast_to(np.asarray(model.sigma_, dtype=float), (C, D, K)).copy()
    if "df" in post:
        out["df"] = post["df"].transpose("chain", "draw", "component").to_numpy()
    else:
        try:
            const = posterior["constant_data"]
        except (KeyError, TypeError):
            const = None
        if const is not None and "df" in const:  # StudentT(df=...): known
            out["df"] = np.broadcast_to(np.asarray(const["df"].values, float), (C, D, K)).copy()
    return out


def mixture_means(
    draws: dict[str, np.ndarray], X: np.ndarray, family: Any = None, extra: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each draw's component means ``(chain, draw, component, obs)`` at the rows of ``X`` and
    its mixture mean ``sum_j weights_j mu_j`` ``(chain, draw, obs)``.

    With a ``family`` other than the Gaussian the means are on the response scale, from the
    linear predictor with the offset of the row columns ``extra`` ``(n, m)``
    (:func:`bayes_mlr.bayes.families.mean`)."""
    means = _component_means(draws, X, family, extra)
    weights = draws["weights"] / draws["weights"].sum(axis=-1, keepdims=True)
    return means, np.einsum("cdk,cdkn->cdn", weights, means)


def _linear_predictor(draws, X, family, extra) -> np.ndarray:
    """``(chain, draw, component, obs)`` linear predictors, offset included."""
    eta = draws["intercept"][..., None] + np.einsum("cdkp,np->cdkn", draws["coef"], X)
    if family is not None and family.takes_offset and extra is not None:
        eta = eta + np.asarray(family.offset_of(extra), dtype=float)
    return eta


def _component_means(draws, X, family, extra) -> np.ndarray:
    """``(chain, draw, component, obs)`` means on the response scale."""
    eta = _linear_predictor(draws, X, family, extra)
    if family is None:
        return eta
    from bayes_mlr.bayes.families import mean

    return mean(family, eta, extra)


def posterior_predictive(
    model: Any,
    posterior: Any,
    X_new: Any,
    *,
    random_seed: Any = None,
    groups: Any = None,
    concomitant: Any = None,
    offset: Any = None,
    trials: Any = None,
) -> Any:
    """Posterior predictive draws of ``y`` at new rows, with each component's mean.

    For each posterior draw ``s`` and new row ``x_i``: the component means
    ``mu_sij = intercept_sj + coef_sj . x_i``, a component ``z_si ~ Categorical(weights_s)``
    and ``y_si ~ Normal(mu_s,z,i, sigma_s,z)``.

    For a model with concomitant variables the component of row ``i`` is drawn from its own
    prior weights ``softmax_j(concomitant_intercept_sj + w_i . concomitant_coef_sj)`` (and the
    mixture mean uses them); with ``groups`` the rows of a new group share one component.

    Parameters
    ----------
    model : MixtureOfRegressions
        The fitted estimator the posterior was sampled for (it encodes ``X_new``: a raw data
        frame for a formula model, else an array with the training features).
    posterior : xarray.DataTree
        From :func:`bayes_mlr.sample_posterior` (or ``xarray.open_datatree("posterior.nc")``).
    X_new : array-like of shape (n_new, n_features) or pandas.DataFrame
    random_seed : int, numpy.random.Generator or None
    groups : array-like of shape (n_new,), optional
        Group labels of the new rows (a model fitted with groups; for a formula fit, read from
        a raw data frame ``X_new``). Without them every new row is its own group.
    concomitant : array-like of shape (n_new, r), optional
        The concomitant variables of the new rows: required for a model with a concomitant
        model (for a formula fit, read from a raw data frame ``X_new``).
    offset, trials : array-like of shape (n_new,), optional
        The offset (Poisson, binomial) and trials (binomial) of the new rows: required for a
        model fitted with them (for a formula fit, computed from a raw data frame ``X_new``).
        Poisson, binomial and Student-t components draw ``y`` from their own distribution,
        and the means are on the response scale (a count, a number of successes).

    Returns
    -------
    xarray.Dataset
        ``y`` (chain, draw, obs): predictive draws; ``mean`` (chain, draw, obs): the mixture
        mean ``sum_j weights_j mu_j``; ``component_mean`` (chain, draw, component, obs). The
        memory is ``chains * draws * (K + 2) * n_new`` floats.

    Examples
    --------
    >>> import numpy as np
    >>> from bayes_mlr import MixtureOfRegressions, posterior_predictive, predictive_interval
    >>> from bayes_mlr import simulate
    >>> data = simulate(300, random_state=0)
    >>> model = MixtureOfRegressions(2, random_state=0).fit(data.X, data.y)
    >>> posterior = model.sample_posterior(500, 500, 2, progressbar=False)  # doctest: +SKIP
    >>> pred = posterior_predictive(model, posterior, np.array([[0.0], [1.0]]))  # doctest: +SKIP
    >>> predictive_interval(pred, prob=0.9)  # mean, sd, lower, upper per row  # doctest: +SKIP

    Raises
    ------
    ValueError
        ``X_new`` does not have the model's features, or the posterior lacks ``coef`` or has
        another number of components or features than the model.
    """

    structured = bool(getattr(getattr(model, "result_", None), "structured", False))
    if structured:
        groups, concomitant = model._structure_of(X_new, groups, concomitant)
    elif groups is not None or concomitant is not None:
        raise ValueError(
            "groups and concomitant apply to a model fitted with groups or concomitant variables"
        )
    X = np.asarray(model._check_X(X_new), dtype=float)
    family, extra = _family_rows_of_new(model, X_new, X.shape[0], offset, trials)
    draws = parameter_draws(model, posterior)
    C, D, K, p = draws["coef"].shape
    if p != X.shape[1] or K != int(model.n_components_):
        raise ValueError(
            f"the posterior has {K} components x {p} features, the model "
            f"{int(model.n_components_)} x {X.shape[1]}: not the posterior of this model"
        )
    rng = np.random.default_rng(random_seed)
    if structured:
        y, mean, means = _structured_draws(
            posterior, draws, X, groups, concomitant, rng, family, extra
        )
        return _predictive_dataset(posterior, y, mean, means)
    means, mean = mixture_means(draws, X)
    weights = draws["weights"] / draws["weights"].sum(axis=-1, keepdims=True)
    # one component per draw and row, by inverse CDF on the cumulative weights
    cum = np.cumsum(weights, axis=-1)  # (C, D, K)
    u = rng.random((C, D, X.shape[0]))
    z = (u[..., None] > cum[:, :, None, :]).sum(axis=-1)  # (C, D, n)
    z = np.minimum(z, K - 1)
    mu = np.take_along_axis(means, z[:, :, None, :], axis=2)[:, :, 0, :]
    sd = np.take_along_axis(draws["sigma"], z, axis=2)
    y = mu + sd * rng.standard_normal(mu.shape)
    return _predictive_dataset(posterior, y, mean, means)


def _family_rows_of_new(
    model: Any, X_new: Any, n: int, offset: Any, trials: Any
) -> tuple[Any, Any]:
    """The family of ``model`` and the row columns ``(n, m)`` of the new rows (both None for
    Gaussian components without offset or trials)."""
    from bayes_mlr.bayes.families import family_of, row_columns

    family = family_of(model)
    if family.name == "gaussian" and offset is None and trials is None:
        return None, None
    offset, trials = model._family_data_of(X_new, offset, trials)
    # y = 0 is a valid response of every family; the constants it gives are not used here
    return family, row_columns(family, np.zeros(n), offset, trials)


def _structured_draws(
    posterior: Any,
    draws: dict[str, np.ndarray],
    X: np.ndarray,
    groups: Any,
    concomitant: Any,
    rng: np.random.Generator,
    family: Any = None,
    extra: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``y``, mixture mean ``(chain, draw, obs)`` and component means of a structured model:
    per-row prior weights from the concomitant model, one component per group, ``y`` from the
    component's ``family`` (with the row columns ``extra``; Gaussian when None)."""
    from bayes_mlr._validation import check_concomitant
    from bayes_mlr.core.grouping import Grouping, group_constant

    n = X.shape[0]
    C, D, K, _ = draws["coef"].shape
    grouping = Grouping(groups, n)
    eta = _linear_predictor(draws, X, family, extra)
    means = _component_means(draws, X, family, extra)
    post = posterior["posterior"]
    if concomitant is not None:
        W = group_constant(grouping, check_concomitant(concomitant, n)[0], "concomitant")
        a = post["concomitant_intercept"].transpose("chain", "draw", "component").to_numpy()
        g = post["concomitant_coef"].transpose("chain", "draw", "component", ...).to_numpy()
        if g.shape[-1] != W.shape[1]:
            raise ValueError(
                f"concomitant has {W.shape[1]} column(s); the posterior has {g.shape[-1]}"
            )
        eta = a[:, :, None, :] + np.einsum("gr,cdkr->cdgk", W, g)  # (C, D, G, K)
        eta -= eta.max(axis=-1, keepdims=True)
        pi = np.exp(eta)
    else:
        pi = np.broadcast_to(draws["weights"][:, :, None, :], (C, D, grouping.n_groups, K))
    pi = pi / pi.sum(axis=-1, keepdims=True)
    rows = grouping.index
    mean = np.einsum("cdnk,cdkn->cdn", pi[:, :, rows, :], means)
    cum = np.cumsum(pi, axis=-1)
    u = rng.random((C, D, grouping.n_groups))
    z = np.minimum((u[..., None] > cum).sum(axis=-1), K - 1)[:, :, rows]  # (C, D, n)
    if family is not None and family.name != "gaussian":
        from bayes_mlr.bayes.families import draw

        pick = {k: np.take_along_axis(draws[k], z, axis=2) for k in ("sigma", "df") if k in draws}
        eta_z = np.take_along_axis(eta, z[:, :, None, :], axis=2)[:, :, 0, :]
        y = draw(family, eta_z, extra, pick.get("sigma"), pick.get("df"), rng)
        return y, mean, means
    mu = np.take_along_axis(means, z[:, :, None, :], axis=2)[:, :, 0, :]
    sd = np.take_along_axis(draws["sigma"], z, axis=2)
    return mu + sd * rng.standard_normal(mu.shape), mean, means


def _predictive_dataset(posterior: Any, y: np.ndarray, mean: np.ndarray, means: np.ndarray):
    import xarray as xr

    C, D, n = y.shape
    obs = np.arange(n)
    component = posterior["posterior"]["coef"]["component"].values
    return xr.Dataset(
        {
            "y": (("chain", "draw", "obs"), y),
            "mean": (("chain", "draw", "obs"), mean),
            "component_mean": (("chain", "draw", "component", "obs"), means),
        },
        coords={
            "chain": np.arange(C),
            "draw": np.arange(D),
            "component": component,
            "obs": obs,
        },
    )


def predictive_interval(predictive: Any, prob: float = 0.94) -> pd.DataFrame:
    """Per new row: the predictive mean, sd and central ``prob`` interval of ``y``.

    Parameters
    ----------
    predictive : xarray.Dataset
        From :func:`posterior_predictive`.
    prob : float, default=0.94
        Coverage of the equal-tailed interval.

    Returns
    -------
    pandas.DataFrame
        Index ``obs``; columns ``mean``, ``sd``, ``lower``, ``upper`` of the predictive
        distribution of ``y``, and ``mean_lower``, ``mean_upper``: the interval of the
        mixture mean E[y | x] (uncertainty of the regression, without the noise).
    """
    if not 0.0 < float(prob) < 1.0:
        raise ValueError(f"prob must be in (0, 1); got {prob!r}")
    tail = (1.0 - prob) / 2.0
    y = predictive["y"].to_numpy().reshape(-1, predictive.sizes["obs"])
    m = predictive["mean"].to_numpy().reshape(-1, predictive.sizes["obs"])
    lower, upper = np.quantile(y, [tail, 1.0 - tail], axis=0)
    m_lower, m_upper = np.quantile(m, [tail, 1.0 - tail], axis=0)
    return pd.DataFrame(
        {
            "mean": y.mean(axis=0),
            "sd": y.std(axis=0),
            "lower": lower,
            "upper": upper,
            "mean_lower": m_lower,
            "mean_upper": m_upper,
        },
        index=pd.Index(predictive["obs"].values, name="obs"),
    )
