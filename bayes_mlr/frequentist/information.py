"""Frequentist inference for fitted mixtures of linear regressions.

The model is ``y_i ~ sum_j weights_j N(intercept_j + coef_j . x_i, sigma_j^2)``, ``j = 1..K``,
with ``weights`` (K,), ``intercept`` (K,), ``coef`` (K, p) and ``sigma`` (K,).

This module provides

* :func:`n_parameters` -- the number of free parameters of a specification;
* :func:`observed_information` -- the analytic negative Hessian of the observed-data
  log-likelihood (Louis' identity), computed in blocks of rows;
* :func:`covariance` and :func:`standard_errors` -- the inverse observed information mapped to
  the natural scale by the delta method (the quantities R flexmix's ``refit()`` reports);
* :func:`information_criteria` -- BIC, AIC and ICL (lower is better, as in scikit-learn).

Free parameters and their order
-------------------------------
For each component ``j``: ``intercept[j]`` (only when ``fit_intercept``) followed by the ``p``
values ``coef[j, :]``; then ``log_sigma`` (``K`` values for ``variance="component"``, one for
``"shared"``, none for ``"fixed"``); then the ``K - 1`` logits ``eta_0 .. eta_{K-2}`` of the
weights, with the last component as reference (``eta_{K-1} = 0``, ``weights = softmax(eta)``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
from scipy import linalg
from scipy.special import logsumexp

from bayes_mlr._validation import is_dask_collection

__all__ = [
    "SingularInformationWarning",
    "covariance",
    "information_criteria",
    "n_parameters",
    "observed_information",
    "standard_errors",
]

_VARIANCES = ("component", "shared", "fixed")

# Rows per block when accumulating the information matrix; the block is further shortened so
# that the (rows, P) array of mean scores stays below _BLOCK_ELEMENTS floats (64 MiB).
_BLOCK_ROWS = 50_000
_BLOCK_ELEMENTS = 2**23

# An eigenvalue of the scaled information (see _invert_information; its diagonal is at most 1,
# and about 0.5 for a well-identified parameter) below _EIG_RTOL times the largest one counts
# as zero. Rounding in the accumulated sums leaves exact null directions near 1e-16..1e-13.
_EIG_RTOL = 1e-10
# A parameter is "affected" by such a direction when its squared loadings on the bad
# eigenvectors sum to more than this (a loading of 1e-5; unaffected ones sit at rounding level).
_LOADING_TOL = 1e-10

_LOG_2PI = float(np.log(2.0 * np.pi))


class SingularInformationWarning(RuntimeWarning):
    """The observed information is singular or not positive definite.

    Standard errors of the parameters involved are reported as NaN.
    """


# --------------------------------------------------------------------------------------------
# Parameter counting and layout
# --------------------------------------------------------------------------------------------


def _check_spec(n_components: int, n_features: int, variance: str, fit_intercept: bool) -> None:
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)):
        raise ValueError(f"n_components must be an integer, got {n_components!r}")
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1, got {n_components}")
    if isinstance(n_features, bool) or not isinstance(n_features, (int, np.integer)):
        raise ValueError(f"n_features must be an integer, got {n_features!r}")
    if n_features < 0:
        raise ValueError(f"n_features must be >= 0, got {n_features}")
    if variance not in _VARIANCES:
        raise ValueError(f"variance must be one of {_VARIANCES}, got {variance!r}")
    if not isinstance(fit_intercept, (bool, np.bool_)):
        raise ValueError(f"fit_intercept must be a bool, got {fit_intercept!r}")


def _n_sigma(n_components: int, variance: str) -> int:
    return {"component": n_components, "shared": 1, "fixed": 0}[variance]


def n_parameters(
    n_components: int,
    n_features: int,
    *,
    variance: str,
    fit_intercept: bool,
    n_shared: int = 0,
    n_concomitant: int = 0,
) -> int:
    """Number of free parameters of a mixture of linear regressions.

    Parameters
    ----------
    n_components : int
        Number of components ``K`` (>= 1).
    n_features : int
        Number of features ``p`` (>= 0).
    variance : {"component", "shared", "fixed"}
        ``"component"``: one sigma per component; ``"shared"``: one sigma for all components;
        ``"fixed"``: sigma is known and not estimated.
    fit_intercept : bool
        Whether each component has a free intercept.
    n_shared : int, default=0
        Design columns (the intercept included) whose coefficient is shared by all
        components: each counts once instead of ``K`` times.
    n_concomitant : int, default=0
        Concomitant variables ``r``: the weights are then a multinomial logit with
        ``(K - 1)(r + 1)`` coefficients instead of ``K - 1`` free weights.

    Returns
    -------
    int
        ``K * (p + fit_intercept)`` regression coefficients (``(K - 1) * n_shared`` fewer),
        plus ``(K - 1)(r + 1)`` mixing parameters, plus ``K``, ``1`` or ``0`` sigmas for
        ``"component"``, ``"shared"`` and ``"fixed"``.
    """
    _check_spec(n_components, n_features, variance, fit_intercept)
    k, p = int(n_components), int(n_features)
    n_coef = k * (p + int(fit_intercept)) - (k - 1) * int(n_shared)
    return n_coef + _n_sigma(k, variance) + (k - 1) * (int(n_concomitant) + 1)


@dataclass(frozen=True)
class _Layout:
    """Positions of the free parameters in the vector theta."""

    n_components: int
    n_features: int
    variance: str
    fit_intercept: bool

    @property
    def n_design(self) -> int:
        """Columns of the design matrix ``[1, x]`` or ``x``."""
        return self.n_features + int(self.fit_intercept)

    @property
    def n_sigma(self) -> int:
        return _n_sigma(self.n_components, self.variance)

    @property
    def sigma_start(self) -> int:
        return self.n_components * self.n_design

    @property
    def logit_start(self) -> int:
        return self.sigma_start + self.n_sigma

    @property
    def size(self) -> int:
        return self.logit_start + self.n_components - 1

    def beta(self, j: int) -> np.ndarray:
        """Indices of ``[intercept_j, coef_j]`` (intercept only when fitted)."""
        start = j * self.n_design
        return np.arange(start, start + self.n_design)

    def sigma(self, j: int) -> np.ndarray:
        """Index of the log-sigma that component ``j`` uses (empty for ``"fixed"``)."""
        if self.variance == "component":
            return np.array([self.sigma_start + j])
        if self.variance == "shared":
            return np.array([self.sigma_start])
        return np.array([], dtype=int)

    def logits(self) -> np.ndarray:
        return np.arange(self.logit_start, self.size)

    def labels(self) -> list[str]:
        out: list[str] = []
        for j in range(self.n_components):
            if self.fit_intercept:
                out.append(f"intercept[{j}]")
            out.extend(f"coef[{j},{k}]" for k in range(self.n_features))
        if self.variance == "component":
            out.extend(f"log_sigma[{j}]" for j in range(self.n_components))
        elif self.variance == "shared":
            out.append("log_sigma")
        out.extend(f"logit[{j}]" for j in range(self.n_components - 1))
        return out


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Problem:
    X: np.ndarray
    y: np.ndarray
    sample_weight: np.ndarray | None
    weights: np.ndarray
    intercept: np.ndarray
    coef: np.ndarray
    sigma: np.ndarray
    layout: _Layout


def _as_float_array(value: object, name: str, ndim: int) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _validate(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    intercept: np.ndarray,
    coef: np.ndarray,
    sigma: np.ndarray,
    variance: str,
    fit_intercept: bool,
    sample_weight: np.ndarray | None,
) -> _Problem:
    if is_dask_collection(X) or is_dask_collection(y):
        # Out-of-core data: kept lazy, the information is summed chunk by chunk (_information).
        from bayes_mlr.core.dask_data import prepare

        X, y, sample_weight, _ = prepare(X, y, sample_weight)
        return _validate_params(
            X, y, weights, intercept, coef, sigma, variance, fit_intercept, sample_weight
        )
    X = _as_float_array(X, "X", 2)
    y = _as_float_array(y, "y", 1)
    return _validate_params(
        X, y, weights, intercept, coef, sigma, variance, fit_intercept, sample_weight
    )


def _validate_params(
    X, y, weights, intercept, coef, sigma, variance, fit_intercept, sample_weight
) -> _Problem:
    n, p = X.shape
    if y.shape[0] != n:
        raise ValueError(f"y must have shape ({n},) to match X, got {y.shape}")
    weights = _as_float_array(weights, "weights", 1)
    k = weights.shape[0]
    _check_spec(k, p, variance, fit_intercept)
    if np.any(weights <= 0.0):
        raise ValueError("weights must be strictly positive (logits of a zero weight are -inf)")
    if abs(weights.sum() - 1.0) > 1e-6:
        raise ValueError(f"weights must sum to 1, got sum {weights.sum()!r}")
    weights = weights / weights.sum()
    intercept = _as_float_array(intercept, "intercept", 1)
    if intercept.shape != (k,):
        raise ValueError(f"intercept must have shape ({k},), got {intercept.shape}")
    coef = _as_float_array(coef, "coef", 2)
    if coef.shape != (k, p):
        raise ValueError(
            f"coef must have shape ({k}, {p}) to match weights and X, got {coef.shape}"
        )
    sigma = _as_float_array(sigma, "sigma", 1)
    if sigma.shape != (k,):
        raise ValueError(f"sigma must have shape ({k},), got {sigma.shape}")
    if np.any(sigma <= 0.0):
        raise ValueError("sigma must be strictly positive")
    if variance == "shared" and np.ptp(sigma) > 1e-6 * sigma.max():
        raise ValueError(f"sigma must have equal entries for variance='shared', got {sigma}")
    if sample_weight is not None and not is_dask_collection(sample_weight):
        sample_weight = _as_float_array(sample_weight, "sample_weight", 1)
        if sample_weight.shape != (n,):
            raise ValueError(f"sample_weight must have shape ({n},), got {sample_weight.shape}")
        if np.any(sample_weight < 0.0):
            raise ValueError("sample_weight must be non-negative")
    layout = _Layout(k, p, variance, bool(fit_intercept))
    return _Problem(X, y, sample_weight, weights, intercept, coef, sigma, layout)


# --------------------------------------------------------------------------------------------
# Observed information
# --------------------------------------------------------------------------------------------


def _design(X: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """Design matrix ``[1, X]`` (n, p + 1) or ``X`` (n, p)."""
    if not fit_intercept:
        return X
    return np.column_stack([np.ones(X.shape[0]), X])


def _block_hessian(prob: _Problem, rows: slice) -> tuple[np.ndarray, np.ndarray]:
    """Hessian (P, P) of the log-likelihood contribution of ``rows``, and its gross diagonal.

    Uses ``sum_i w_i [sum_j gamma_ij (H_ij + g_ij g_ij^T) - gbar_i gbar_i^T]`` where ``g_ij`` and
    ``H_ij`` are the gradient and Hessian of ``log(pi_j f_ij)``. ``g_ij`` is non-zero only on
    the parameters of component ``j``, its log-sigma and the logits, so the ``gamma``-weighted
    terms are accumulated on that compressed index set per component.

    The second output (P,) is ``sum_i w_i sum_j gamma_ij (|H_ij,kk| + g_ij,k^2)``, the size of
    the terms that cancel in the diagonal. It bounds the diagonal of the information (as
    ``gbar_ik^2 <= sum_j gamma_ij g_ij,k^2``) and is zero only for a parameter that the data do
    not inform at all.
    """
    lay = prob.layout
    k = lay.n_components
    fit_intercept = lay.fit_intercept
    X = prob.X[rows]
    y = prob.y[rows]
    n_rows = X.shape[0]
    w = np.ones(n_rows) if prob.sample_weight is None else prob.sample_weight[rows]
    Z = _design(X, fit_intercept)  # (nb, d)

    beta = np.column_stack([prob.intercept, prob.coef]) if fit_intercept else prob.coef  # (K, d)
    mean = Z @ beta.T  # (nb, K)
    if not fit_intercept:
        mean = mean + prob.intercept  # a fixed offset, not a free parameter
    resid = y[:, None] - mean  # (nb, K)
    inv_var = prob.sigma**-2  # (K,)
    z2 = resid**2 * inv_var  # squared standardized residuals (nb, K)
    log_pf = np.log(prob.weights) - np.log(prob.sigma) - 0.5 * _LOG_2PI - 0.5 * z2
    gamma = np.exp(log_pf - logsumexp(log_pf, axis=1, keepdims=True))  # (nb, K)

    a = resid * inv_var  # d log f / d beta_j = a_ij z_i
    b = z2 - 1.0  # d log f / d log sigma_j
    pi_free = prob.weights[: k - 1]  # d log pi_j / d eta = e_j - pi_free
    fisher_logit = np.diag(pi_free) - np.outer(pi_free, pi_free)  # -d2 log pi_j / d eta2
    has_sigma = lay.variance != "fixed"
    d = lay.n_design

    # Weighted outer-product sums are formed as U^T U with U scaled by sqrt(weight): numpy then
    # calls BLAS syrk, several times faster than a general product for these tall matrices.
    root_w = np.sqrt(w)
    hess = np.zeros((lay.size, lay.size))
    gross = np.zeros(lay.size)
    gbar = np.zeros((n_rows, lay.size))  # sqrt(w_i) * mean score gbar_i
    logit_idx = lay.logits()
    for j in range(k):
        wg = w * gamma[:, j]
        idx = np.concatenate([lay.beta(j), lay.sigma(j), logit_idx])
        score_logit = -pi_free.copy()
        if j < k - 1:
            score_logit[j] += 1.0
        parts = [a[:, j : j + 1] * Z]
        if has_sigma:
            parts.append(b[:, j : j + 1])
        parts.append(np.broadcast_to(score_logit, (n_rows, k - 1)))
        scores = np.concatenate(parts, axis=1)  # compressed g_ij, (nb, m)
        scores *= np.sqrt(wg)[:, None]

        block = scores.T @ scores  # sum_i w gamma g g^T
        gross_j = np.diag(block).copy()
        # sum_i w gamma H_ij on the compressed indices.
        z_scaled = Z * np.sqrt(wg * inv_var[j])[:, None]
        block[:d, :d] -= z_scaled.T @ z_scaled
        if has_sigma:
            cross = -2.0 * (wg * a[:, j]) @ Z
            block[:d, d] += cross
            block[d, :d] += cross
            block[d, d] -= 2.0 * wg @ z2[:, j]
        if k > 1:
            block[-(k - 1) :, -(k - 1) :] -= wg.sum() * fisher_logit
        # Every diagonal entry of H_ij is <= 0, so |H_kk| = gross_j - diag(block).
        hess[np.ix_(idx, idx)] += block
        gross[idx] += 2.0 * gross_j - np.diag(block)

        # Mean score gbar_i = sum_j gamma_ij g_ij (logit part added below).
        gbar[:, j * d : (j + 1) * d] = (root_w * gamma[:, j] * a[:, j])[:, None] * Z
        if has_sigma:
            gbar[:, lay.sigma(j)[0]] += root_w * gamma[:, j] * b[:, j]
    if k > 1:
        gbar[:, lay.logit_start :] = root_w[:, None] * (gamma[:, : k - 1] - pi_free)
    hess -= gbar.T @ gbar
    return hess, gross


def _chunk_information(prob: _Problem, X, y, sample_weight) -> tuple[np.ndarray, np.ndarray]:
    """Information of one chunk of rows (module level: picklable for Dask workers)."""
    w = None if sample_weight is None else np.asarray(sample_weight, float)
    chunk = replace(prob, X=np.asarray(X, float), y=np.asarray(y, float), sample_weight=w)
    return _information(chunk)


def _information(prob: _Problem) -> tuple[np.ndarray, np.ndarray]:
    """Observed information (P, P) and its gross diagonal (P,), accumulated over row blocks.

    The information is a sum over rows, so Dask data are handled chunk by chunk and summed.
    """
    if is_dask_collection(prob.X):
        import dask

        xb, yb = prob.X.to_delayed().ravel(), prob.y.to_delayed().ravel()
        wb = prob.sample_weight.to_delayed().ravel() if prob.sample_weight is not None else None
        # The template must not carry the lazy arrays (Dask would make each task depend on all).
        template = replace(prob, X=None, y=None, sample_weight=None)
        tasks = [
            dask.delayed(_chunk_information)(template, xb[i], yb[i], None if wb is None else wb[i])
            for i in range(len(xb))
        ]
        parts = dask.compute(*tasks)
        return sum(p[0] for p in parts), sum(p[1] for p in parts)
    n = prob.X.shape[0]
    size = prob.layout.size
    step = max(1, min(_BLOCK_ROWS, _BLOCK_ELEMENTS // max(size, 1)))
    info = np.zeros((size, size))
    gross = np.zeros(size)
    for start in range(0, n, step):
        hess, gross_block = _block_hessian(prob, slice(start, min(start + step, n)))
        info -= hess
        gross += gross_block
    return 0.5 * (info + info.T), gross


def observed_information(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    intercept: np.ndarray,
    coef: np.ndarray,
    sigma: np.ndarray,
    *,
    variance: str,
    fit_intercept: bool,
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Observed information of the observed-data log-likelihood.

    The negative Hessian of
    ``l(theta) = sum_i w_i log sum_j pi_j N(y_i | intercept_j + coef_j . x_i, sigma_j^2)``
    with respect to the free parameters ``theta`` (see the module docstring for their order),
    computed analytically by Louis' identity in blocks of rows. It is valid at any parameter
    value, not only at the maximum likelihood estimate.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Features.
    y : ndarray of shape (n,)
        Responses.
    weights : ndarray of shape (K,)
        Mixing weights, strictly positive and summing to one.
    intercept : ndarray of shape (K,)
        Intercepts. With ``fit_intercept=False`` they are a fixed offset, normally zeros.
    coef : ndarray of shape (K, p)
        Regression coefficients.
    sigma : ndarray of shape (K,)
        Residual standard deviations; all entries equal for ``variance="shared"``.
    variance : {"component", "shared", "fixed"}
        Which sigmas are free parameters (``K``, one, or none).
    fit_intercept : bool
        Whether the intercepts are free parameters.
    sample_weight : ndarray of shape (n,), optional
        Non-negative replication weights ``w_i`` (default 1).

    Returns
    -------
    information : ndarray of shape (P, P)
        Symmetric observed information, ``P = n_parameters(K, p, ...)``.
    labels : list of str
        Parameter labels, e.g. ``"intercept[0]"``, ``"coef[0,1]"``, ``"log_sigma[0]"``
        (``"log_sigma"`` when shared), ``"logit[0]"``.
    """
    prob = _validate(X, y, weights, intercept, coef, sigma, variance, fit_intercept, sample_weight)
    return _information(prob)[0], prob.layout.labels()


