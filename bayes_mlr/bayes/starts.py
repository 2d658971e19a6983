"""Where the chains of :func:`bayes_mlr.sample_posterior` start.

``starts="em"`` starts every chain at the EM estimate. ``starts="dispersed"`` (the default)
looks for the other modes a mixture posterior may have:

1. **Distinct optima.** The EM fit's restarts keep the distinct optima they reached
   (:attr:`bayes_mlr.EMResult.optima`). On data of at most ``SEARCH_MAX_ROWS`` rows a search
   adds ``SEARCH_STARTS`` more minimal-subset EM starts (RANSAC-style, see
   ``init="subsets"``), which reach narrow-basin optima, such as a line that many rows share
   exactly, that the fit's own starts can miss. Optima that are degenerate or spurious are
   left out, and so are those whose log-likelihood lies more than ``LL_WINDOW_PER_PARAMETER``
   per free parameter below the best: such a mode would need every parameter spread about
   e^2 = 7 times wider than the best mode's to hold a share of the mass worth a chain.
2. **One chain per optimum**, the fit's estimate first, then the others by decreasing
   log-likelihood, as far as there are chains.
3. **Over-dispersed starts** for the remaining chains: an optimum (in turn, the fit's first)
   moved by a normal draw with ``DISPERSION`` times the EM standard errors, on the
   unconstrained scale (log sigma, log weight ratios), so that those chains start well
   outside the bulk of their mode (Gelman & Rubin 1992).

numpy only (the search is EM); :mod:`bayes_mlr.bayes.model` turns the starts into PyMC points.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DISPERSION",
    "LL_WINDOW_PER_PARAMETER",
    "SEARCH_MAX_ROWS",
    "SEARCH_STARTS",
    "STARTS",
    "Start",
    "chain_starts",
    "em_optima",
]

#: The start strategies of :func:`bayes_mlr.sample_posterior`.
STARTS = ("dispersed", "em")
#: Minimal-subset EM starts of the search for other optima.
SEARCH_STARTS = 20
#: The search runs on data of at most this many rows (beyond, each start is a full EM run on
#: all rows and the fit's own optima are used alone).
SEARCH_MAX_ROWS = 40_000
#: Optima more than this many log-likelihood units per free parameter below the best get no
#: chain (see the module docstring).
LL_WINDOW_PER_PARAMETER = 2.0
#: Over-dispersed starts sit this many EM standard errors from their optimum (per parameter,
#: on the unconstrained scale).
DISPERSION = 2.0
_PARAMS = ("weights", "intercept", "coef", "sigma")


@dataclass(frozen=True)
class Start:
    """The start of one chain.

    Attributes
    ----------
    values : dict of str to ndarray
        ``weights`` (K,), ``intercept`` (K,), ``coef`` (K, p), ``sigma`` (K,).
    source : str
        ``"EM estimate"``, ``"EM optimum 1 (log-likelihood 145.42, found by the search)"``
        or ``"over-dispersed around EM optimum 0"``.
    optimum : int
        The index, in the list of :func:`em_optima`, of the optimum it is at or near.
    """

    values: dict[str, np.ndarray]
    source: str
    optimum: int


def _values(obj: Any, suffix: str = "") -> dict[str, np.ndarray]:
    return {name: np.asarray(getattr(obj, name + suffix), dtype=float) for name in _PARAMS}


def _regular(optimum: Any) -> bool:
    return not optimum.degenerate and not bool(np.any(optimum.spurious_components))


def em_optima(model: Any, *, search: bool = True, random_state: Any = None) -> list[dict]:
    """The distinct regular EM optima of ``model``'s data: the fit's first, then by log-likelihood.

    Parameters
    ----------
    model : MixtureOfRegressions
        Fitted.
    search : bool, default=True
        Also run ``SEARCH_STARTS`` minimal-subset EM starts (on data of at most
        ``SEARCH_MAX_ROWS`` rows).
    random_state : int, numpy.random.Generator or None
        Seed of the search.

    Returns
    -------
    list of dict
        Each with ``weights``, ``intercept``, ``coef``, ``sigma``, ``log_likelihood``,
        ``n_runs`` and ``source`` (``"fit"`` or ``"search"``). Two optima whose
        log-likelihoods agree to ``OPTIMUM_LL_TOL`` per observation are one; optima more than
        ``LL_WINDOW_PER_PARAMETER`` per free parameter below the best are left out.

    Warns
    -----
    MultimodalPosteriorWarning
        The search found an optimum with a higher log-likelihood than the fit's.
    """
    from bayes_mlr.core.em import OPTIMUM_LL_TOL, fit_em
    from bayes_mlr.exceptions import MultimodalPosteriorWarning

    fit = {**_values(model, "_"), "log_likelihood": float(model.log_likelihood_)}
    fit.update(n_runs=None, source="fit")
    found: list[dict] = [fit]
    result = getattr(model, "result_", None)
    records = [(o, "fit") for o in (getattr(result, "optima", None) or ())]
    X, y = getattr(model, "_fit_X", None), getattr(model, "_fit_y", None)
    n_obs = float(np.size(y)) if y is not None else 1.0
    if search and X is not None and np.shape(X)[0] <= SEARCH_MAX_ROWS:
        with warnings.catch_warnings():
            # the search's own degenerate or spurious runs are expected and left out
            from bayes_mlr.exceptions import ConvergenceWarning, DegenerateFitWarning

            warnings.simplefilter("ignore", DegenerateFitWarning)
            warnings.simplefilter("ignore", ConvergenceWarning)
            searched = fit_em(
                X,
                y,
                int(model.n_components_),
                variance=model.variance,
                sigma=getattr(model, "sigma", None),
                fit_intercept=model.fit_intercept,
                sample_weight=getattr(model, "_fit_sample_weight", None),
                init="subsets",
                n_init=SEARCH_STARTS,
                max_iter=model.max_iter,
                tol=model.tol,
                random_state=random_state,
            )
        records += [(o, "search") for o in searched.optima]
    slack = OPTIMUM_LL_TOL * n_obs
    ordered = sorted(records, key=lambda r: -r[0].log_likelihood)
    top = max([fit["log_likelihood"]] + [o.log_likelihood for o, _ in ordered if _regular(o)])
    floor = top - LL_WINDOW_PER_PARAMETER * _n_parameters(model)
    for optimum, source in ordered:
        if not _regular(optimum) or optimum.log_likelihood < floor:
            continue
        if any(abs(optimum.log_likelihood - f["log_likelihood"]) <= slack for f in found):
            continue
        found.append(
            {
                **_values(optimum),
                "log_likelihood": float(optimum.log_likelihood),
                "n_runs": int(optimum.n_runs),
                "source": source,
            }
        )
    best = max(found, key=lambda f: f["log_likelihood"])
    if best is not fit:
        warnings.warn(
            f"EM's estimate (log-likelihood {fit['log_likelihood']:.2f}) is not the highest "
            f"optimum: the {best['source']} found one at {best['log_likelihood']:.2f}. Chains "
            "start at both; diagnose() reports the modes. Refit with more starts (n_init) to "
            "make that optimum the point estimate.",
            MultimodalPosteriorWarning,
            stacklevel=3,
        )
    return found


def _n_parameters(model: Any) -> int:
    """Free parameters of the fitted model (shared coefficients once, the concomitant model's
    (K - 1)(r + 1))."""
    return int(model.result_.n_parameters)


def _standard_errors(
    model: Any, extra: dict[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """EM standard errors, with 10% of each value in place of a NaN (singular information).

    Covers ``weights``, ``intercept``, ``coef`` and ``sigma`` (where the estimator has one:
    Poisson and binomial components have none) and, when given, the parameters of ``extra``
    (name: EM value, e.g. the concomitant coefficients of a structured model, Student-t
    ``df``).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            se = {k: np.asarray(v, dtype=float) for k, v in model.standard_errors_.items()}
        except (ValueError, np.linalg.LinAlgError):
            se = {}
    values = {
        name: np.asarray(getattr(model, f"{name}_"), dtype=float)
        for name in _PARAMS
        if hasattr(model, f"{name}_")
    }
    values.update(extra or {})
    out = {}
    for name, value in values.items():
        fallback = 0.1 * np.maximum(np.abs(value), 1e-3)
        s = se.get(name)
        out[name] = (
            fallback
            if s is None or s.shape != value.shape
            else np.where(np.isfinite(s) & (s > 0), s, fallback)
        )
    return out


