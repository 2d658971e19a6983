"""Gaussian components (bayes_mlr.core.components): the weighted M-step with shared columns is
the joint weighted least-squares solution, checked against a stacked lstsq."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_mlr.core.components import GaussianComponents, sigma_from_rss
from bayes_mlr.core.stats import augment


@pytest.mark.parametrize("seed", [0, 1])
def test_shared_columns_solve_the_joint_weighted_problem(seed):
    rng = np.random.default_rng(seed)
    n, K = 300, 3
    X1 = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    y = rng.normal(size=n)
    R = rng.dirichlet(np.ones(K), size=n)
    sigma = np.array([0.5, 1.0, 2.0])
    shared = np.array([False, True, False])
    comp = GaussianComponents(shared, variance="component", sigma_fixed=None, sigma_floor=0.0)
    stats = comp.stats(augment(X1, y), R, None, sigma)
    beta, _, _ = comp.m_step_from_stats(stats, None, sigma)
    nk = stats.nk
    # stacked design: rows of every component, weights r_ij / sigma_j^2
    blocks, targets, weights = [], [], []
    for j in range(K):
        block = np.zeros((n, 1 + 2 * K))
        block[:, 0] = X1[:, 1]  # the shared column
        block[:, 1 + 2 * j] = X1[:, 0]
        block[:, 2 + 2 * j] = X1[:, 2]
        blocks.append(block)
        targets.append(y)
        weights.append(R[:, j] / sigma[j] ** 2)
    A, b, w = np.vstack(blocks), np.concatenate(targets), np.sqrt(np.concatenate(weights))
    theta = np.linalg.lstsq(A * w[:, None], b * w, rcond=None)[0]
    np.testing.assert_allclose(beta[:, 1], theta[0], atol=1e-10)  # algebra: tight
    for j in range(K):
        np.testing.assert_allclose(beta[j, [0, 2]], theta[[1 + 2 * j, 2 + 2 * j]], atol=1e-10)
    np.testing.assert_allclose(nk, R.sum(axis=0), rtol=1e-12)
    assert comp.n_parameters(K) == K * 2 + 1 + K


def test_sigma_modes():
    rss, nk = np.array([4.0, 9.0]), np.array([4.0, 1.0])
    np.testing.assert_allclose(
        sigma_from_rss(rss, nk, variance="component", sigma_fixed=None, sigma_floor=0.0), [1, 3]
    )
    np.testing.assert_allclose(
        sigma_from_rss(rss, nk, variance="shared", sigma_fixed=None, sigma_floor=0.0),
        np.sqrt(13 / 5),
    )
    np.testing.assert_allclose(
        sigma_from_rss(rss, nk, variance="fixed", sigma_fixed=2.0, sigma_floor=0.0), 2.0
    )
    assert sigma_from_rss(
        np.zeros(2), nk, variance="component", sigma_fixed=None, sigma_floor=0.1
    ).min() == pytest.approx(0.1)