# --------------------------------------------------------------------------------------------
# Inversion and delta method
# --------------------------------------------------------------------------------------------


def _invert_information(info: np.ndarray, gross: np.ndarray, labels: list[str]) -> np.ndarray:
    """Inverse of the information, with NaN for parameters in singular directions.

    The matrix is first scaled by ``1 / sqrt(gross)`` on both sides, where ``gross`` (P,) is the
    size of the terms summed into each diagonal entry: the check then does not depend on the
    units of the parameters, and a diagonal entry that is zero up to rounding (e.g. the logit of
    two identical components) stays near zero instead of being blown up to one, as scaling by
    the diagonal itself would do. If every eigenvalue of the scaled matrix exceeds
    ``_EIG_RTOL`` times the largest, it is inverted with a Cholesky solve. Otherwise a warning is
    issued, the inverse is taken on the well-determined eigen-subspace, and the rows and columns
    of the parameters that load on a bad direction are set to NaN.
    """
    size = info.shape[0]
    if size == 0:
        return np.zeros((0, 0))
    if not np.all(np.isfinite(info)):
        _warn_singular(
            "The observed information contains NaN or infinite values; standard errors of all "
            "parameters are set to NaN."
        )
        return np.full((size, size), np.nan)
    uninformed = ~(gross > 0.0)
    scale = 1.0 / np.sqrt(np.where(uninformed, 1.0, gross))
    scaled = info * np.outer(scale, scale)
    eigval, eigvec = linalg.eigh(scaled)
    threshold = _EIG_RTOL * max(eigval[-1], 0.0)
    bad = eigval <= threshold
    cov_scaled = None
    if not np.any(bad):
        try:
            cov_scaled = linalg.cho_solve(linalg.cho_factor(scaled, lower=True), np.eye(size))
        except linalg.LinAlgError:  # pragma: no cover - eigenvalues above say it is PD
            cov_scaled = None
    if cov_scaled is None:
        good = ~bad
        cov_scaled = (eigvec[:, good] / eigval[good]) @ eigvec[:, good].T
    with np.errstate(over="ignore", invalid="ignore"):  # nearly empty components: see below
        cov = 0.5 * (cov_scaled + cov_scaled.T) * np.outer(scale, scale)
    affected = np.sum(eigvec[:, bad] ** 2, axis=1) > _LOADING_TOL
    # A parameter with (almost) no data overflows when scaled back: report it as undetermined.
    affected |= uninformed | ~np.isfinite(np.diag(cov))
    if not np.any(affected) and not np.any(bad):
        return cov
    cov[affected, :] = np.nan
    cov[:, affected] = np.nan
    names = ", ".join(label for label, hit in zip(labels, affected, strict=True) if hit)
    kind = "not positive definite" if np.any(eigval < -threshold) else "singular"
    _warn_singular(
        f"The observed information matrix is {kind} (eigenvalues of the scaled matrix from "
        f"{eigval[0]:.3g} to {eigval[-1]:.3g}); standard errors of {names or 'no parameter'} are "
        "set to NaN. The model may not be identified at these parameters (duplicated or empty "
        "components, collinear features) or the parameters may not be at a local maximum of "
        "the likelihood."
    )
    return cov


