"""Shared fixtures: seeded simulated data with known truth."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_mlr import simulate

TRUTH_2 = {
    "weights": np.array([0.4, 0.6]),
    "intercept": np.array([-2.0, 2.0]),
    "coef": np.array([[1.5], [-1.0]]),
    "sigma": np.array([0.5, 0.7]),
}

TRUTH_3 = {
    "weights": np.array([0.5, 0.3, 0.2]),
    "intercept": np.array([-3.0, 0.0, 3.0]),
    "coef": np.array([[2.0, -1.0], [-1.0, 0.5], [0.5, 2.0]]),
    "sigma": np.array([0.6, 0.4, 0.8]),
}


def make_data(n=600, truth=None, seed=0):
    """Seeded draw from a well-separated mixture (TRUTH_2 unless ``truth`` is given)."""
    truth = TRUTH_2 if truth is None else truth
    return simulate(n, **truth, random_state=seed)


@pytest.fixture
def data2():
    return make_data(600, TRUTH_2, seed=0)


@pytest.fixture
def data3():
    return make_data(1500, TRUTH_3, seed=1)
