"""Approximate (variational) posterior of a mixture of regressions: ADVI, started from EM.

This is **not MCMC**. It is the quick alternative for data sets where NUTS
(:func:`bayes_mlr.sample_posterior`) takes longer than you can wait. The result is labelled as
an approximation (``posterior.attrs["approximation"]``) and has no convergence diagnostics:
R-hat and ESS mean nothing for independent draws from a fitted Gaussian.

Imported lazily, like :mod:`bayes_mlr.bayes.model` (it imports PyMC).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pymc as pm
import xarray as xr
from pymc.blocking import DictToArrayBijection

from bayes_mlr.bayes.families import family_of
from bayes_mlr.bayes.model import (
    _add_log_likelihood,
    _align_to_em,
    _build,
    _compile_kwargs,
    _em_dataset,
    _em_values,
    _hessian_covariance,
    _is_structured,
    _logp_dlogp,
    _prior_record,
    _problem,
    _value_vars_and_point,
    em_initial_point,
)

__all__ = ["METHODS", "approximate_posterior"]

#: The variational families, with the label written into ``posterior.attrs["approximation"]``.
METHODS: dict[str, str] = {
    "advi": "mean-field ADVI (variational; not MCMC)",
    "fullrank_advi": "full-rank ADVI (variational; not MCMC)",
}

#: Optimiser step as a fraction of the narrowest Laplace standard deviation (capped at 1e-3).
LEARNING_RATE_FRACTION = 0.05


def _inverse_softplus(x: np.ndarray) -> np.ndarray:
    """PyMC stores ADVI standard deviations as ``rho`` with ``sd = log1p(exp(rho))``."""
    return np.log(np.expm1(x))


def _initialise_from_em(
    inference: Any, pm_model: pm.Model, start: dict[str, np.ndarray]
) -> np.ndarray:
    """Start the variational Gaussian at EM: mean at the EM point, spread from its curvature.

    PyMC starts every ADVI at unit standard deviation on the unconstrained scale, far wider
    than the posterior of even a few thousand observations; the optimiser then needs many
    thousands of steps to shrink it (measured: at n = 3000 the default start was still wrong
    after 2000 steps). The inverse Hessian of the log-posterior at EM (the Laplace
    approximation) is a start one optimiser step from the answer: full-rank ADVI takes its
    Cholesky factor, mean-field ADVI the conditional standard deviations
    ``1 / sqrt(diag(-H))`` (the mean-field optimum for a Gaussian target).

    Returns the Laplace standard deviations (unconstrained scale), which set the step size.
    """
    (group,) = inference.approx.groups
    names = list(group.ordering)  # the flat layout of the variational parameters
    by_value_name = {pm_model.rvs_to_values[rv].name: rv for rv in pm_model.free_RVs}
    _, point = _value_vars_and_point(pm_model, start)
    point = {name: point[name] for name in names}
    _, func = _logp_dlogp(pm_model, [by_value_name[name] for name in names], point)
    x0 = DictToArrayBijection.map(point).data
    cov = _hessian_covariance(func, x0)
    params = group.params_dict
    params["mu"].set_value(x0)
    if "L_tril" in params:
        chol = np.linalg.cholesky(cov)
        diag = np.diag_indices_from(chol)
        chol[diag] = _inverse_softplus(chol[diag])  # PyMC applies softplus to the diagonal
        params["L_tril"].set_value(chol[np.tril_indices_from(chol)])
    else:
        sd = 1.0 / np.sqrt(np.diag(np.linalg.inv(cov)))
        params["rho"].set_value(_inverse_softplus(sd))
    return np.sqrt(np.diag(cov))


class _IterateAverage:
    """Polyak averaging: replace the variational parameters by their mean over the last half.

    A stochastic optimiser's last iterate jitters around the optimum by a few step sizes; the
    average of the iterates does not (measured at n = 3000: a sigma mean 0.24 NUTS sd off
    with the last iterate). Called by PyMC after every step as ``callback(approx, loss, i)``.
    """

    def __init__(self, approx: Any, first: int):
        self.params = [p for group in approx.groups for p in group.params]
        self.first = first
        self.sums = [np.zeros_like(p.get_value()) for p in self.params]
        self.count = 0

    def __call__(self, approx: Any, loss: Any, i: int) -> None:
        if i >= self.first:
            for total, param in zip(self.sums, self.params, strict=True):
                total += param.get_value(borrow=True)
            self.count += 1

    def apply(self) -> None:
        if self.count:
            for total, param in zip(self.sums, self.params, strict=True):
                param.set_value(total / self.count)


def approximate_posterior(
    model: Any,
    draws: int = 1000,
    *,
    method: str = "fullrank_advi",
    n_iter: int = 3000,
    random_seed: int | None = None,
    progressbar: bool = True,
    priors: Mapping[str, Mapping[str, Any]] | None = None,
    log_likelihood: bool = True,
) -> xr.DataTree:
    """Approximate the posterior by ADVI started at the EM estimate (variational, not MCMC).

    Fits a Gaussian on the unconstrained scale (simplex-transformed ``weights``, log
    ``sigma``) by maximising the ELBO of the same model :func:`~bayes_mlr.sample_posterior`
    samples (:func:`~bayes_mlr.build_model`), then draws independent samples from it. The
    Gaussian starts at the EM estimate with the spread of the Laplace approximation there, so
    a modest ``n_iter`` suffices. Draws are relabelled to the EM labelling
    (:func:`~bayes_mlr.align_posterior`).

    When to use it: for a quick look, or when ``n`` is so large that NUTS takes longer than
    you can wait (NUTS costs a few hundred gradient evaluations per effective draw; ADVI
    ``n_iter`` in all). When NUTS is affordable, prefer it.

    Caveats: variational posteriors *under-state* uncertainty, mean-field ADVI (``"advi"``)
    most, since it ignores correlations between parameters (e.g. between an intercept and its
    slopes when features are not centred); full-rank ADVI captures linear correlations but
    not skewness (small components' ``weights`` and ``sigma``). Treat intervals as optimistic
    and check against NUTS on a subsample when decisions depend on them. There are no
    convergence diagnostics: :func:`~bayes_mlr.diagnose` (R-hat, ESS) does not apply to one
    set of independent draws.

    Parameters
    ----------
    model : MixtureOfRegressions
        A fitted estimator; its training data and settings define the model.
    draws : int
        Samples drawn from the fitted approximation (one chain).
    method : {"fullrank_advi", "advi"}
        Full-rank (correlated Gaussian) or mean-field (independent Gaussians) ADVI.
    n_iter : int
        Optimisation steps (PyMC's default ``adagrad_window`` optimiser; one Monte Carlo
        sample of the ELBO gradient per step, costing one gradient evaluation over all ``n``
        observations). The EM start with the Laplace spread is close to the optimum, so a few
        thousand suffice (measured: 2000 steps matched NUTS at n = 3000 and n = 100,000; the
        loss history, ``initial_loss`` versus ``final_loss``, shows whether it still moves).
        The step size is 5% of the narrowest Laplace standard deviation (at most PyMC's
        default 1e-3): larger steps leave the final mean jittering by a sizeable fraction of a
        posterior sd at large ``n``. The returned approximation averages the variational
        parameters over the last half of the steps (Polyak averaging).
    random_seed : int, optional
    progressbar : bool
    priors : dict, optional
        Overrides of the default priors (:func:`~bayes_mlr.default_priors`).
    log_likelihood : bool
        Store the pointwise log-likelihood (group ``log_likelihood``, dims
        ``(chain, draw, obs)``: ``draws * n`` numbers; turn off for very large ``n``).

    Returns
    -------
    xarray.DataTree
        Groups ``posterior`` (``weights`` (chain=1, draw, component), ``intercept``,
        ``coef`` (chain, draw, component, feature), ``sigma``), ``sample_stats`` (only
        ``relabelled``), ``observed_data``, ``constant_data``, ``em`` and, if asked,
        ``log_likelihood``. ``posterior.attrs``: ``approximation`` (e.g.
        ``"full-rank ADVI (variational; not MCMC)"``), ``method``, ``n_iter``,
        ``final_loss`` (negative ELBO, mean of the last 100 steps), ``initial_loss`` (mean of
        the first 100), ``learning_rate``, ``fit_wall_time``, ``variance``, ``fit_intercept``
        (0/1), ``relabelled_fraction`` and ``priors`` (JSON, as in
        :func:`bayes_mlr.bayes.model.sample_posterior`).

    Raises
    ------
    ValueError
        Unknown ``method``, ``draws`` or ``n_iter`` below 1, or an unfitted estimator.
    NotImplementedError
        A model with concomitant variables, groups or shared coefficients, or with Poisson,
        binomial or Student-t components (the approximation is written for the plain Gaussian
        mixture's fused likelihood).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {list(METHODS)}")
    if draws < 1 or n_iter < 1:
        raise ValueError("draws and n_iter must be >= 1")
    family = family_of(model)
    if family.name != "gaussian":
        raise NotImplementedError(
            f"approximate_posterior supports Gaussian components only, not family="
            f"{family.name!r}: it is built on the plain Gaussian mixture's fused likelihood and "
            "its EM curvature. Use sample_posterior for this model (NUTS, started at EM)"
        )
    if _is_structured(model):
        raise NotImplementedError(
            "approximate_posterior supports the plain mixture only, not concomitant variables, "
            "groups or shared coefficients: use sample_posterior for this model"
        )
    em = _em_values(model)
    problem = _problem(model)
    pm_model = _build(problem, priors)
    start = em_initial_point(model, pm_model)
    t0 = time.perf_counter()
    with pm_model:
        family = pm.FullRankADVI if method == "fullrank_advi" else pm.ADVI
        inference = family(start=start, random_seed=random_seed)
        laplace_sd = _initialise_from_em(inference, pm_model, start)
        # adagrad_window moves every parameter by about `learning_rate` per step whatever the
        # gradient's size, so PyMC's default 1e-3 makes the mean random-walk by a third of a
        # posterior sd at n = 100,000 (sd ~ 0.003); scale the step to the narrowest sd.
        learning_rate = min(1e-3, LEARNING_RATE_FRACTION * float(laplace_sd.min()))
        averager = _IterateAverage(inference.approx, first=n_iter // 2)
        approx = inference.fit(
            n_iter,
            progressbar=progressbar,
            obj_optimizer=pm.adagrad_window(learning_rate=learning_rate),
            callbacks=[averager],
            compile_kwargs=_compile_kwargs() or None,
        )
        averager.apply()
    wall = time.perf_counter() - t0
    idata = approx.sample(draws, random_seed=random_seed, return_inferencedata=True)
    idata = _align_to_em(idata, model, em, problem)
    if log_likelihood:
        idata = _add_log_likelihood(idata, pm_model)
    idata["em"] = xr.DataTree(_em_dataset(model, problem))
    loss = np.asarray(approx.hist, dtype=float)
    window = min(100, loss.size)
    idata["posterior"].attrs.update(
        approximation=METHODS[method],
        method=method,
        n_iter=int(loss.size),
        initial_loss=float(loss[:window].mean()),
        final_loss=float(loss[-window:].mean()),
        learning_rate=learning_rate,
        fit_wall_time=wall,
        variance=problem.variance,
        fit_intercept=int(problem.fit_intercept),
        priors=json.dumps(_prior_record(problem, priors)),
    )
    return idata