def _warn_singular(message: str) -> None:
    # Called from _invert_information <- _natural_covariance <- the public function, so
    # stacklevel=5 attributes the warning to the user's call of the public function.
    warnings.warn(message, SingularInformationWarning, stacklevel=5)


def _natural_jacobian(prob: _Problem) -> tuple[np.ndarray, list[str]]:
    """Jacobian (Q, P) of the natural parameters with respect to theta, and their labels.

    Natural parameters: for each component ``[intercept_j, coef_j]`` as in theta; then ``sigma``
    (``K`` values, one when shared, none when fixed); then all ``K`` weights.
    """
    lay = prob.layout
    k = lay.n_components
    n_beta = lay.sigma_start
    labels = lay.labels()[:n_beta]
    n_nat = n_beta + lay.n_sigma + k
    jac = np.zeros((n_nat, lay.size))
    jac[:n_beta, :n_beta] = np.eye(n_beta)
    s0 = lay.sigma_start
    if lay.variance == "component":
        jac[s0 : s0 + k, s0 : s0 + k] = np.diag(prob.sigma)
        labels.extend(f"sigma[{j}]" for j in range(k))
    elif lay.variance == "shared":
        jac[s0, s0] = prob.sigma[0]
        labels.append("sigma")
    # d pi_j / d eta_m = pi_j (delta_jm - pi_m), m = 0..K-2 (eta_{K-1} = 0 is fixed).
    pi = prob.weights
    softmax_jac = np.diag(pi) - np.outer(pi, pi)
    jac[n_nat - k :, lay.logit_start :] = softmax_jac[:, : k - 1]
    labels.extend(f"weights[{j}]" for j in range(k))
    return jac, labels


