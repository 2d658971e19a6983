"""The user path: specs, runs, files, figures and the command line.

- :mod:`~bayes_mlr.workflow.spec`: TOML model specs;
- :mod:`~bayes_mlr.workflow.run`: fitting a spec end to end;
- :mod:`~bayes_mlr.workflow.io`: JSON / netCDF save and load, atomic writes;
- :mod:`~bayes_mlr.workflow.plots`, :mod:`~bayes_mlr.workflow.report`: figures and the report;
- :mod:`~bayes_mlr.workflow.cli`: the ``bayes-mlr`` command.
"""
