"""The Bayesian layer.

Only :mod:`~bayes_mlr.bayes.model` (the PyMC model and ``sample_posterior``),
:mod:`~bayes_mlr.bayes.structured` (the same for concomitant, grouped and shared
models and for Poisson, binomial and Student-t components),
:mod:`~bayes_mlr.bayes.sampling` (the back-ends and the machinery both share),
:mod:`~bayes_mlr.bayes.mixture_op`, :mod:`~bayes_mlr.bayes.approx` and
:mod:`~bayes_mlr.bayes.diagnostics` import PyMC, PyTensor or ArviZ; this package's ``__init__``
imports none of them, so the numpy modules here (:mod:`~bayes_mlr.bayes.priors`,
:mod:`~bayes_mlr.bayes.starts`, :mod:`~bayes_mlr.bayes.modes`, :mod:`~bayes_mlr.bayes.stephens`,
:mod:`~bayes_mlr.bayes.predictive`, :mod:`~bayes_mlr.bayes.sparse`) load without them;
:mod:`~bayes_mlr.bayes.families` (the component families' densities in PyTensor, their draws in
numpy) imports PyTensor only when a density is built.
"""
