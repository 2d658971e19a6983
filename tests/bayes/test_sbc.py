"""Simulation-based calibration of sample_posterior (tests/calibration/sbc.py), K = 2.

Marked slow: 100 replicates, each EM + 2 chains x 800 NUTS iterations (about 2 minutes on two
cores). ``make sbc`` runs 200 and draws the ECDF figure.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.calibration import sbc


@pytest.mark.slow
def test_ranks_of_label_invariant_quantities_are_uniform():
    ranks = sbc.run_sbc(100, seed=0, jobs=2)
    assert len(ranks) == 100
    assert ranks[list(sbc.QUANTITIES)].to_numpy().min() >= 0
    assert ranks[list(sbc.QUANTITIES)].to_numpy().max() <= sbc.L
    p = sbc.uniformity(ranks)
    # chi-square on 5 bins (20 expected per bin) for each of the 8 quantities; a Bonferroni
    # threshold of 0.001 / 8 per quantity keeps the false alarm rate of the test near 0.1%,
    # while a posterior 30% too narrow or shifted by half an sd fails it (U-shaped or skewed
    # ranks: p < 1e-6 at 100 replicates)
    assert (p > 0.001 / len(p)).all(), p
    # no quantity's mean rank strays from L / 2 = 49.5 by more than 4 standard errors
    se = np.sqrt(((sbc.L + 1) ** 2 - 1) / 12 / len(ranks))
    means = ranks[list(sbc.QUANTITIES)].mean()
    assert ((means - sbc.L / 2).abs() < 4 * se).all(), means


def test_one_replicate_ranks_every_quantity():
    row = sbc.one_replicate(123)
    assert set(sbc.QUANTITIES) <= set(row)
    assert all(0 <= row[q] <= sbc.L for q in sbc.QUANTITIES)
