"""Frequentist inference on an EM fit (numpy/scipy).

- :mod:`~bayes_mlr.frequentist.information`: observed information, standard errors, BIC/AIC/ICL;
- :mod:`~bayes_mlr.frequentist.bootstrap`: bootstrap standard errors;
- :mod:`~bayes_mlr.frequentist.selection`: choosing K (criteria tables, bootstrap LRT);
- :mod:`~bayes_mlr.frequentist.summary`: the coefficient table of ``summary()``.
"""
