"""The E-step from precomputed pair products (em._ProductData, stats.block_stats_products)
against the plain block statistics (data.InMemoryData, stats.block_stats): the same totals up
to rounding, and fits that reach the same optima."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_mlr import fit_em
from bayes_mlr.core import em
from bayes_mlr.core.data import InMemoryData
from bayes_mlr.core.stats import pair_products, unpack_gram


def _data(n: int, q: int, seed: int, weighted: bool):
    rng = np.random.default_rng(seed)
    Z = np.column_stack([np.ones(n), rng.normal(size=(n, q))])
    w = rng.integers(0, 4, size=n).astype(float) if weighted else None
    return Z, w


@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("q", [1, 4])
def test_product_stats_equal_block_stats(q, weighted, intercept):
    # 20,000 rows: three blocks of PRODUCT_BLOCK_ROWS, the last one short.
    Z, w = _data(20_000, q, seed=q, weighted=weighted)
    if not intercept:  # q columns of data, none of them ones
        Z = np.column_stack([Z[:, 1:], np.random.default_rng(q).normal(size=Z.shape[0])])
    rng = np.random.default_rng(1)
    K = 3
    beta = rng.normal(size=(K, q))
    sigma = np.array([0.05, 0.7, 2.0])  # a narrow component too: large scaled residuals
    with np.errstate(divide="ignore"):
        for weights in (np.array([0.2, 0.3, 0.5]), np.array([0.4, 0.0, 0.6])):  # an empty one
            log_w = np.log(weights)
            plain = InMemoryData(Z, w).stats(log_w, beta, sigma)
            products = em._ProductData(Z, w).stats(log_w, beta, sigma)
            # Sums over 20,000 rows of terms of order 1-10: rounding is ~1e-12 relative.
            assert products.log_likelihood == pytest.approx(plain.log_likelihood, rel=1e-12)
            np.testing.assert_allclose(products.nk, plain.nk, rtol=1e-12, atol=1e-9)
            np.testing.assert_allclose(products.gram, plain.gram, rtol=1e-11, atol=1e-8)
            assert products.n_obs == plain.n_obs
            np.testing.assert_array_equal(products.gram, products.gram.transpose(0, 2, 1))


def test_pair_products_and_unpacking():
    Zt = np.arange(12.0).reshape(3, 4)
    Ut = pair_products(Zt)
    a, b = np.triu_indices(3)
    np.testing.assert_array_equal(Ut, Zt[a] * Zt[b])
    gram = unpack_gram((Ut @ np.ones((4, 2))).T, 3)
    np.testing.assert_array_equal(gram[0], Zt @ Zt.T)
    np.testing.assert_array_equal(gram[1], Zt @ Zt.T)


def test_data_source_follows_the_memory_cap(monkeypatch):
    Z, _ = _data(1000, 2, seed=0, weighted=False)
    source = em._in_memory(Z, None)
    assert type(source) is em._ProductData
    # With the intercept's column of ones, the first 3 products are the data themselves.
    np.testing.assert_array_equal(source.Zt, Z.T)
    assert np.shares_memory(source.Zt, source.Ut)
    # 1000 rows x 6 products x 8 bytes = 48,000 bytes; without the intercept 3 rows more.
    monkeypatch.setattr(em, "PRODUCTS_MAX_BYTES", 47_999)
    assert type(em._in_memory(Z, None)) is InMemoryData
    monkeypatch.setattr(em, "PRODUCTS_MAX_BYTES", 48_000)
    assert type(em._in_memory(Z, None)) is em._ProductData
    no_ones = Z.copy()
    no_ones[:, 0] = 2.0
    assert type(em._in_memory(no_ones, None)) is InMemoryData  # (6 + 3) x 8,000 > 48,000


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_fits_with_and_without_products_reach_the_same_optima(monkeypatch, seed):
    """Random starts on three overlapping lines: every run, to convergence, from both data
    sources. The runs' traces differ only by rounding, so the optima match to far below the
    stopping rule (tol=1e-8 per observation)."""
    rng = np.random.default_rng(seed)
    n = 3000
    X = rng.normal(size=(n, 2))
    z = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    coef = np.array([[1.0, -1.0], [-1.0, 2.0], [0.5, 0.5]])
    y = np.array([-1.0, 0.5, 2.0])[z] + np.einsum("ij,ij->i", X, coef[z])
    y += np.array([1.0, 0.7, 1.3])[z] * rng.normal(size=n)
    w = rng.integers(1, 3, size=n) if seed % 2 else None

    def fit():
        return fit_em(X, y, 3, sample_weight=w, init="random", n_init=4, random_state=seed)

    products = fit()
    monkeypatch.setattr(em, "PRODUCTS_MAX_BYTES", 0)  # every source is the plain one
    plain = fit()
    # Per observation: the stopping rule leaves ~1e-8; rounding-level differences in the
    # trace may stop a run one cycle earlier or later, which moves it by less than that.
    assert abs(products.log_likelihood - plain.log_likelihood) <= 1e-8 * n
    assert len(products.optima) == len(plain.optima)
    for a, b in zip(products.optima, plain.optima, strict=True):
        assert a.n_runs == b.n_runs
        assert abs(a.log_likelihood - b.log_likelihood) <= 1e-8 * n
        np.testing.assert_allclose(a.coef, b.coef, atol=1e-4)
        np.testing.assert_allclose(a.sigma, b.sigma, atol=1e-4)