def _over_dispersed(
    values: dict[str, np.ndarray], se: dict[str, np.ndarray], fit: dict, rng, variance: str
) -> dict[str, np.ndarray]:
    """``values`` moved by ``DISPERSION`` standard errors on the unconstrained scale.

    ``variance="none"`` (no ``sigma``: Poisson, binomial) leaves sigma out; Student-t ``df``
    (when in ``values``) moves on the log scale as sigma does, kept within the EM core's bounds
    ``[DF_MIN, DF_MAX]``."""
    z = DISPERSION
    out = {}
    # weights: log weights, relative SE se_w / w of the fit's weights
    rel_w = se["weights"] / np.maximum(fit["weights"], 1e-12)
    logw = np.log(np.maximum(values["weights"], 1e-12)) + z * rel_w * rng.standard_normal(
        values["weights"].shape
    )
    w = np.exp(logw - logw.max())
    out["weights"] = w / w.sum()
    out["intercept"] = values["intercept"] + z * se["intercept"] * rng.standard_normal(
        values["intercept"].shape
    )
    out["coef"] = values["coef"] + z * se["coef"] * rng.standard_normal(values["coef"].shape)
    if variance == "fixed":
        out["sigma"] = values["sigma"]
    elif variance != "none":
        rel_s = se["sigma"] / np.maximum(fit["sigma"], 1e-12)
        step = z * rel_s * rng.standard_normal(values["sigma"].shape)
        if variance == "shared":
            step = np.full_like(step, step[0])
        out["sigma"] = values["sigma"] * np.exp(step)
    if "df" in values:
        from bayes_mlr.core.components.student_t import DF_MAX, DF_MIN

        rel_df = se["df"] / np.maximum(fit["df"], 1e-12)
        step = z * rel_df * rng.standard_normal(values["df"].shape)
        out["df"] = np.clip(values["df"] * np.exp(step), DF_MIN, DF_MAX)
    return out


