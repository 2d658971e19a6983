"""The data-augmentation Gibbs sampler's numerics (Diebolt & Robert 1994), numpy only.

The EM iteration of :mod:`bayes_mlr.core.em` with the expectation replaced by a draw and the
maximisation by a conditional draw. One sweep, from the parameters ``θ = (π, β, σ)``:

1. **labels** ``z_i ~ Categorical(γ_i·)``, the E-step's responsibilities, drawn block by block
   while the block's rows are in cache; the same pass accumulates the hard assignment's
   statistics, which are the M-step's :class:`~bayes_mlr.core.stats.SufficientStats` with
   ``γ_ij`` replaced by ``1[z_i = j]``: the count ``n_j`` and the augmented Gram matrix
   ``Σ_{z_i = j} [x1_i, y_i][x1_i, y_i]ᵀ``. Rows are sorted by label (a radix sort of an
   ``int8`` array) and each component's Gram matrix is one product over its own rows, so no
   row is multiplied K times. The observed-data log-likelihood of ``θ`` comes with the pass;
2. **weights** ``π ~ Dirichlet(α + n)``;
3. **coefficients** (intercept and slopes jointly) ``β_j ~ N(m_j, V_j)`` with
   ``V_j⁻¹ = G_j / σ_j² + Λ`` and ``m_j = V_j (b_j / σ_j² + Λ μ)``, from the Gram matrix
   ``G_j`` and cross-products ``b_j`` of the rows in component ``j`` (the M-step's weighted
   least squares, plus the prior's precision ``Λ``);
4. **sigma** from its conditional ``p(σ_j | ...) ∝ σ_j^(-n_j) exp(-RSS_j / 2σ_j²) ·
   HalfNormal(σ_j | s)``, with ``RSS_j`` from the same statistics (one ``σ`` from the pooled
   counts and residuals for ``variance="shared"``, none for ``"fixed"``). The HalfNormal prior
   is not conjugate; ``τ = σ⁻²`` then has the density ``τ^((n-3)/2) exp(-RSS τ/2 - 1/(2 s² τ))``
   (a generalised inverse Gaussian), drawn exactly by rejection from the Gamma((n-1)/2,
   RSS/2) part with acceptance probability ``exp(-1/(2 s² τ))`` (0.6 or more whenever
   ``σ ≤ s``). Where that does not apply (``n_j < 2``) or rejects ``SIGMA_MAX_TRIES`` times, a
   slice step on ``log σ`` (Neal 2003, stepping out and shrinkage; the target is log-concave)
   is taken instead; both leave the conditional invariant.

With the independence Metropolis move (:mod:`bayes_mlr.bayes.gibbs_proposal`, the default),
each sweep starts with a proposal ``θ'`` drawn independently of ``θ``. One pass then computes
the log-likelihood of ``θ`` (needed anyway: it is the kept draw's) and draws the labels of
``θ'`` from their own streams; after the Metropolis-Hastings decision the sweep goes on from
the labels of ``θ'`` if it is accepted, and from labels of ``θ`` drawn in a second pass if it
is rejected. The labels are thus always those of the accepted parameters, drawn from their
conditional. On ``bench_gibbs``'s problem a sweep with the move took 1.8 times the CPU time
of a plain one (measured once by hand, one chain of 600 sweeps): a log-likelihood pass costs
0.4 of a label pass, the second pass runs for the 16% of proposals rejected there, and the
rest is the proposal's own arithmetic.

Everything runs on the EM's standardised scale (:class:`~bayes_mlr.core.data.Scaler`), where the
normal equations are well conditioned; the priors (independent normals on the original
intercept and slopes, HalfNormal on the original sigma) are mapped to it exactly
(:func:`internal_prior`).

Replication weights are exact when they are integers: a row of weight ``w`` is ``w`` rows,
whose labels are drawn as one ``Multinomial(w, γ_i·)`` count vector.

Random numbers: each chain has three streams (labels, multinomial counts, parameters), and the
label stream gives one uniform per row per sweep in row order; the move has three more (the
proposal's labels and counts, and the proposals with their decisions), so that a chain without
the move draws what the plain sampler draws. The draws therefore do not
depend on how the rows are cut into blocks or Dask chunks: Dask input gives the posterior of
the same data in memory (to rounding).

The chain loop (:func:`run_chain`) runs in worker processes; this module imports nothing
heavy so that they start quickly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bayes_mlr.bayes.gibbs_proposal import IndependenceProposal, log_target_prior
from bayes_mlr.core.data import Scaler
from bayes_mlr.core.stats import LOG_2PI, SufficientStats, iter_blocks, residual_sums

__all__ = [
    "BLOCK_ROWS",
    "SIGMA_MAX_TRIES",
    "ArrayRows",
    "ChainJob",
    "ChainResult",
    "DaskRows",
    "InternalPrior",
    "coefficient_conditional",
    "draw_coefficients",
    "draw_sigma",
    "internal_prior",
    "label_pass",
    "label_passes",
    "run_chain",
    "run_chains",
    "slice_log_sigma",
]

#: Rows per block of a pass: the block's augmented rows and its (K, rows) temporaries stay in
#: cache, and numpy's per-call overhead is spread over enough rows. Measured once by hand at
#: n = 20,000, K = 3, p = 3, two chains in lockstep, CPU milliseconds per iteration and chain
#: (with the move / without): 2,048 rows 0.73 / 0.89, 4,096 rows 0.66 / 0.77, 8,192 rows
#: 0.61 / 0.76. (Alone, before the move existed, one chain's sweep took 0.79 ms at 2,048 rows
#: and 2.2 ms at 16,384.)
BLOCK_ROWS = 8_192
#: Rejection rounds of the exact sigma draw before a slice step is taken instead.
SIGMA_MAX_TRIES = 20
#: With the move: ``(acceptance rate, move-only iterations between two sweeps)``, the first
#: whose rate the move reached in the burn-in's first iterations (:func:`metropolis_steps`)
METROPOLIS_STEPS = ((0.8, 7), (0.5, 3))
#: The choice is made after the first ``ADAPT_ITERATIONS`` burn-in iterations (or half the
#: burn-in, if shorter), and only with at least ``ADAPT_MIN_SWEEPS`` of them (else every
#: iteration sweeps): 100 proposals estimate the acceptance rate to about ±0.05.
ADAPT_ITERATIONS = 100
ADAPT_MIN_SWEEPS = 50
_HALF_LOG_2PI = 0.5 * LOG_2PI


# --------------------------------------------------------------------------------------------
# The prior on the standardised scale
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InternalPrior:
    """The model's priors on the standardised scale of the sweep.

    Attributes
    ----------
    alpha : ndarray of shape (K,)
        Dirichlet concentration of the weights.
    precision : ndarray of shape (K, q, q)
        Prior precision ``Λ_j`` of the internal coefficients ``β_j`` (intercept first).
    linear : ndarray of shape (K, q)
        ``Λ_j μ_j`` in internal coordinates: the prior's term of the conditional mean.
    sigma_scale : ndarray of shape (K,)
        Scale ``s`` of the HalfNormal prior of the internal sigma (the original scale divided
        by the scale of ``y``); for ``variance="shared"`` all entries are the one scale.
    """

    alpha: np.ndarray
    precision: np.ndarray
    linear: np.ndarray
    sigma_scale: np.ndarray


def design_map(scaler: Scaler, p: int) -> tuple[np.ndarray, np.ndarray]:
    """``(A, c)`` with ``[intercept, coef] = c + A β`` for the internal coefficients ``β``.

    Without an intercept, ``coef = A β`` (``c = 0``). See :func:`bayes_mlr.core.em._to_external`.
    """
    ratio = scaler.y_scale / np.broadcast_to(np.asarray(scaler.x_scale, float), (p,))
    if not scaler.fit_intercept:
        return np.diag(ratio), np.zeros(p)
    A = np.zeros((p + 1, p + 1))
    A[0, 0] = scaler.y_scale
    A[0, 1:] = -ratio * scaler.x_shift
    A[np.arange(1, p + 1), np.arange(1, p + 1)] = ratio
    c = np.zeros(p + 1)
    c[0] = scaler.y_shift
    return A, c


def internal_prior(
    prior: dict[str, dict[str, Any]],
    scaler: Scaler,
    n_components: int,
    n_features: int,
    variance: str,
) -> InternalPrior:
    """Map the model's priors (:func:`bayes_mlr.bayes.priors.merge_priors`, original units) to
    the standardised scale: independent normals on ``[intercept, coef]`` become a correlated
    normal on ``β`` (``θ = c + A β``: precision ``Aᵀ D⁻¹ A``), the HalfNormal scale of sigma
    is divided by the scale of ``y``."""
    K, p = n_components, n_features
    A, c = design_map(scaler, p)
    mean = np.broadcast_to(np.asarray(prior["coef"]["mu"], float), (K, p))
    sd = np.broadcast_to(np.asarray(prior["coef"]["sigma"], float), (K, p))
    if scaler.fit_intercept:
        int_mu = np.broadcast_to(np.asarray(prior["intercept"]["mu"], float), (K,))
        int_sd = np.broadcast_to(np.asarray(prior["intercept"]["sigma"], float), (K,))
        mean = np.column_stack([int_mu, mean])
        sd = np.column_stack([int_sd, sd])
    if not np.all(sd > 0):
        raise ValueError("the prior scales of intercept and coef must be positive")
    inv_var = 1.0 / sd**2  # (K, q)
    precision = np.einsum("ai,ka,aj->kij", A, inv_var, A)
    linear = np.einsum("ai,ka->ki", A, inv_var * (mean - c))
    if variance == "fixed":
        scale = np.ones(K)
    else:
        raw = np.asarray(prior["sigma"]["sigma"], float)
        if variance == "shared" and raw.size != 1:
            raise ValueError(
                f"variance='shared' has one sigma, whose prior takes one scale; got {raw.shape}"
            )
        scale = np.broadcast_to(raw.reshape(-1) if raw.size == 1 else raw, (K,)).astype(float)
        scale = np.broadcast_to(scale, (K,)) / scaler.y_scale
        if not np.all(scale > 0):
            raise ValueError("the prior scale of sigma must be positive")
    alpha = np.broadcast_to(np.asarray(prior["weights"]["alpha"], float), (K,)).copy()
    if not np.all(alpha > 0):
        raise ValueError("the Dirichlet prior's alpha must be positive")
    return InternalPrior(alpha, precision, linear, np.array(scale, dtype=float))


# --------------------------------------------------------------------------------------------
# Row sources: in-memory arrays and Dask chunks, both yielding standardised row blocks in order
# --------------------------------------------------------------------------------------------


@dataclass
class ArrayRows:
    """Standardised augmented rows ``Z = [X1, y]`` in memory (or memory-mapped)."""

    Z: np.ndarray
    sample_weight: np.ndarray | None
    block_rows: int = BLOCK_ROWS

    @property
    def n_rows(self) -> int:
        return int(self.Z.shape[0])

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        w = self.sample_weight
        for sl in iter_blocks(self.n_rows, self.block_rows):
            yield self.Z[sl], None if w is None else w[sl]


@dataclass
class DaskRows:
    """Dask arrays ``X``, ``y`` (and ``sample_weight``), standardised chunk by chunk.

    Each pass computes the chunks one at a time (Dask's synchronous scheduler, inside the
    chain's process) and cuts them into blocks: memory holds one chunk at a time.
    """

    X: Any
    y: Any
    sample_weight: Any
    scaler: Scaler
    block_rows: int = BLOCK_ROWS

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        import dask

        # unoptimised graphs: a chunk of X and of y computed together read their source once
        xs = self.X.to_delayed(optimize_graph=False).ravel()
        ys = self.y.to_delayed(optimize_graph=False).ravel()
        ws = None
        if self.sample_weight is not None:
            ws = self.sample_weight.to_delayed(optimize_graph=False).ravel()
        q1 = int(self.X.shape[1]) + int(self.scaler.fit_intercept) + 1
        buffer = np.empty((self.block_rows, q1))
        for i in range(len(xs)):
            parts = (xs[i], ys[i]) if ws is None else (xs[i], ys[i], ws[i])
            got = dask.compute(*parts, scheduler="synchronous")
            X, y = np.asarray(got[0], float), np.asarray(got[1], float)
            w = None if ws is None else np.asarray(got[2], float)
            for sl in iter_blocks(X.shape[0], self.block_rows):  # standardised in cache
                yield _standardise(X[sl], y[sl], self.scaler, buffer), None if w is None else w[sl]


def _standardise(X: np.ndarray, y: np.ndarray, scaler: Scaler, buffer: np.ndarray) -> np.ndarray:
    """``scaler.augmented(X, y)`` written into ``buffer`` (one pass, no temporaries)."""
    Z = buffer[: X.shape[0]]
    first = int(scaler.fit_intercept)
    if first:
        Z[:, 0] = 1.0
    design = Z[:, first:-1]
    np.subtract(X, scaler.x_shift, out=design)
    design *= 1.0 / np.asarray(scaler.x_scale)
    np.subtract(y, scaler.y_shift, out=Z[:, -1])
    Z[:, -1] *= 1.0 / scaler.y_scale
    return Z


# --------------------------------------------------------------------------------------------
# Step 1: the labels, one pass over the row blocks
# --------------------------------------------------------------------------------------------


def _scaled_residual_coefficients(beta: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``C`` with ``C @ z_i = (y_i - x1_iᵀβ_j) / σ_j`` (as
    :func:`bayes_mlr.core.stats.component_log_density`)."""
    C = np.empty((beta.shape[0], beta.shape[1] + 1))
    C[:, :-1] = -beta
    C[:, -1] = 1.0
    C /= sigma[:, None]
    return C


def _block_densities(
    Zb: np.ndarray, C: np.ndarray, const: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(R, top)``: the (K, m) unnormalised responsibilities ``π_j N(y_i | ...) / e^top_i``
    of one block and the per-row ``top_i = max_j log(π_j N(y_i | ...))`` (plus log(2π)/2)."""
    K = C.shape[0]
    R = C @ Zb.T  # (K, m) scaled residuals
    np.square(R, out=R)
    R *= -0.5
    R += const[:, None]  # log π_j - log σ_j - r²/2
    top = R[0].copy()
    for k in range(1, K):
        np.maximum(top, R[k], out=top)
    R -= top
    np.exp(R, out=R)
    return R, top


def _block_log_norm(Zb: np.ndarray, C: np.ndarray, const: np.ndarray) -> np.ndarray:
    """``log Σ_j π_j N(y_i | ...) + log(2π)/2`` per row of one block (no labels)."""
    R, top = _block_densities(Zb, C, const)
    top += np.log(R.sum(axis=0))
    return top


def _block_labels(
    Zb: np.ndarray, C: np.ndarray, const: np.ndarray, u: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels of one block, drawn by inversion from one uniform per row.

    Returns ``(z, cumulative, log_norm)``: the labels (int8), the (K, m) cumulative unnormalised
    responsibilities and ``log Σ_j π_j N(y_i | ...) + log(2π)/2`` per row.
    """
    K = C.shape[0]
    R, top = _block_densities(Zb, C, const)
    for k in range(1, K):
        R[k] += R[k - 1]
    total = R[K - 1]
    scaled = u * total
    z = np.zeros(Zb.shape[0], dtype=np.int8)
    for k in range(K - 1):
        z += scaled >= R[k]
    top += np.log(total)
    return z, R, top


class _PassState:
    """One chain's pass over the rows: its parameters and the statistics accumulated so far.

    With ``label_rng=None`` the pass computes the log-likelihood (and ``pointwise``) only: no
    labels, no Gram matrices (the state's ``nk`` and ``gram`` stay zero).
    """

    def __init__(
        self,
        log_weights: np.ndarray,
        beta: np.ndarray,
        sigma: np.ndarray,
        label_rng: np.random.Generator | None,
        count_rng: np.random.Generator | None,
        pointwise: np.ndarray | None,
        log_y_scale: float,
    ) -> None:
        K, q1 = beta.shape[0], beta.shape[1] + 1
        self.C = _scaled_residual_coefficients(beta, sigma)
        with np.errstate(divide="ignore"):
            self.const = log_weights - np.log(sigma)
        self.label_rng, self.count_rng = label_rng, count_rng
        self.pointwise = pointwise
        self.shift = _HALF_LOG_2PI + log_y_scale  # log p(y_i | θ) in original units
        self.gram = np.zeros((K, q1, q1))
        self.nk = np.zeros(K)
        self.loglik = 0.0
        self.n_obs = 0.0

    def add(self, Zb: np.ndarray, wb: np.ndarray | None, start: int) -> None:
        """Draw the labels of one block (rows ``start:start + len(Zb)``) and add its statistics."""
        K = self.nk.shape[0]
        m = Zb.shape[0]
        out = None if self.pointwise is None else self.pointwise[start : start + m]
        if self.label_rng is None:
            log_norm = _block_log_norm(Zb, self.C, self.const)
            log_norm -= self.shift
            self.loglik += float(log_norm.sum() if wb is None else log_norm @ wb)
            self.n_obs += float(m if wb is None else wb.sum())
            if out is not None:
                np.multiply(log_norm, 1.0 if wb is None else wb, out=out)
            return
        z, cumulative, log_norm = _block_labels(Zb, self.C, self.const, self.label_rng.random(m))
        log_norm -= self.shift
        if wb is None:
            self.loglik += float(log_norm.sum())
            self.n_obs += m
            if out is not None:
                out[:] = log_norm
            _sorted_grams(Zb, z, K, self.gram, self.nk)
            return
        self.loglik += float(log_norm @ wb)
        self.n_obs += float(wb.sum())
        if out is not None:
            np.multiply(log_norm, wb, out=out)
        z[wb != 1.0] = K  # rows of weight 0 or > 1 leave the sorted path
        _sorted_grams(Zb, z, K, self.gram, self.nk)
        heavy = np.flatnonzero(wb > 1.0)
        if heavy.size:
            _multinomial_grams(
                Zb[heavy], wb[heavy], cumulative[:, heavy], self.count_rng, self.gram, self.nk
            )

    def stats(self) -> SufficientStats:
        return SufficientStats(self.nk, self.gram, self.loglik, self.n_obs)


def label_passes(rows: ArrayRows | DaskRows, states: list[_PassState]) -> list[SufficientStats]:
    """One pass over ``rows`` for several chains at once: each block is read (and, for Dask,
    computed and standardised) once and used by every chain while it is in cache. Each chain
    draws from its own streams in row order, so its draws do not depend on the others."""
    start = 0
    for Zb, wb in rows.blocks():
        for state in states:
            state.add(Zb, wb, start)
        start += Zb.shape[0]
    return [state.stats() for state in states]


def label_pass(
    rows: ArrayRows | DaskRows,
    log_weights: np.ndarray,
    beta: np.ndarray,
    sigma: np.ndarray,
    label_rng: np.random.Generator,
    count_rng: np.random.Generator,
    *,
    pointwise: np.ndarray | None = None,
    log_y_scale: float = 0.0,
) -> SufficientStats:
    """Draw every row's label from its responsibilities and return the hard assignment's
    statistics (one pass over ``rows``, one chain).

    Parameters
    ----------
    rows : ArrayRows or DaskRows
    log_weights, beta, sigma : ndarray of shape (K,), (K, q), (K,)
        The current parameters, standardised scale.
    label_rng, count_rng : numpy.random.Generator
        One uniform per row (label stream); multinomial counts of rows of weight > 1.
    pointwise : ndarray of shape (n,), optional
        Filled with each row's ``w_i log p(y_i | θ)`` in the original units of ``y``.
    log_y_scale : float
        ``log`` of the scale of ``y`` (for ``pointwise`` and the log-likelihood).

    Returns
    -------
    SufficientStats
        ``nk`` the (weighted) counts, ``gram`` the augmented Gram matrices
        ``Σ_{z_i = j} w_i z_i z_iᵀ``, ``log_likelihood`` of the current parameters (original
        units of ``y``) and ``n_obs``.
    """
    state = _PassState(log_weights, beta, sigma, label_rng, count_rng, pointwise, log_y_scale)
    return label_passes(rows, [state])[0]


def _sorted_grams(Zb: np.ndarray, z: np.ndarray, K: int, gram: np.ndarray, nk: np.ndarray) -> None:
    """Add ``Σ_{z_i = j} z_i z_iᵀ`` and the counts of labels ``0..K-1`` (label ``K``: skip)."""
    counts = np.bincount(z, minlength=K + 1)
    order = np.argsort(z, kind="stable")  # radix sort of int8 labels
    Zs = np.take(Zb, order, axis=0)
    a = 0
    for k in range(K):
        b = a + int(counts[k])
        if b > a:
            block = Zs[a:b]
            gram[k] += block.T @ block
        a = b
    nk += counts[:K]


def _multinomial_grams(
    Zh: np.ndarray,
    wh: np.ndarray,
    cumulative: np.ndarray,
    count_rng: np.random.Generator,
    gram: np.ndarray,
    nk: np.ndarray,
) -> None:
    """Rows of integer weight ``w > 1``: ``w`` replicated rows, whose labels are drawn at once
    as ``Multinomial(w, γ_i·)`` counts."""
    probs = np.diff(cumulative, axis=0, prepend=0.0).T  # (h, K), unnormalised
    probs /= probs.sum(axis=1, keepdims=True)
    counts = count_rng.multinomial(wh.astype(np.int64), probs)  # (h, K)
    for k in range(gram.shape[0]):
        ck = counts[:, k].astype(float)
        gram[k] += Zh.T @ (ck[:, None] * Zh)
        nk[k] += ck.sum()


# --------------------------------------------------------------------------------------------
# Steps 2-4: the conditional draws of the parameters
# --------------------------------------------------------------------------------------------


def coefficient_conditional(
    gram: np.ndarray, sigma: np.ndarray, prior: InternalPrior
) -> tuple[np.ndarray, np.ndarray]:
    """The Gaussian conditional of every component's coefficients given labels and sigma.

    Parameters
    ----------
    gram : ndarray of shape (K, q + 1, q + 1)
        Augmented Gram matrices of the hard assignment (:func:`label_pass`).
    sigma : ndarray of shape (K,)
    prior : InternalPrior

    Returns
    -------
    mean : ndarray of shape (K, q)
    precision_cholesky : ndarray of shape (K, q, q)
        Lower Cholesky factor ``L`` of the conditional precision ``V⁻¹ = L Lᵀ``.
    """
    q = gram.shape[1] - 1
    inv_s2 = 1.0 / sigma**2
    precision = gram[:, :q, :q] * inv_s2[:, None, None] + prior.precision
    rhs = gram[:, :q, q] * inv_s2[:, None] + prior.linear
    chol = np.linalg.cholesky(precision)
    mean = _cho_solve(chol, rhs)
    return mean, chol


def _cho_solve(chol: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``(L Lᵀ)⁻¹ rhs`` for a batch of lower Cholesky factors ``(K, q, q)`` and ``rhs (K, q)``."""
    half = np.linalg.solve(chol, rhs[..., None])
    return np.linalg.solve(np.swapaxes(chol, -1, -2), half)[..., 0]


def draw_coefficients(
    gram: np.ndarray, sigma: np.ndarray, prior: InternalPrior, rng: np.random.Generator
) -> np.ndarray:
    """One draw of every component's coefficients from :func:`coefficient_conditional`."""
    mean, chol = coefficient_conditional(gram, sigma, prior)
    noise = rng.standard_normal(mean.shape)
    # Lᵀ (β - m) ~ N(0, I)  =>  β = m + L⁻ᵀ ε
    return mean + np.linalg.solve(np.swapaxes(chol, -1, -2), noise[..., None])[..., 0]


def _log_sigma_target(u: float, n: float, rss: float, scale: float) -> float:
    """Log density of ``log σ`` given ``n`` rows with residual sum ``rss`` and a
    HalfNormal(``scale``) prior (up to a constant)."""
    return -(n - 1.0) * u - 0.5 * rss * math.exp(-2.0 * u) - 0.5 * math.exp(2.0 * u) / scale**2


def slice_log_sigma(
    sigma: float, n: float, rss: float, scale: float, rng: np.random.Generator
) -> float:
    """One slice-sampling step (stepping out, then shrinkage; Neal 2003) on ``log σ`` for the
    target of :func:`_log_sigma_target`, which it leaves invariant.

    The initial width is 2.5 standard deviations of the target's Laplace approximation at its
    mode (which has a closed form), so that a step usually needs few evaluations; the width
    depends on the target only, not on the current point.
    """
    # mode: t = σ² solves t²/s² + (n - 1) t - rss = 0
    a = n - 1.0
    t = 0.5 * scale**2 * (-a + math.sqrt(a * a + 4.0 * rss / scale**2))
    if t > 0:
        curvature = 2.0 * rss / t + 2.0 * t / scale**2
        width = 2.5 / math.sqrt(curvature) if curvature > 0 else 1.0
    else:
        width = 1.0
    u0 = math.log(sigma)
    level = _log_sigma_target(u0, n, rss, scale) - float(rng.standard_exponential())
    left = u0 - width * float(rng.random())
    right = left + width
    for _ in range(200):  # stepping out; the target is log-concave, so few steps are needed
        if _log_sigma_target(left, n, rss, scale) <= level:
            break
        left -= width
    for _ in range(200):
        if _log_sigma_target(right, n, rss, scale) <= level:
            break
        right += width
    while True:
        u = left + (right - left) * float(rng.random())
        if _log_sigma_target(u, n, rss, scale) > level:
            return math.exp(u)
        if u < u0:
            left = u
        else:
            right = u


def draw_sigma(
    sigma: np.ndarray,
    n: np.ndarray,
    rss: np.ndarray,
    scale: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """Draw each sigma from ``p(σ | n, RSS) ∝ σ^(-n) exp(-RSS/2σ²) HalfNormal(σ | scale)``.

    Exact rejection from the Gamma part of ``τ = σ⁻²`` where ``n >= 2`` (see the module
    docstring); otherwise, or after ``SIGMA_MAX_TRIES`` rejections, one slice step from the
    current value. Returns the new sigmas and how many were slice steps.
    """
    out = np.array(sigma, dtype=float)
    todo = np.flatnonzero((n >= 2.0) & (rss > 0.0))
    shape = 0.5 * (n[todo] - 1.0)
    rate = 0.5 * rss[todo]
    inv_2s2 = 0.5 / scale[todo] ** 2
    for _ in range(SIGMA_MAX_TRIES):
        if todo.size == 0:
            break
        tau = rng.gamma(shape, 1.0 / rate)
        accept = np.log(rng.random(todo.size)) < -inv_2s2 / tau
        out[todo[accept]] = 1.0 / np.sqrt(tau[accept])
        keep = ~accept
        todo, shape, rate, inv_2s2 = todo[keep], shape[keep], rate[keep], inv_2s2[keep]
    rest = np.union1d(todo, np.flatnonzero(~((n >= 2.0) & (rss > 0.0))))
    n_slice = 0
    for k in rest:
        if n[k] == 0 and rss[k] == 0:  # no rows: the prior itself, exactly
            out[k] = abs(float(rng.standard_normal())) * scale[k]
        else:
            out[k] = slice_log_sigma(float(out[k]), float(n[k]), float(rss[k]), scale[k], rng)
            n_slice += 1
    return out, n_slice


def draw_parameters(
    stats: SufficientStats,
    sigma: np.ndarray,
    prior: InternalPrior,
    variance: str,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Steps 2-4 of a sweep: weights, coefficients, then sigma, each from its conditional.

    Returns ``(weights, beta, sigma, n_slice)``.
    """
    K = stats.nk.shape[0]
    weights = rng.dirichlet(prior.alpha + stats.nk) if K > 1 else np.ones(1)
    beta = draw_coefficients(stats.gram, sigma, prior, rng)
    n_slice = 0
    if variance != "fixed":
        rss = residual_sums(stats.gram, beta)
        if variance == "shared":
            n_all, rss_all = stats.nk.sum(keepdims=True), rss.sum(keepdims=True)
            one, n_slice = draw_sigma(sigma[:1], n_all, rss_all, prior.sigma_scale[:1], rng)
            sigma = np.full(K, one[0])
        else:
            sigma, n_slice = draw_sigma(sigma, stats.nk, rss, prior.sigma_scale, rng)
    return weights, beta, sigma, n_slice


# --------------------------------------------------------------------------------------------
# One chain
# --------------------------------------------------------------------------------------------


@dataclass
class ChainJob:
    """Everything one chain needs (picklable: it travels to a worker process)."""

    rows: ArrayRows | DaskRows
    prior: InternalPrior
    variance: str
    weights: np.ndarray  # (K,) start, standardised scale
    beta: np.ndarray  # (K, q)
    sigma: np.ndarray  # (K,)
    draws: int
    tune: int
    seed: np.random.SeedSequence
    log_y_scale: float
    #: ``(path, (chains, draws, n), chain)``: write each kept draw's pointwise log-likelihood
    #: into row ``chain`` of that float64 file (shared by the chains' processes)
    pointwise: tuple[str, tuple[int, int, int], int] | None = None
    #: the independence Metropolis move before each sweep's labels (None: plain Gibbs)
    proposal: IndependenceProposal | None = None


@dataclass
class ChainResult:
    """The kept draws of one chain (standardised scale) and its bookkeeping."""

    weights: np.ndarray  # (draws, K)
    beta: np.ndarray  # (draws, K, q)
    sigma: np.ndarray  # (draws, K)
    log_likelihood: np.ndarray  # (draws,), original units of y
    n_empty: np.ndarray  # (draws,): components without rows in the latest labels of the draw
    n_slice: int  # sigma draws that were slice steps
    seconds: float
    sweeps: int = field(default=0)
    #: (draws,): whether the kept draw's sweep accepted the proposal (None: no move)
    accepted: np.ndarray | None = None
    #: proposals accepted during the burn-in
    accepted_tune: int = 0
    #: move-only iterations between sweeps, chosen early in the burn-in
    metropolis_steps: int = 0


class _Chain:
    """A chain inside :func:`run_chains`: its streams, current parameters and kept draws.

    Each iteration gives one draw. Without the move every iteration is a sweep. With it, an
    iteration is the move followed by a sweep (labels of the accepted parameters, then
    weights, coefficients and sigma), or the move alone (:func:`metropolis_steps`): see
    :func:`run_chains`.
    """

    def __init__(self, job: ChainJob, store: np.ndarray | None) -> None:
        # the first three streams are those of the plain sampler, whose draws a chain without
        # the move reproduces; the move has its own three
        label_seed, count_seed, param_seed, p_label, p_count, move_seed = job.seed.spawn(6)
        self.job = job
        self.label_rng = np.random.default_rng(label_seed)
        self.count_rng = np.random.default_rng(count_seed)
        self.rng = np.random.default_rng(param_seed)
        self.proposal = job.proposal
        if self.proposal is not None:
            self.proposal_label_rng = np.random.default_rng(p_label)
            self.proposal_count_rng = np.random.default_rng(p_count)
            self.move_rng = np.random.default_rng(move_seed)
        K, q = job.beta.shape
        D = job.draws
        self.weights = np.asarray(job.weights, float)
        self.beta = np.asarray(job.beta, float)
        self.sigma = np.asarray(job.sigma, float)
        self.out_w = np.empty((D, K))
        self.out_beta = np.empty((D, K, q))
        self.out_sigma = np.empty((D, K))
        self.out_ll = np.empty(D)
        self.out_empty = np.empty(D, dtype=np.int64)
        self.out_accepted = None if self.proposal is None else np.zeros(D, dtype=bool)
        self.accepted_tune = 0
        self.proposed_tune = 0
        self.out_pw = None if store is None else store[job.pointwise[2]]
        self.n_slice = 0
        self.n_empty = 0  # components without rows in the latest labels
        # the current parameters: their log-likelihood once a pass has computed it, and the
        # kept draw they are (-1 during the burn-in)
        self.current_ll: float | None = None
        self.current_ratio: float | None = None  # their _log_ratio, once computed
        self.current_draw = -1
        self.steps = 0  # move-only iterations between sweeps (metropolis_steps), from adapt_at
        self.adapt_at = min(ADAPT_ITERATIONS, job.tune // 2)
        self.proposed: tuple[np.ndarray, float] | None = None
        self.accepted = False
        self.plan: tuple[bool, bool, bool] = (True, False, False)  # sweep, current, proposal

    # -- the iteration's plan and its pass -----------------------------------------------------

    def is_sweep(self, t: int) -> bool:
        """Whether iteration ``t`` ends with a sweep (always, before the move's schedule is
        chosen (:meth:`_adapt`), for the first kept draw, and without the move)."""
        if self.proposal is None or self.steps == 0 or t < self.adapt_at:
            return True
        return (t - self.job.tune) % (self.steps + 1) == 0

    def pass_states(self, t: int) -> list[_PassState]:
        """The states of iteration ``t``'s pass: the current parameters' log-likelihood where
        no pass has computed it yet (with their labels, if there is no move); the proposal
        (its labels if the iteration sweeps, else its log-likelihood only)."""
        D, T = self.job.draws, self.job.tune
        sweep = self.is_sweep(t) if t < T + D else False
        propose = self.proposal is not None and t < T + D
        current = self.current_ll is None
        self.plan = (sweep, current, propose)
        self.proposed = None
        states = []
        if current:
            labelled = sweep and not propose
            streams = (self.label_rng, self.count_rng) if labelled else (None, None)
            states.append(self._state(self._current(), streams, self._row(self.current_draw)))
        if propose:
            phi = self.proposal.draw(self.move_rng)
            self.proposed = (phi, self._log_ratio(phi))
            if sweep:
                streams, row = (self.proposal_label_rng, self.proposal_count_rng), None
            else:
                streams, row = (None, None), self._row(t - T)
            states.append(self._state(self.proposal.layout.unpack(phi), streams, row))
        return states

    def _row(self, d: int) -> np.ndarray | None:
        return self.out_pw[d] if (self.out_pw is not None and d >= 0) else None

    def _state(
        self, params: tuple[np.ndarray, np.ndarray, np.ndarray], streams: Any, pointwise: Any
    ) -> _PassState:
        label_rng, count_rng = streams
        return _PassState(*params, label_rng, count_rng, pointwise, self.job.log_y_scale)

    def _current(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with np.errstate(divide="ignore"):
            return np.log(self.weights), self.beta, self.sigma

    def _log_ratio(self, phi: np.ndarray) -> float:
        """``log p(φ) - log q(φ)`` without the likelihood: the prior with its Jacobians over
        the proposal's density."""
        prop = self.proposal
        return log_target_prior(phi, prop.layout, self.job.prior) - prop.log_density(phi)

    def after_pass(self, stats: list[SufficientStats], t: int) -> SufficientStats | None:
        """Take the pass's results: the current parameters' log-likelihood, the move's
        decision, and a move-only iteration's draw. Returns the labels' statistics a sweep
        goes on from, or ``None`` when they are still to be drawn (a sweep whose proposal was
        rejected: :meth:`redo_state`) or when the iteration does not sweep."""
        sweep, current, propose = self.plan
        if current:
            self.current_ll = stats[0].log_likelihood
            if self.current_draw >= 0:
                self.out_ll[self.current_draw] = self.current_ll
            if not propose:  # no move: the labels of the current parameters
                return stats[0] if sweep else None
        self.accepted = self._decide(stats[-1])
        if t < self.job.tune:
            self.proposed_tune += 1
            self.accepted_tune += int(self.accepted)
        if self.accepted:
            log_w, self.beta, self.sigma = self.proposal.layout.unpack(self.proposed[0])
            self.weights = np.exp(log_w)
            self.current_ll = stats[-1].log_likelihood
            self.current_ratio = self.proposed[1]
        if sweep:
            return stats[-1] if self.accepted else None
        self._keep(t)  # a move-only iteration: its draw is the current parameters
        return None

    def _decide(self, proposed: SufficientStats) -> bool:
        """The independence Metropolis-Hastings decision (module docstring of
        :mod:`bayes_mlr.bayes.gibbs_proposal`)."""
        if self.current_ratio is None:
            with np.errstate(divide="ignore", invalid="ignore"):
                phi_now = self.proposal.layout.pack(self.weights, self.beta, self.sigma)
                self.current_ratio = self._log_ratio(phi_now)
        with np.errstate(invalid="ignore"):
            log_new = proposed.log_likelihood + self.proposed[1]
            log_now = self.current_ll + self.current_ratio
        u = float(self.move_rng.random())
        if not np.isfinite(log_new):
            return False
        if not np.isfinite(log_now):  # a state of zero density (an underflowed weight)
            return True
        return math.log(u) < log_new - log_now

    def redo_state(self) -> _PassState:
        """The current parameters' labels, after a sweep's rejected proposal."""
        return self._state(self._current(), (self.label_rng, self.count_rng), None)

    def sweep(self, stats: SufficientStats, t: int) -> None:
        """Steps 2-4 from the labels of the current parameters; keep the draw after the
        burn-in (its log-likelihood comes with the next pass)."""
        job = self.job
        self.weights, self.beta, self.sigma, slices = draw_parameters(
            stats, self.sigma, job.prior, job.variance, self.rng
        )
        self.n_slice += slices
        self.n_empty = int(np.count_nonzero(stats.nk == 0))
        self.current_ll = self.current_ratio = None
        self._keep(t)

    def _keep(self, t: int) -> None:
        d = t - self.job.tune
        if d < 0:
            self._adapt(t)
            return
        prev = self.current_draw
        self.out_w[d], self.out_beta[d], self.out_sigma[d] = self.weights, self.beta, self.sigma
        self.out_empty[d] = self.n_empty
        if self.out_accepted is not None:
            self.out_accepted[d] = self.accepted
        if self.current_ll is not None:  # a move-only draw: known now
            self.out_ll[d] = self.current_ll
            if self.out_pw is not None and not self.accepted and prev >= 0:
                self.out_pw[d] = self.out_pw[prev]  # the same parameters as draw d - 1
        self.current_draw = d

    def _adapt(self, t: int) -> None:
        """After ``adapt_at`` burn-in iterations, choose the move-only iterations between
        sweeps from this chain's acceptance rate so far (fixed afterwards, so that the kept
        draws come from one kernel)."""
        if self.proposal is None or t != self.adapt_at - 1:
            return
        if self.adapt_at >= ADAPT_MIN_SWEEPS:
            self.steps = metropolis_steps(self.accepted_tune / max(self.proposed_tune, 1))

    def result(self, seconds: float) -> ChainResult:
        return ChainResult(
            self.out_w,
            self.out_beta,
            self.out_sigma,
            self.out_ll,
            self.out_empty,
            self.n_slice,
            seconds,
            self.job.tune + self.job.draws,
            self.out_accepted,
            self.accepted_tune,
            self.steps,
        )


def metropolis_steps(acceptance: float) -> int:
    """Move-only iterations between two sweeps, from the move's acceptance rate
    (``METROPOLIS_STEPS``: the first entry whose threshold the rate reaches, else 0).

    A move-only iteration costs one log-likelihood pass (0.4 of a sweep's label pass) and,
    when the proposal is good, gives a nearly independent draw; a sweep is what keeps the
    chain moving where proposals are rejected. Measured once by hand on ``bench_gibbs``'s
    problem (acceptance 0.84): min bulk ESS per unit of pass cost 0.40 with a sweep every
    iteration, 0.65, 0.90 and 1.15 with 1, 3 and 7 move-only iterations between sweeps; at
    n = 2,000 (acceptance 0.74) 0.35 and 0.69 (none and 3); at n = 500 (0.57) 0.27 and 0.37.
    """
    for threshold, steps in METROPOLIS_STEPS:
        if acceptance >= threshold:
            return steps
    return 0


def run_chains(jobs: list[ChainJob]) -> list[ChainResult]:
    """Run chains in lockstep over one row source: ``tune + draws`` iterations each, keeping
    the last ``draws``. Every pass reads each block once for all the chains (for Dask data,
    each chunk is computed once per pass, not once per chain); the draws of a chain are those
    it would make alone.

    An iteration is one pass (a second one for a sweep whose proposal was rejected):

    * without the move, the labels of the current parameters, then steps 2-4; the pass also
      gives the log-likelihood of the parameters, which are the previous kept draw;
    * with the move, the log-likelihood of the current parameters (where no earlier pass
      gave it) and the proposal, then the decision; a sweep goes on from the labels of the
      accepted parameters, a move-only iteration keeps them as its draw.

    A kept draw's log-likelihood (and pointwise log-likelihood) is thus computed once, by the
    pass that first evaluates its parameters (one more pass after the last iteration where
    it ends with a sweep).
    """
    from bayes_mlr.core.data import blas_single_thread

    t0 = time.perf_counter()
    first = jobs[0]
    if any(
        j.rows is not first.rows or (j.tune, j.draws) != (first.tune, first.draws) for j in jobs
    ):
        raise ValueError("chains run together must share their rows, tune and draws")
    store = None
    if first.pointwise is not None:
        path, shape, _ = first.pointwise
        store = np.memmap(path, dtype=np.float64, mode="r+", shape=shape)
    chains = [_Chain(job, store) for job in jobs]
    T, D = first.tune, first.draws
    with blas_single_thread():
        for t in range(T + D + 1):
            last = t == T + D  # only the log-likelihood of the last draw, if still unknown
            states = [chain.pass_states(t) for chain in chains]
            if last and not any(states):
                break
            stats = label_passes(first.rows, [s for own in states for s in own])
            labels: list[SufficientStats | None] = []
            for chain, own in zip(chains, states, strict=True):
                st, stats = stats[: len(own)], stats[len(own) :]
                labels.append(chain.after_pass(st, t) if own else None)
            if last:
                break
            # sweeps whose proposal was rejected: the current parameters' labels, one more pass
            redo = [i for i, c in enumerate(chains) if c.plan[0] and labels[i] is None]
            if redo:
                again = label_passes(first.rows, [chains[i].redo_state() for i in redo])
                for i, st in zip(redo, again, strict=True):
                    labels[i] = st
            for chain, got in zip(chains, labels, strict=True):
                if chain.plan[0]:
                    chain.sweep(got, t)
    if store is not None:
        store.flush()
    seconds = time.perf_counter() - t0
    results = [chain.result(seconds) for chain in chains]
    del chains, store
    return results


def run_chain(job: ChainJob) -> ChainResult:
    """One chain alone (:func:`run_chains`)."""
    return run_chains([job])[0]
