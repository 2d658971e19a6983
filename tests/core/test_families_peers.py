"""Poisson and binomial mixtures side by side with flexmix and mixtools, on the stored reference
fits of tests/peers/families (real data: flexmix's seizure, patent and betablocker; simulated
data with known truth). The table behind these assertions: python -m tests.peers.families_compare.
"""

from __future__ import annotations

import pytest

from tests.peers.families_compare import CASES, compare


@pytest.mark.parametrize("case", sorted(CASES))
def test_as_good_as_the_best_peer_with_the_same_estimates(case):
    # tol=1e-10: EM run close to its end, as the peers' references (flexmix tolerance 1e-10)
    row = compare(case, tol=1e-10)
    # at least the best of flexmix's 30 starts (and mixtools'), up to the peers' own stopping
    # rule: 1e-6 in log-likelihood
    assert row["bayes_mlr - best peer"] >= -1e-6
    # the same optimum: estimates equal up to label order. 2e-3 absolute, as the EM stops
    # (both sides) at 1e-10 relative change, far from the estimates' standard errors
    assert row["max |d est|"] <= 2e-3
    if row["max |d est| mixtools"] == row["max |d est| mixtools"]:  # mixtools fitted it
        assert row["max |d est| mixtools"] <= 2e-3
    # standard errors from the observed information equal refit()'s (an optim Hessian: 1e-4
    # relative accuracy at best): 2e-3 relative
    assert row["max rel d SE"] <= 2e-3
    # the same parameter count (BIC)
    assert row["df bayes_mlr"] == row["df flexmix"]