def _optimum_name(index: int, optimum: dict) -> str:
    where = ", found by the search" if optimum["source"] == "search" else ""
    return f"EM optimum {index} (log-likelihood {optimum['log_likelihood']:.2f}{where})"


def chain_starts(
    model: Any, chains: int, *, random_state: Any = None, search: bool = True
) -> tuple[list[Start], list[dict]]:
    """The dispersed starts of ``chains`` chains (see the module docstring).

    Parameters
    ----------
    model : MixtureOfRegressions
        Fitted.
    chains : int
    random_state : int, numpy.random.Generator or None
        Seed of the search and of the over-dispersed draws.
    search : bool, default=True
        Run the search for other optima (:func:`em_optima`).

    Returns
    -------
    starts : list of Start, length chains
    optima : list of dict
        From :func:`em_optima`.
    """
    rng = np.random.default_rng(random_state)
    optima = em_optima(model, search=search, random_state=rng)
    fit = optima[0]
    se = _standard_errors(model)
    starts: list[Start] = []
    for c in range(chains):
        if c < len(optima):
            o = optima[c]
            values = {k: np.array(o[k], dtype=float) for k in _PARAMS}
            source = "EM estimate" if c == 0 else _optimum_name(c, o)
            starts.append(Start(values, source, c))
        else:
            j = (c - len(optima)) % len(optima)
            o = optima[j]
            base = {k: np.array(o[k], dtype=float) for k in _PARAMS}
            values = _over_dispersed(base, se, fit, rng, model.variance)
            starts.append(Start(values, f"over-dispersed around EM optimum {j}", j))
    return starts, optima
