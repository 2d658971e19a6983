"""Benchmarks of bayes_mlr (figures and ratios, not pass/fail).

Run them all with ``make bench`` (``python -m tests.benchmarks``) or one alone with
``python -m tests.benchmarks.bench_em``. Every ``bench_*.py`` module here exposes
``main(argv=None) -> dict`` returning its key figures; the runner discovers such modules by name.
"""
