"""``sample_posterior``: the one entry point of the posterior, whichever sampler runs it.

NUTS (PyMC, nutpie, numpyro) runs in :mod:`bayes_mlr.bayes.model` (and
:mod:`bayes_mlr.bayes.structured`); the data-augmentation Gibbs sampler in
:mod:`bayes_mlr.bayes.gibbs`, which itself uses the NUTS path's model, starts and relabelling.
The choice is made here, above both, so that neither imports the other back.
"""

from __future__ import annotations

from typing import Any

from bayes_mlr.bayes import model as _nuts

__all__ = ["sample_posterior"]


def sample_posterior(
    model: Any,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    *,
    sampler: str = "auto",
    **kwargs: Any,
):
    if sampler == "gibbs":
        from bayes_mlr.bayes.gibbs import sample_gibbs

        return sample_gibbs(model, draws, tune, chains, **kwargs)
    return _nuts.sample_posterior(model, draws, tune, chains, sampler=sampler, **kwargs)


sample_posterior.__doc__ = _nuts.sample_posterior.__doc__
