"""bayes_mlr: mixtures of linear regressions by soft EM, with an honest Bayesian posterior.

The EM core (:func:`fit_em`, :class:`MixtureOfRegressions`) is plain numpy/scipy and imports in a
blink. The Bayesian layer (PyMC and ArviZ) loads lazily, on first use of its names.
"""

from __future__ import annotations

import importlib
from typing import Any

from bayes_mlr._version import __version__
from bayes_mlr.core.components import Binomial, Gaussian, Poisson, StudentT
from bayes_mlr.core.em import fit_em
from bayes_mlr.core.labels import LabelSwitchingWarning
from bayes_mlr.core.structured import fit_structured
from bayes_mlr.estimator import MixtureOfRegressions
from bayes_mlr.exceptions import (
    ConvergenceWarning,
    DegenerateFitWarning,
    MultimodalPosteriorWarning,
    NotFittedError,
    SeparationWarning,
    SpuriousFitWarning,
)
from bayes_mlr.frequentist.information import SingularInformationWarning
from bayes_mlr.frequentist.selection import BootstrapLRT, bootstrap_lrt, select_n_components
from bayes_mlr.results import EMProgress, EMResult
from bayes_mlr.simulate import simulate

# Names served lazily: importing them pulls in PyMC / ArviZ, so only on first access.
_LAZY = {
    "build_model": "bayes_mlr.bayes.model",
    "default_priors": "bayes_mlr.bayes.priors",
    "sample_posterior": "bayes_mlr.bayes.posterior",
    "align_posterior": "bayes_mlr.bayes.model",
    "approximate_posterior": "bayes_mlr.bayes.approx",
    "compare_em_posterior": "bayes_mlr.bayes.diagnostics",
    "compare_n_components": "bayes_mlr.bayes.diagnostics",
    "diagnose": "bayes_mlr.bayes.diagnostics",
    "summarise_modes": "bayes_mlr.bayes.diagnostics",
    "posterior_membership": "bayes_mlr.bayes.diagnostics",
    "posterior_n_components": "bayes_mlr.bayes.sparse",
    "posterior_predictive": "bayes_mlr.bayes.predictive",
    "predictive_interval": "bayes_mlr.bayes.predictive",
}

__all__ = [
    "Binomial",
    "BootstrapLRT",
    "ConvergenceWarning",
    "DegenerateFitWarning",
    "EMProgress",
    "EMResult",
    "Gaussian",
    "LabelSwitchingWarning",
    "MixtureOfRegressions",
    "MultimodalPosteriorWarning",
    "NotFittedError",
    "Poisson",
    "SeparationWarning",
    "SingularInformationWarning",
    "SpuriousFitWarning",
    "StudentT",
    "__version__",
    "bootstrap_lrt",
    "fit_em",
    "fit_structured",
    "select_n_components",
    "simulate",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bayes_mlr' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
