"""Smoke test of the benchmark harness (tests/benchmarks), so that it never rots.

Runs bench_em (also through the runner), bench_families, bench_dask, bench_sampling and
bench_gibbs on tiny problems without R. Takes some seconds (bench_dask, bench_sampling and
bench_gibbs about ten each); needs neither R nor flexmix.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from tests.benchmarks import __main__ as runner
from tests.benchmarks import _common, bench_dask, bench_em, bench_families, bench_gibbs

TINY = ["--n", "2000", "--repeats", "1", "--no-r"]


def _require_fit_em() -> None:
    fit_em, why = bench_em.load_fit_em()
    if fit_em is None:
        pytest.skip(f"bayes_mlr.fit_em is not importable yet: {why}")


def test_discovery_finds_bench_em() -> None:
    names = runner.discover()
    assert "bench_em" in names
    assert "bench_families" in names
    assert all(name.startswith("bench_") for name in names)
    assert runner.select(names, ["em"]) == [n for n in names if "em" in n]
    assert runner.select(names, ["no-such-benchmark"]) == []


def test_mixture_loglik_matches_single_gaussian() -> None:
    X, y = bench_em.simulate(50, seed=1)
    # One component with weight 1: a plain Gaussian regression log-likelihood.
    coef = bench_em.TRUE_COEF[:1]
    ll = bench_em.mixture_loglik(X, y, [1.0], [0.3], coef, [2.0])
    resid = y - 0.3 - X @ coef[0]
    expected = float((-0.5 * (resid / 2.0) ** 2 - math.log(2.0 * math.sqrt(2 * math.pi))).sum())
    assert ll == pytest.approx(expected, rel=1e-12)


def test_bench_em_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    _require_fit_em()
    figures = bench_em.main(TINY)
    out = capsys.readouterr().out
    assert "fit_em init='random', 5 full starts" in out
    assert "fit_em default path, n_init=5" in out
    assert "skipped (--no-r)" in out
    assert figures["n"] == 2000
    for key in ("like_for_like", "default"):
        assert figures[f"{key}_seconds_median"] > 0
        assert figures[f"{key}_n_iter"] >= 1
        # The reported log-likelihood must agree with the harness's independent formula.
        assert figures[f"{key}_loglik"] == pytest.approx(figures[f"{key}_loglik_exact"], abs=1e-6)
        assert figures[f"{key}_loglik_exact"] >= figures["loglik_truth"] - 1e-6
    # Like-for-like runs every start on all rows.
    assert figures["like_for_like_n_runs_on_all_rows"] == bench_em.N_INIT
    json.dumps(figures)  # figures are plain scalars


def test_bench_em_describes_the_default_path_from_em_constants() -> None:
    from bayes_mlr.core.em import SHORT_RUN_ITER, SHORT_RUN_KEEP, SHORT_RUN_ROWS

    large = bench_em.default_path_description(100_000)
    assert f"scout {SHORT_RUN_ITER} EM iterations" in large
    assert f"subsample of {SHORT_RUN_ROWS} of the 100000 rows" in large
    assert f"best {SHORT_RUN_KEEP} scouts so far" in large
    small = bench_em.default_path_description(2 * SHORT_RUN_ROWS)
    assert "runs to convergence on all rows" in small


def test_poisson_mixture_loglik_matches_single_poisson() -> None:
    X, y, h = bench_families.simulate_poisson(50, seed=1)
    # One component with weight 1: a plain Poisson regression log-likelihood with the offset.
    a, b = 0.2, bench_families.TRUE_COEF[0]
    ll = bench_families.poisson_mixture_loglik(X, y, np.log(h), [1.0], [a], b[None, :])
    expected = float(stats.poisson.logpmf(y, h * np.exp(a + X @ b)).sum())
    assert ll == pytest.approx(expected, rel=1e-12)


def test_bench_families_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    figures = bench_families.main(TINY)
    out = capsys.readouterr().out
    assert "bayes_mlr fit_structured" in out
    assert "skipped (--no-r)" in out
    assert figures["n"] == 2000
    assert figures["bayes_seconds_median"] > 0
    assert figures["bayes_n_iter"] >= 1
    # The reported log-likelihood must agree with the harness's independent formula.
    assert figures["bayes_loglik"] == pytest.approx(figures["bayes_loglik_exact"], abs=1e-6)
    assert figures["bayes_loglik_exact"] >= figures["loglik_truth"] - 1e-6
    assert "ratio_vs_flexmix" not in figures
    json.dumps(figures)  # figures are plain scalars


def test_bench_gibbs_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    tiny = ["--n", "400", "--draws", "30", "--tune", "10", "--chains", "2", "--no-baseline"]
    large = ["--large-n", "3000", "--large-features", "3", "--large-chunk", "1000"]
    figures = bench_gibbs.main([*tiny, *large, "--large-draws", "10"])
    out = capsys.readouterr().out
    assert "run 1: sample_posterior[gibbs]" in out and "one sweep:" in out
    assert "large: 3,000 rows x 3 features" in out and "peak RSS" in out
    assert figures["sweep_ms"] > 0 and figures["gibbs_min_ess_bulk"] > 0
    assert figures["large_rows"] == 3000 and figures["large_peak_rss_gb"] > 0
    assert figures["large_min_ess_bulk"] > 0
    assert "gibbs_ratio_ess_per_second" not in figures  # no baseline, no ratio
    json.dumps(figures)  # figures are plain scalars


def test_runner_writes_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _require_fit_em()
    out_file = tmp_path / "bench-results.json"
    status = runner.main(["-k", "bench_em", "--output", str(out_file), "--", *TINY])
    assert status == 0
    out = capsys.readouterr().out
    assert "Summary" in out
    payload = json.loads(out_file.read_text())
    entry = payload["benchmarks"]["bench_em"]
    assert entry["error"] is None
    assert entry["figures"]["n"] == 2000
    # Every benchmark records, and prints, the commit it was measured on.
    assert entry["commit"] == _common.commit_label()
    assert f"bench_em (commit {entry['commit']}," in out


def test_commit_label_is_the_short_head_and_dirty_flag() -> None:
    label = _common.commit_label()
    assert label == "unknown" or re.fullmatch(r"[0-9a-f]{4,40}(-dirty)?", label)
    assert f"commit {label}" in _common.environment_line()


def test_runner_rejects_unknown_selection(tmp_path: Path) -> None:
    assert runner.main(["-k", "no-such-benchmark", "--output", str(tmp_path / "x.json")]) == 1


def test_every_declared_target_is_well_formed() -> None:
    for name in runner.discover():
        for key, op, bound, what in runner.targets(name):
            assert isinstance(key, str) and key and isinstance(what, str) and what
            assert op in ("<=", ">=") and isinstance(bound, int | float)
    assert runner.targets("bench_sampling")[0][0] == "ours_auto_ratio_ess_per_second"


def test_targets_are_checked_both_ways() -> None:
    figures = {"ratio": 1.5, "label": "text"}
    assert runner.check_target(figures, "ratio", "<=", 2.0) is True
    assert runner.check_target(figures, "ratio", ">=", 2.0) is False
    assert runner.check_target(figures, "missing", ">=", 2.0) is None
    assert runner.check_target(figures, "label", ">=", 2.0) is None
    with pytest.raises(ValueError, match="unknown comparison"):
        runner.check_target(figures, "ratio", "==", 2.0)


def test_runner_prints_the_targets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _require_fit_em()
    out_file = tmp_path / "bench-results.json"
    assert runner.main(["-k", "bench_em", "--output", str(out_file), "--", *TINY]) == 0
    out = capsys.readouterr().out
    # Without R the flexmix figures are missing, and the summary says so.
    assert "Targets" in out and "EM 5 full starts / flexmix" in out and "not measured" in out
    assert "EM default path (scouting) / flexmix" in out
    entry = json.loads(out_file.read_text())["benchmarks"]["bench_em"]
    assert entry["targets"]["ratio_like_for_like_vs_flexmix"]["met"] is None
    assert entry["targets"]["ratio_default_vs_flexmix"]["met"] is None


def test_bench_dask_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("dask")
    # More rows than 2 x SHORT_RUN_ROWS, so the child runs the subsampled default path.
    figures = bench_dask.main(["--n", "60000", "--chunk", "15000", "--equality-n", "48000"])
    out = capsys.readouterr().out
    assert "the default fit" in out and "commit " in out
    assert figures["rows"] == 60_000
    assert figures["converged"] and figures["n_runs_on_all_rows"] >= 1
    assert 0 < figures["peak_rss_gb"] <= figures["peak_rss_save_load_gb"] < 10
    assert figures["loaded_lazy"] and figures["loaded_same"]
    assert figures["equality_met"]
    json.dumps(figures)


def test_bench_sampling_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pymc")
    from tests.benchmarks import bench_sampling

    argv = ["--n", "400", "--draws", "40", "--tune", "40", "--chains", "2", "--runs", "1"]
    figures = bench_sampling.main(argv)
    out = capsys.readouterr().out
    assert "HEADLINE" in out and "standard errors included" in out and "commit " in out
    # Like-for-like: the baseline ran on the cores sample_posterior used.
    assert figures["baseline_same_cores_cores"] == figures["cores"]
    assert figures["ours_auto_ratio_ess_per_second"] > 0
    assert figures["ours_auto_ratio_ess_per_second_lowest"] > 0
    assert figures["standard_errors_seconds"] > 0
    assert figures["logp_dlogp_ms_ours"] > 0 and figures["logp_dlogp_ms_baseline"] > 0
    json.dumps(figures)