def delta_method(cov_theta: np.ndarray, jac: np.ndarray) -> np.ndarray:
    """``J Σ Jᵀ``, with NaN rows and columns for the natural parameters that depend on a
    parameter of ``Σ`` in a singular direction (NaN on its diagonal)."""
    bad_theta = np.isnan(np.diag(cov_theta))
    cov = jac @ np.where(bad_theta[:, None] | bad_theta[None, :], 0.0, cov_theta) @ jac.T
    # A natural parameter is undetermined when it depends on an undetermined theta entry.
    bad = (jac[:, bad_theta] != 0.0).any(axis=1)
    cov[bad, :] = np.nan
    cov[:, bad] = np.nan
    return 0.5 * (cov + cov.T)


def _natural_covariance(prob: _Problem) -> tuple[np.ndarray, list[str]]:
    info, gross = _information(prob)
    cov_theta = _invert_information(info, gross, prob.layout.labels())
    jac, labels = _natural_jacobian(prob)
    return delta_method(cov_theta, jac), labels


def covariance(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    intercept: np.ndarray,
    coef: np.ndarray,
    sigma: np.ndarray,
    *,
    variance: str,
    fit_intercept: bool,
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Asymptotic covariance of the estimates on the natural scale.

    The inverse observed information (see :func:`observed_information`) mapped by the delta
    method from ``(beta, log sigma, logits)`` to ``(beta, sigma, weights)``.

    Parameters
    ----------
    X, y, weights, intercept, coef, sigma, variance, fit_intercept, sample_weight
        As in :func:`observed_information`.

    Returns
    -------
    cov : ndarray of shape (Q, Q)
        Covariance of, in order: for each component ``[intercept_j (if fitted), coef_j]``; then
        ``sigma`` (``K`` entries for ``"component"``, one for ``"shared"``, none for
        ``"fixed"``); then all ``K`` weights (whose covariance is singular since they sum
        to one). Rows and columns of parameters in a singular direction are NaN.
    labels : list of str
        ``"intercept[j]"``, ``"coef[j,k]"``, ``"sigma[j]"`` or ``"sigma"``, ``"weights[j]"``.

    Warns
    -----
    SingularInformationWarning
        If the observed information is singular or not positive definite.
    """
    prob = _validate(X, y, weights, intercept, coef, sigma, variance, fit_intercept, sample_weight)
    return _natural_covariance(prob)


def standard_errors(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    intercept: np.ndarray,
    coef: np.ndarray,
    sigma: np.ndarray,
    *,
    variance: str,
    fit_intercept: bool,
    sample_weight: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Standard errors of the estimates from the observed information.

    Parameters
    ----------
    X, y, weights, intercept, coef, sigma, variance, fit_intercept, sample_weight
        As in :func:`observed_information`.

    Returns
    -------
    dict
        ``"weights"`` (K,): delta method through the softmax of the logits (zeros when K = 1);
        ``"intercept"`` (K,): zeros when ``fit_intercept=False``;
        ``"coef"`` (K, p);
        ``"sigma"`` (K,): ``sigma * SE(log sigma)``, the same value in every entry when shared,
        zeros when fixed.
        Entries in a singular direction of the information are NaN.

    Warns
    -----
    SingularInformationWarning
        If the observed information is singular or not positive definite.
    """
    prob = _validate(X, y, weights, intercept, coef, sigma, variance, fit_intercept, sample_weight)
    lay = prob.layout
    k, p, d = lay.n_components, lay.n_features, lay.n_design
    cov, _ = _natural_covariance(prob)
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))  # clip rounding below zero; NaN propagates

    beta_se = se[: lay.sigma_start].reshape(k, d)
    intercept_se = beta_se[:, 0].copy() if lay.fit_intercept else np.zeros(k)
    coef_se = beta_se[:, int(lay.fit_intercept) :].reshape(k, p).copy()
    sig = se[lay.sigma_start : lay.sigma_start + lay.n_sigma]
    if lay.variance == "component":
        sigma_se = sig.copy()
    elif lay.variance == "shared":
        sigma_se = np.full(k, sig[0])
    else:
        sigma_se = np.zeros(k)
    weights_se = se[-k:].copy()
    return {"weights": weights_se, "intercept": intercept_se, "coef": coef_se, "sigma": sigma_se}


