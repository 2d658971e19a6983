"""Bootstrap standard errors of a fitted mixture, with every replicate's labels aligned.

Each replicate refits EM from the fit's own estimate (so it stays in the fit's basin), then its
components are matched to the fit's by the Hungarian assignment of :mod:`bayes_mlr.core.labels`:
label switching across replicates is the known trap of bootstrapping a mixture (flexmix's
bootstrap vignette), and an unaligned bootstrap SE mixes components.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from bayes_mlr.core.labels import apply_permutations, component_features, match_components
from bayes_mlr.exceptions import ConvergenceWarning, DegenerateFitWarning
from bayes_mlr.simulate import draw_response

__all__ = ["BOOTSTRAP_KINDS", "bootstrap_standard_errors"]

BOOTSTRAP_KINDS = ("parametric", "empirical")
_PARAMS = ("weights", "intercept", "coef", "sigma")


class BootstrapWarning(UserWarning):
    """Many bootstrap replicates failed or ended degenerate or spurious."""


def _frozen(value: np.ndarray) -> np.ndarray:
    out = np.array(value, dtype=float)
    out.setflags(write=False)
    return out


def bootstrap_standard_errors(
    model: Any, n_boot: int = 100, kind: str = "parametric", random_state: Any = None
) -> dict[str, np.ndarray]:
    """Bootstrap standard errors of a fitted :class:`~bayes_mlr.MixtureOfRegressions`.

    Parameters
    ----------
    model : MixtureOfRegressions
        A fitted estimator (its training data are reused).
    n_boot : int, default=100
        Replicates.
    kind : {"parametric", "empirical"}, default="parametric"
        ``"parametric"``: new responses drawn from the fitted mixture at the training X;
        ``"empirical"``: rows resampled with replacement (with sample weights, with
        probability proportional to them).
    random_state : int, numpy Generator or None

    Returns
    -------
    dict of str to ndarray
        The keys and shapes of ``standard_errors_``: ``weights`` (K,), ``intercept`` (K,),
        ``coef`` (K, p), ``sigma`` (K,), read-only: the standard deviation over the aligned
        replicates that neither failed nor ended degenerate or spurious.

    Raises
    ------
    NotImplementedError
        For a model with groups, concomitant variables, shared coefficients or a family other
        than the Gaussian (the replicates would refit a different model).

    Warns
    -----
    BootstrapWarning
        When more than a tenth of the replicates were left out.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 2:
        raise ValueError(f"n_boot must be an integer >= 2; got {n_boot!r}.")
    if not isinstance(kind, str) or kind not in BOOTSTRAP_KINDS:
        raise ValueError(f"kind must be one of {BOOTSTRAP_KINDS}; got {kind!r}.")
    model._check_fitted()
    if model.result_.structured:
        raise NotImplementedError(
            "bootstrap_standard_errors refits the plain Gaussian mixture: it does not redraw "
            "groups, concomitant variables, shared coefficients, offsets or trials, nor "
            f"responses of the {model.result_.family.name!r} family. Use standard_errors_ (the "
            "observed information of the whole model) or sample_posterior()."
        )
    rng = np.random.default_rng(random_state)
    X, y, sw = model._fit_X, model._fit_y, model._fit_sample_weight
    n, K = X.shape[0], model.n_components_
    fitted = {name: np.asarray(getattr(model, f"{name}_")) for name in _PARAMS}
    reference = component_features(fitted, K)
    se = model.standard_errors_
    scale = component_features({k: se[k] for k in _PARAMS}, K)
    # Align on the standard errors; where one is not finite, on the spread of that feature
    # across the components (any positive scale gives a valid assignment, this one is
    # invariant to units).
    spread = np.broadcast_to(reference.std(axis=0), reference.shape)
    spread = np.where(spread > 0, spread, 1.0)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, spread)
    settings = {
        "variance": model.variance,
        "sigma": model.sigma,
        "fit_intercept": model.fit_intercept,
        "max_iter": model.max_iter,
        "tol": model.tol,
        "init": model.result_,
        "n_init": 1,
    }
    draws = {name: [] for name in _PARAMS}
    left_out = 0
    for _ in range(n_boot):
        if kind == "parametric":
            Xb, yb, wb = X, draw_response(fitted, X, rng), sw
        else:
            p = None if sw is None else sw / sw.sum()
            rows = rng.choice(n, size=n, replace=True, p=p)
            Xb, yb, wb = X[rows], y[rows], None
        try:
            with warnings.catch_warnings():
                # counted below as left-out replicates, not printed once per replicate
                warnings.simplefilter("ignore", DegenerateFitWarning)
                warnings.simplefilter("ignore", ConvergenceWarning)
                rep = type(model)(K, **settings).fit(Xb, yb, sample_weight=wb)
        except (ValueError, np.linalg.LinAlgError):
            left_out += 1
            continue
        if rep.result_.degenerate or rep.result_.spurious or rep.n_components_ != K:
            left_out += 1
            continue
        params = {name: np.asarray(getattr(rep, f"{name}_")) for name in _PARAMS}
        perm = match_components(component_features(params, K), reference, scale)
        for name in _PARAMS:  # axis 1: the component axis after the leading batch axis
            draws[name].append(apply_permutations(params[name][None], perm[None], 1)[0])
    kept = n_boot - left_out
    if left_out > 0.1 * n_boot:
        warnings.warn(
            f"{left_out} of {n_boot} bootstrap replicates failed or ended degenerate or "
            "spurious and were left out; the bootstrap standard errors rest on the other "
            f"{kept}.",
            BootstrapWarning,
            stacklevel=3,
        )
    if kept < 2:
        return {name: _frozen(np.full(fitted[name].shape, np.nan)) for name in _PARAMS}
    return {name: _frozen(np.std(np.stack(draws[name]), axis=0, ddof=1)) for name in _PARAMS}
