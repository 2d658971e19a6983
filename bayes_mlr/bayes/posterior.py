"""``sample_posterior``: the one entry point of the posterior, whichever sampler runs it.

NUTS (PyMC, nutpie, numpyro) runs in :mod:`bayes_mlr.bayes.model` (and
:mod:`bayes_mlr.bayes.structured`); the data-augmentation Gibbs sampler in
:mod:`bayes_mlr.bayes.gibbs`, which itself uses the NUTS path's model, starts and relabelling.
The choice is made here, above both, so that neither imports the other back.

``sampler="auto"`` picks the Gibbs sampler where it is exact and was measured faster: Gaussian
components with constant weights, integer (or no) sample weights, no PyMC model or PyMC
sampling arguments of the caller's, and at least ``GIBBS_AUTO_MIN_ROWS`` rows. Measured once by
hand on ``bench_gibbs``'s problem (K = 3, 3 features, 4 x (1000 + 1000), defaults, a shared
2-core machine), min bulk ESS per second of Gibbs against PyMC's NUTS: 111 against 327 at
n = 300 (the Laplace proposal is poor there: acceptance 0.27), 615 against 821 at n = 2,000,
and at n = 20,000 about 3 times NUTS's (``make bench``: ``bench_gibbs`` and ``bench_sampling``
print both against one baseline). Elsewhere ``"auto"`` is PyMC's NUTS.
"""

from __future__ import annotations

import inspect
from typing import Any

from bayes_mlr.bayes import model as _nuts

__all__ = ["GIBBS_AUTO_MIN_ROWS", "auto_sampler", "sample_posterior"]

#: ``sampler="auto"`` runs the Gibbs sampler from this many training rows on (where it covers
#: the model): see the module docstring for the measurements behind it.
GIBBS_AUTO_MIN_ROWS = 10_000


def auto_sampler(model: Any, **kwargs: Any) -> str:
    """The sampler ``sampler="auto"`` runs for ``model`` with these keyword arguments of
    :func:`sample_posterior`: ``"gibbs"`` or ``"pymc"`` (see the module docstring)."""
    from bayes_mlr.bayes.gibbs import gibbs_supported, non_integer_weights, sample_gibbs

    if kwargs.get("pm_model") is not None:
        return "pymc"
    accepted = set(inspect.signature(sample_gibbs).parameters) - {"model", "kwargs"}
    if set(kwargs) - accepted:  # PyMC's own sampling arguments
        return "pymc"
    if not gibbs_supported(model)[0]:
        return "pymc"
    X = getattr(model, "_fit_X", None)
    if X is None or int(X.shape[0]) < GIBBS_AUTO_MIN_ROWS:
        return "pymc"
    if non_integer_weights(getattr(model, "_fit_sample_weight", None)):
        return "pymc"
    return "gibbs"


def sample_posterior(
    model: Any,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    *,
    sampler: str = "auto",
    **kwargs: Any,
):
    if sampler == "auto" and auto_sampler(model, **kwargs) == "gibbs":
        sampler = "gibbs"
    if sampler == "gibbs":
        from bayes_mlr.bayes.gibbs import sample_gibbs

        return sample_gibbs(model, draws, tune, chains, **kwargs)
    return _nuts.sample_posterior(model, draws, tune, chains, sampler=sampler, **kwargs)


sample_posterior.__doc__ = _nuts.sample_posterior.__doc__