# --------------------------------------------------------------------------------------------
# Information criteria
# --------------------------------------------------------------------------------------------


def information_criteria(
    log_likelihood: float,
    resp: np.ndarray,
    n_params: int,
    n_obs: int,
    sample_weight: np.ndarray | None = None,
) -> dict[str, float]:
    """BIC, AIC and ICL of a fitted mixture (lower is better, as in scikit-learn).

    Parameters
    ----------
    log_likelihood : float
        Maximised (weighted) observed-data log-likelihood.
    resp : ndarray of shape (n, K)
        Responsibilities ``gamma_ij`` (rows on the simplex).
    n_params : int
        Number of free parameters, e.g. from :func:`n_parameters`.
    n_obs : int
        Number of rows ``n``; must equal ``resp.shape[0]``.
    sample_weight : ndarray of shape (n,), optional
        Replication weights; the sample size is then ``sum(sample_weight)``.

    Returns
    -------
    dict
        ``"bic"``: ``-2 l + P log n``; ``"aic"``: ``-2 l + 2 P``;
        ``"icl"``: ``bic - 2 sum_i w_i log gamma_{i, z_i}`` with ``z_i = argmax_j gamma_ij`` the
        MAP component, so ``icl >= bic``. This is the ICL of Biernacki, Celeux & Govaert (2000)
        as flexmix's ``ICL()`` and mclust compute it: BIC of the *classification* likelihood at
        the MAP labels. (The entropy form ``bic + 2 sum_ij -gamma_ij log gamma_ij`` of
        McLachlan & Peel (2000, §6.10.3) is larger; the two differ by about 18 on a 200-row
        example.)

    References
    ----------
    Biernacki, C., Celeux, G. and Govaert, G. (2000). Assessing a mixture model for clustering
    with the integrated completed likelihood. *IEEE Trans. PAMI* 22, 719-725.
    """
    log_likelihood = float(log_likelihood)
    if not np.isfinite(log_likelihood):
        raise ValueError(f"log_likelihood must be finite, got {log_likelihood}")
    resp = _as_float_array(resp, "resp", 2)
    if np.any(resp < -1e-10) or np.any(resp > 1.0 + 1e-10):
        raise ValueError("resp must lie in [0, 1]")
    if isinstance(n_params, bool) or not isinstance(n_params, (int, np.integer)) or n_params < 0:
        raise ValueError(f"n_params must be a non-negative integer, got {n_params!r}")
    if isinstance(n_obs, bool) or not isinstance(n_obs, (int, np.integer)) or n_obs < 1:
        raise ValueError(f"n_obs must be a positive integer, got {n_obs!r}")
    if resp.shape[0] != n_obs:
        raise ValueError(f"resp must have n_obs={n_obs} rows, got {resp.shape[0]}")
    # -log gamma at the MAP component, per row (0 where a row is certain)
    with np.errstate(divide="ignore"):
        penalty = -np.log(np.clip(resp.max(axis=1), 0.0, 1.0))  # (n,)
    if sample_weight is None:
        n_eff = float(n_obs)
        total_penalty = float(penalty.sum())
    else:
        sample_weight = _as_float_array(sample_weight, "sample_weight", 1)
        if sample_weight.shape != (n_obs,):
            raise ValueError(f"sample_weight must have shape ({n_obs},), got {sample_weight.shape}")
        if np.any(sample_weight < 0.0) or sample_weight.sum() <= 0.0:
            raise ValueError("sample_weight must be non-negative with a positive sum")
        n_eff = float(sample_weight.sum())
        total_penalty = float(sample_weight @ penalty)
    bic = -2.0 * log_likelihood + n_params * np.log(n_eff)
    aic = -2.0 * log_likelihood + 2.0 * n_params
    return {"bic": float(bic), "aic": float(aic), "icl": float(bic + 2.0 * total_penalty)}
