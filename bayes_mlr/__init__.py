"""bayes_mlr: mixtures of linear regressions by soft EM, with an honest Bayesian posterior.

The EM core (:func:`fit_em`, :class:`MixtureOfRegressions`) is plain numpy/scipy and imports in a
blink. The Bayesian layer (PyMC and ArviZ) loads lazily, on first use of its names.
"""

from __future__ import annotations

import importlib
from typing import Any

from .em import fit_em
from .estimator import MixtureOfRegressions
from .exceptions import (
    ConvergenceWarning,
    DegenerateFitWarning,
    MultimodalPosteriorWarning,
    NotFittedError,
    SpuriousFitWarning,
)
from .inference import SingularInformationWarning
from .labels import LabelSwitchingWarning
from .results import EMProgress, EMResult
from .selection import BootstrapLRT, bootstrap_lrt, select_n_components
from .simulate import simulate

__version__ = "0.1.0"

# Names served lazily: importing them pulls in PyMC / ArviZ, so only on first access.
_LAZY = {
    "build_model": "bayes_mlr.bayes",
    "default_priors": "bayes_mlr.priors",
    "sample_posterior": "bayes_mlr.bayes",
    "align_posterior": "bayes_mlr.bayes",
    "approximate_posterior": "bayes_mlr.approx",
    "compare_em_posterior": "bayes_mlr.diagnostics",
    "compare_n_components": "bayes_mlr.diagnostics",
    "diagnose": "bayes_mlr.diagnostics",
    "summarise_modes": "bayes_mlr.diagnostics",
    "posterior_membership": "bayes_mlr.diagnostics",
    "posterior_n_components": "bayes_mlr.sparse",
    "posterior_predictive": "bayes_mlr.predictive",
    "predictive_interval": "bayes_mlr.predictive",
}

__all__ = [
    "BootstrapLRT",
    "ConvergenceWarning",
    "DegenerateFitWarning",
    "EMProgress",
    "EMResult",
    "LabelSwitchingWarning",
    "MixtureOfRegressions",
    "MultimodalPosteriorWarning",
    "NotFittedError",
    "SingularInformationWarning",
    "SpuriousFitWarning",
    "__version__",
    "bootstrap_lrt",
    "fit_em",
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
