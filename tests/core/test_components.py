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


# -- families: densities and derivatives -------------------------------------------------------


def _family_rows(name, rng, n=50):
    from bayes_mlr.core.components import resolve_family

    family = resolve_family(name)
    offset = rng.normal(scale=0.3, size=n) if family.takes_offset else None
    trials = rng.integers(1, 12, n).astype(float) if family.takes_trials else None
    if name == "poisson":
        y = rng.poisson(3.0, n).astype(float)
    elif name == "binomial":
        y = rng.binomial(trials.astype(int), 0.4).astype(float)
    else:
        y = rng.normal(size=n)
    return family, y, family.row_columns(y, offset, trials)


@pytest.mark.parametrize("name", ["gaussian", "poisson", "binomial", "student_t"])
def test_family_densities_match_scipy_and_derivatives_match_differences(name):
    from scipy import stats as st

    rng = np.random.default_rng(0)
    family, y, extra = _family_rows(name, rng)
    eta = rng.normal(scale=0.5, size=(y.size, 2)) + np.reshape(family.offset_of(extra), (-1, 1))
    if name == "poisson":
        eta = eta + 1.0
    sigma, df = np.array([0.7, 1.3]), np.array([3.0, 8.0])
    logf = family.log_density(y, eta, extra, sigma, df)
    expected = {
        "gaussian": lambda: st.norm.logpdf(y[:, None], eta, sigma),
        "poisson": lambda: st.poisson.logpmf(y[:, None], np.exp(eta)),
        "binomial": lambda: st.binom.logpmf(y[:, None], extra[:, 1:2], 1 / (1 + np.exp(-eta))),
        "student_t": lambda: st.t.logpdf(y[:, None], df, eta, sigma),
    }[name]()
    # the same density by another route: equal to rounding
    np.testing.assert_allclose(logf, expected, rtol=1e-10, atol=1e-10)
    score, hess = family.derivatives(y, eta, extra, sigma, df)

    def at(point):  # log f at (η, log σ, log ν)
        return family.log_density(y, point[0], extra, np.exp(point[1]), np.exp(point[2]))

    base = [eta, np.broadcast_to(np.log(sigma), eta.shape), np.broadcast_to(np.log(df), eta.shape)]
    h = 1e-5
    for a in range(score.shape[-1]):
        up, down = list(base), list(base)
        up[a], down[a] = base[a] + h, base[a] - h
        # central differences: error O(h²) ~ 1e-9 relative
        np.testing.assert_allclose(score[..., a], (at(up) - at(down)) / (2 * h), atol=1e-6)
        for b in range(score.shape[-1]):
            pp, pm, mp, mm = (list(base) for _ in range(4))
            pp[a] = pp[a] + h
            pm[a] = pm[a] + h
            mp[a] = mp[a] - h
            mm[a] = mm[a] - h
            pp[b] = pp[b] + h
            pm[b] = pm[b] - h
            mp[b] = mp[b] + h
            mm[b] = mm[b] - h
            second = (at(pp) - at(pm) - at(mp) + at(mm)) / (4 * h * h)
            # second differences of log f: error ~ 1e-10 / h² ~ 1e-4 absolute at most
            np.testing.assert_allclose(hess[..., a, b], second, atol=2e-4)
