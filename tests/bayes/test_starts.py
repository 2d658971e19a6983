"""bayes_mlr.bayes.starts: where chains start (distinct EM optima, a search, over-dispersed points).

numpy only: no sampling here (tests/bayes/test_model.py checks that each back-end starts each chain
exactly at its start, tests/bayes/test_modes.py what the chains then report).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_mlr import MixtureOfRegressions, MultimodalPosteriorWarning
from bayes_mlr.bayes import starts
from tests.conftest import TRUTH_2, make_data

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def tone_fit():
    frame = pd.read_csv(DATA / "tonedata.csv")
    return MixtureOfRegressions(2, random_state=1).fit(frame[["stretchratio"]], frame["tuned"])


@pytest.fixture(scope="module")
def separated_fit():
    data = make_data(400, TRUTH_2, seed=5)
    return MixtureOfRegressions(2, random_state=0).fit(data.X, data.y)


def test_the_search_finds_the_optimum_the_fit_missed(tone_fit):
    assert [round(o.log_likelihood, 2) for o in tone_fit.result_.optima] == [141.2]
    with pytest.warns(MultimodalPosteriorWarning, match=r"not the highest optimum.*145\.42"):
        chain_starts, optima = starts.chain_starts(tone_fit, 4, random_state=0)
    assert [round(o["log_likelihood"], 2) for o in optima] == [141.2, 145.42]
    assert [o["source"] for o in optima] == ["fit", "search"]
    assert [s.source for s in chain_starts] == [
        "EM estimate",
        "EM optimum 1 (log-likelihood 145.42, found by the search)",
        "over-dispersed around EM optimum 0",
        "over-dispersed around EM optimum 1",
    ]
    assert [s.optimum for s in chain_starts] == [0, 1, 0, 1]
    # chain 0 is the estimate itself, chain 1 the other optimum itself
    np.testing.assert_array_equal(chain_starts[0].values["coef"], tone_fit.coef_)
    np.testing.assert_array_equal(chain_starts[1].values["sigma"], optima[1]["sigma"])


def test_without_search_only_the_fit_s_optima(tone_fit):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: nothing higher is looked for
        optima = starts.em_optima(tone_fit, search=False)
    assert len(optima) == 1 and optima[0]["source"] == "fit"


def test_starts_are_reproducible_with_a_seed(tone_fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MultimodalPosteriorWarning)
        a, _ = starts.chain_starts(tone_fit, 6, random_state=3)
        b, _ = starts.chain_starts(tone_fit, 6, random_state=3)
        c, _ = starts.chain_starts(tone_fit, 6, random_state=4)
    for x, y in zip(a, b, strict=True):
        for name in ("weights", "intercept", "coef", "sigma"):
            np.testing.assert_array_equal(x.values[name], y.values[name])
    assert not np.array_equal(a[-1].values["coef"], c[-1].values["coef"])


def test_well_separated_data_have_one_optimum_and_over_dispersed_chains(separated_fit):
    with warnings.catch_warnings():
        warnings.simplefilter("error", MultimodalPosteriorWarning)
        chain_starts, optima = starts.chain_starts(separated_fit, 200, random_state=0)
    assert len(optima) == 1  # lower optima lie far outside the window, spurious ones are out
    assert chain_starts[0].source == "EM estimate"
    assert {s.source for s in chain_starts[1:]} == {"over-dispersed around EM optimum 0"}
    se = separated_fit.standard_errors_
    z = np.array([(s.values["coef"] - separated_fit.coef_) / se["coef"] for s in chain_starts[1:]])
    # each coefficient moved by DISPERSION = 2 standard errors times a standard normal: the
    # mean square is 4 (199 draws per coefficient: standard error of the mean square 0.4)
    assert np.mean(z**2, axis=0) == pytest.approx(np.full_like(z[0], 4.0), abs=1.6)
    for s in chain_starts:
        assert s.values["weights"].sum() == pytest.approx(1.0, abs=1e-12)
        assert np.all(s.values["sigma"] > 0)


def test_far_lower_optima_get_no_chain():
    frame = pd.read_csv(DATA / "tonedata.csv")
    # random_state=3: the fit's restarts reach 145.42, 141.20 and 72.72
    model = MixtureOfRegressions(2, random_state=3).fit(frame[["stretchratio"]], frame["tuned"])
    reached = sorted(round(o.log_likelihood, 2) for o in model.result_.optima)
    assert reached == [72.72, 141.2, 145.42]
    optima = starts.em_optima(model, search=False)
    # 72.72 lies 72.7 below the best, beyond 2 per parameter (5 parameters: 10)
    assert [round(o["log_likelihood"], 2) for o in optima] == [145.42, 141.2]


def test_the_search_is_skipped_on_large_data(tone_fit, monkeypatch):
    monkeypatch.setattr(starts, "SEARCH_MAX_ROWS", 100)  # tonedata has 150 rows
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(starts.em_optima(tone_fit, random_state=0)) == 1
