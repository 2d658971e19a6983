"""The EM core and its models (plain numpy/scipy).

- :mod:`~bayes_mlr.core.em`: the EM loop, restarts and initialisations, and :func:`fit_em`;
- :mod:`~bayes_mlr.core.stats`: sufficient statistics of one E-step over row blocks;
- :mod:`~bayes_mlr.core.data`, :mod:`~bayes_mlr.core.dask_data`: the data sources an EM run
  reads (in memory, memory-mapped, Dask);
- :mod:`~bayes_mlr.core.spurious`: the rule that flags spurious components;
- :mod:`~bayes_mlr.core.labels`: matching component labels between fits and draws.
"""
