"""Observed information and standard errors of concomitant, grouped and shared models.

The free parameters ``θ`` (original units) are, in order:

* the shared design coefficients (the intercept first when it is shared);
* for each component ``j``, its own design coefficients;
* the family's nuisance parameters: ``log σ``, one per component (``variance="component"``),
  one (``"shared"``) or none (``"fixed"``, and the Poisson and binomial families); ``log ν``
  per component for a Student-t family with estimated degrees of freedom;
* the mixing coefficients of components ``1 .. K-1``, each ``[α_j, γ_j]`` (component 0 is the
  reference; with constant mixing ``α_j = log(π_j / π_0)`` alone).

With ``a_gj = log π_gj + Σ_{i∈g} log N(y_i | x1_iᵀβ_j, σ_j²)``, group responsibilities
``γ_gj`` and replication weights ``c_g``, the observed-data log-likelihood is
``ℓ = Σ_g c_g logsumexp_j a_gj`` and its Hessian (Louis 1982, per group)

    ∇²ℓ = Σ_g c_g [ Σ_j γ_gj (∇²a_gj + ∇a_gj ∇a_gjᵀ) − s_g s_gᵀ ],   s_g = Σ_j γ_gj ∇a_gj.

``∇a_gj`` is the group's score under component ``j``. Each family gives the first and second
derivatives of ``log f`` in the linear predictor ``η_ij`` and its nuisance parameters
(:meth:`~bayes_mlr.core.components.family.Family.derivatives`; e.g. ``e/σ²`` and
``e²/σ² − 1`` for the Gaussian, ``y − μ`` for the Poisson); the coefficients' score is then
``Σ_{i∈g} x1_i ∂log f/∂η`` (shared ones included), and ``(δ_jk − π_gk) w_g`` that of the
mixing coefficients of component ``k``. The ``γ``-weighted Hessian terms are row sums (weighted
Gram matrices) plus the multinomial-logit Fisher information, which
:class:`~bayes_mlr.core.mixing.MultinomialLogit` supplies. The covariance is the inverse
information, mapped by the delta method to ``(intercept, coef, sigma, weights,
concomitant_intercept, concomitant_coef)``; ``weights`` are the mean prior weights over the rows.
Without groups, concomitant variables or shared columns this equals
:mod:`bayes_mlr.frequentist.information` (a test checks it to 1e-8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bayes_mlr._validation import is_dask_collection
from bayes_mlr.core.group_data import bayes_rule
from bayes_mlr.core.grouping import Grouping, group_constant
from bayes_mlr.core.mixing import ConstantMixing, MultinomialLogit
from bayes_mlr.core.structured import family_rows
from bayes_mlr.frequentist.information import _invert_information, delta_method
from bayes_mlr.results import EMResult

__all__ = ["Layout", "covariance", "log_likelihood_at", "observed_information", "standard_errors"]

_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class Layout:
    """Where each parameter sits in ``θ``.

    Attributes
    ----------
    beta_index : ndarray of int, shape (K, q)
        Index in θ of each design coefficient of each component (shared ones repeat).
    nuisance_index : ndarray of int, shape (K, m)
        Index of each component's nuisance parameters (the family's ``nuisance``: ``log σ``,
        ``log ν``), -1 where fixed.
    gate_index : ndarray of int, shape (K, r1)
        Index of each mixing coefficient (-1 on row 0, the reference).
    labels : list of str
    nuisance : tuple of str
        The names of the nuisance columns.
    """

    beta_index: np.ndarray
    nuisance_index: np.ndarray
    gate_index: np.ndarray
    labels: list[str]
    nuisance: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return len(self.labels)

    @property
    def sigma_index(self) -> np.ndarray:
        """Index of each component's ``log σ`` (K,), -1 where fixed or absent."""
        if "log_sigma" not in self.nuisance:
            return np.full(self.beta_index.shape[0], -1)
        return self.nuisance_index[:, self.nuisance.index("log_sigma")]


def _layout(result: EMResult, feature_names: list[str], concomitant_names: list[str]) -> Layout:
    K, p = result.n_components, result.n_features
    fit_intercept = result.fit_intercept
    names = (["intercept"] if fit_intercept else []) + list(feature_names)
    shared = (
        np.concatenate([[result.shared_intercept], result.shared])
        if fit_intercept
        else (np.asarray(result.shared))
    )
    q = p + int(fit_intercept)
    beta_index = np.empty((K, q), dtype=int)
    labels: list[str] = []
    for col in np.flatnonzero(shared):
        beta_index[:, col] = len(labels)
        labels.append(f"{names[col]}[shared]")
    for j in range(K):
        for col in np.flatnonzero(~shared):
            beta_index[j, col] = len(labels)
            is_intercept = fit_intercept and col == 0
            labels.append(f"intercept[{j}]" if is_intercept else f"coef[{j},{names[col]}]")
    family = result.family
    nuisance_index = np.full((K, len(family.nuisance)), -1)
    for k, name in enumerate(family.nuisance):
        mode = _nuisance_mode(result, name)
        if mode == "component":
            nuisance_index[:, k] = np.arange(len(labels), len(labels) + K)
            labels.extend(f"{name}[{j}]" for j in range(K))
        elif mode == "shared":
            nuisance_index[:, k] = len(labels)
            labels.append(name)
    gate_names = ["intercept", *concomitant_names] if result.concomitant_coef is not None else []
    r1 = max(len(gate_names), 1)
    gate_index = np.full((K, r1), -1)
    for j in range(1, K):
        gate_index[j] = np.arange(len(labels), len(labels) + r1)
        if result.concomitant_coef is None:
            labels.append(f"logit[{j}]")
        else:
            labels.extend(f"concomitant[{j},{n}]" for n in gate_names)
    return Layout(beta_index, nuisance_index, gate_index, labels, tuple(family.nuisance))


def _nuisance_mode(result: EMResult, name: str) -> str:
    """ "component", "shared" or "fixed" for a nuisance parameter of the family."""
    if name == "log_sigma":
        return result.variance if result.variance in ("component", "shared") else "fixed"
    if name == "log_df":
        return "fixed" if result.family.df is not None else "component"
    raise ValueError(f"unknown nuisance parameter {name!r}")


def _nuisance_values(result: EMResult) -> np.ndarray:
    """The nuisance parameters at the estimates (K, m), on their log scale."""
    values = {
        "log_sigma": lambda: np.log(np.asarray(result.sigma, float)),
        "log_df": lambda: np.log(np.asarray(result.df, float)),
    }
    cols = [values[name]() for name in result.family.nuisance]
    return np.column_stack(cols) if cols else np.zeros((result.n_components, 0))


@dataclass
class _Data:
    X1: np.ndarray  # (n, q)
    y: np.ndarray  # (n,)
    extra: np.ndarray  # (n, m): the family's row columns (offset, trials, ...)
    row_weight: np.ndarray  # (n,)
    grouping: Grouping
    group_weight: np.ndarray  # (G,)
    mixing: MultinomialLogit  # in original units (W = [1, w] per group)


def _data(result: EMResult, X, y, sample_weight, groups, concomitant, offset, trials) -> _Data:
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n = X.shape[0]
    extra = family_rows(result, y, offset, trials)
    X1 = np.column_stack([np.ones(n), X]) if result.fit_intercept else X
    row_weight = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
    grouping = Grouping(groups, n)
    group_weight = group_constant(grouping, row_weight, "sample_weight")
    if result.concomitant_coef is None:
        mixing: MultinomialLogit = ConstantMixing(group_weight)
    else:
        if concomitant is None:
            raise ValueError("this model has concomitant variables: pass concomitant.")
        W = group_constant(grouping, np.asarray(concomitant, float), "concomitant")
        mixing = MultinomialLogit(np.column_stack([np.ones(W.shape[0]), W]), group_weight)
    return _Data(X1, y, extra, row_weight, grouping, group_weight, mixing)


def _gate(result: EMResult) -> np.ndarray:
    """Mixing coefficients (K, r1) in original units, row 0 zeros."""
    if result.concomitant_coef is None:
        with np.errstate(divide="ignore"):
            log_w = np.log(result.weights)
        return (log_w - log_w[0])[:, None]
    return np.column_stack([result.concomitant_intercept, result.concomitant_coef])


def _theta(result: EMResult, lay: Layout) -> np.ndarray:
    """θ at the estimates of ``result``."""
    theta = np.zeros(lay.size)
    beta = _beta(result)
    theta[lay.beta_index.ravel()] = beta.ravel()
    free = lay.nuisance_index >= 0
    theta[lay.nuisance_index[free]] = _nuisance_values(result)[free]
    gate = _gate(result)
    free = lay.gate_index >= 0
    theta[lay.gate_index[free]] = gate[free]
    return theta


def _beta(result: EMResult) -> np.ndarray:
    if result.fit_intercept:
        return np.column_stack([result.intercept, result.coef])
    return np.asarray(result.coef, dtype=float)


def _unpack(theta: np.ndarray, lay: Layout, result: EMResult):
    """``beta`` (K, q), ``sigma`` (K,), ``df`` (K,) or None, ``gate`` (K, r1) at ``θ``."""
    beta = theta[lay.beta_index]
    free = lay.nuisance_index >= 0
    nuisance = np.where(free, theta[np.maximum(lay.nuisance_index, 0)], _nuisance_values(result))
    names = result.family.nuisance
    sigma = (
        np.exp(nuisance[:, names.index("log_sigma")])
        if "log_sigma" in names
        else np.asarray(result.sigma, dtype=float)
    )
    df = np.exp(nuisance[:, names.index("log_df")]) if "log_df" in names else None
    gate = np.where(lay.gate_index >= 0, theta[np.maximum(lay.gate_index, 0)], 0.0)
    return beta, sigma, df, gate


def _joint(data: _Data, family, beta, sigma, df, gate):
    """Linear predictors (n, K) and a_gj (G, K)."""
    eta = data.X1 @ beta.T + np.reshape(family.offset_of(data.extra), (-1, 1))
    log_f = family.log_density(data.y, eta, data.extra, sigma, df)
    a = data.grouping.sum(log_f) + data.mixing.log_prior(gate)
    return eta, a


def log_likelihood_at(
    theta: np.ndarray,
    result: EMResult,
    X: Any,
    y: Any,
    sample_weight: Any = None,
    groups: Any = None,
    concomitant: Any = None,
    offset: Any = None,
    trials: Any = None,
) -> float:
    """The observed-data log-likelihood at ``θ`` (laid out as :func:`observed_information`
    says): for checks by finite differences."""
    r = 0 if result.concomitant_coef is None else result.n_concomitant
    lay = _layout(result, [f"x{k}" for k in range(result.n_features)], [f"w{k}" for k in range(r)])
    data = _data(result, X, y, sample_weight, groups, concomitant, offset, trials)
    _, a = _joint(data, result.family, *_unpack(np.asarray(theta, float), lay, result))
    return float(data.group_weight @ bayes_rule(a)[1])


def _information(result: EMResult, data: _Data, lay: Layout):
    """Observed information (P, P), its gross diagonal (P,), and the prior weights (G, K)."""
    family = result.family
    theta = _theta(result, lay)
    beta, sigma, df, gate = _unpack(theta, lay, result)
    eta, a = _joint(data, family, beta, sigma, df, gate)
    gamma = bayes_rule(a)[0]  # (G, K)
    pi = np.exp(data.mixing.log_prior(gate))  # (G or 1, K)
    K, P = beta.shape[0], lay.size
    G = gamma.shape[0]
    # d log f / d(η, nuisance) per row and component, and the second derivatives
    score_rows, hess_rows = family.derivatives(data.y, eta, data.extra, sigma, df)
    c = data.group_weight
    r_rows = data.grouping.expand(gamma) * data.row_weight[:, None]  # (n, K)
    W = data.mixing.W
    scores = np.zeros((K, G, P))  # ∇a_gj
    hess = np.zeros((P, P))
    gross = np.zeros(P)
    for j in range(K):
        idx_b = lay.beta_index[j]
        free = [(1 + k, int(i)) for k, i in enumerate(lay.nuisance_index[j]) if i >= 0]
        np.add.at(scores[j].T, idx_b, data.grouping.sum(score_rows[:, j, :1] * data.X1).T)
        for col, i in free:
            scores[j][:, i] += data.grouping.sum(score_rows[:, j, col])
        for k in range(1, K):
            coef = (j == k) - (pi[:, k] if pi.shape[0] == G else np.full(G, pi[0, k]))
            scores[j][:, lay.gate_index[k]] += coef[:, None] * W
        # Σ_i r_ij ∇² log f_ij on (beta_j, nuisance_j)
        rw = r_rows[:, j]
        h = hess_rows[:, j]
        h_bb = (data.X1 * (rw * h[:, 0, 0])[:, None]).T @ data.X1
        np.add.at(hess, np.ix_(idx_b, idx_b), h_bb)
        np.add.at(gross, idx_b, np.abs(np.diag(h_bb)))
        for col, i in free:
            h_bn = (rw * h[:, 0, col]) @ data.X1
            np.add.at(hess, (idx_b, i), h_bn)
            np.add.at(hess, (i, idx_b), h_bn)
            for col2, i2 in free:
                h_nn = rw @ h[:, col, col2]
                hess[i, i2] += h_nn
                if i == i2:
                    gross[i] += abs(h_nn)
        weighted = scores[j] * np.sqrt(c * gamma[:, j])[:, None]
        outer = weighted.T @ weighted
        hess += outer
        gross += np.diag(outer)
    if K > 1:
        pi_full = pi if pi.shape[0] == G else np.broadcast_to(pi, (G, K))
        fisher = data.mixing.gradient_hessian(gamma, pi_full)[1]
        gidx = lay.gate_index[1:].ravel()
        hess[np.ix_(gidx, gidx)] -= fisher
        gross[gidx] += np.abs(np.diag(fisher))
    mean_score = np.einsum("gj,jgp->gp", gamma, scores) * np.sqrt(c)[:, None]
    hess -= mean_score.T @ mean_score
    return -hess, gross, pi


def observed_information(
    result: EMResult,
    X: Any,
    y: Any,
    sample_weight: Any = None,
    groups: Any = None,
    concomitant: Any = None,
    offset: Any = None,
    trials: Any = None,
    feature_names: list[str] | None = None,
    concomitant_names: list[str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Observed information of a concomitant, grouped and/or shared model at its estimates.

    Parameters
    ----------
    result : EMResult
    X : ndarray of shape (n, p)
    y : ndarray of shape (n,)
    sample_weight : ndarray of shape (n,), optional
    groups : array-like of shape (n,), optional
    concomitant : ndarray of shape (n, r), optional
    feature_names, concomitant_names : list of str, optional
        For the labels.

    Returns
    -------
    information : ndarray of shape (P, P)
        ``P = result.n_parameters``, in the order of this module's docstring.
    labels : list of str
    nuisance : tuple of str
        The names of the nuisance columns.
    """
    lay = _prepare(result, feature_names, concomitant_names)
    rows = (X, y, sample_weight, groups, concomitant, offset, trials)
    return _summed(result, lay, *rows)[0], lay.labels


def _prepare(result, feature_names, concomitant_names) -> Layout:
    p, r = result.n_features, result.n_concomitant
    feature_names = feature_names or [f"x{k}" for k in range(p)]
    concomitant_names = concomitant_names or [f"w{k}" for k in range(r)]
    return _layout(result, list(map(str, feature_names)), list(map(str, concomitant_names)))


def _part_information(X, y, w, g, W, offset, trials, result: EMResult, lay: Layout):
    """The information of one part of the rows (whole groups), its gross diagonal, and the
    part's sums for the Jacobian of the mean prior weights (module level: a distributed
    cluster can pickle it)."""
    data = _data(result, X, y, w, g, W, offset, trials)
    info, gross, pi = _information(result, data, lay)
    K, G = result.n_components, data.group_weight.shape[0]
    # weights_j = Σ_g m_g π_gj / Σ_g m_g with m_g = c_g n_g: the numerator's derivative
    # d/d gate_k = Σ_g m_g π_gj (δ_jk − π_gk) W_g is a sum over groups, part by part.
    pi = pi if pi.shape[0] == G else np.broadcast_to(pi, (G, K))
    mass = data.group_weight * data.grouping.sizes()
    jac = np.zeros((K, lay.size))
    for j in range(K):
        for k in range(1, K):
            jac[j, lay.gate_index[k]] = (mass * pi[:, j] * ((j == k) - pi[:, k])) @ data.mixing.W
    return info, gross, jac, float(mass.sum())


def _summed(
    result: EMResult, lay: Layout, X, y, sample_weight, groups, concomitant, offset, trials
):
    """:func:`_part_information` summed over the parts: one part in memory, one per row chunk
    of Dask data (every group lies inside one chunk, as the fit checked)."""
    rows = (X, y, sample_weight, groups, concomitant, offset, trials)
    if not any(is_dask_collection(v) for v in rows):
        return _part_information(*rows, result, lay)
    import dask

    chunks = X.chunks[0]

    def blocks(arr, ndim):
        if arr is None:
            return [None] * len(chunks)
        return list(arr.rechunk((chunks,) + ((-1,) if ndim == 2 else ())).to_delayed().ravel())

    parts = zip(
        blocks(X, 2),
        blocks(y, 1),
        blocks(sample_weight, 1),
        blocks(groups, 1),
        blocks(concomitant, 2),
        blocks(offset, 1),
        blocks(trials, 1),
        strict=True,
    )
    out = dask.compute(*[dask.delayed(_part_information)(*part, result, lay) for part in parts])
    return tuple(np.sum([o[i] for o in out], axis=0) for i in range(4))


def covariance(
    result: EMResult,
    X: Any,
    y: Any,
    sample_weight: Any = None,
    groups: Any = None,
    concomitant: Any = None,
    offset: Any = None,
    trials: Any = None,
) -> tuple[np.ndarray, list[str]]:
    """Covariance of the natural parameters by the delta method.

    Returns
    -------
    cov : ndarray of shape (Q, Q)
        In order: for each component ``intercept[j]`` (when fitted) and ``coef[j,k]``; the
        sigmas (``sigma[j]``, one ``sigma`` when shared, none when fixed or for a family
        without σ); ``df[j]`` for a Student-t family with estimated ν; ``weights[j]``;
        with concomitant variables ``concomitant_intercept[j]`` and
        ``concomitant_coef[j,k]`` for ``j >= 1``. Shared coefficients appear under every
        component (the same entries). Parameters in a singular direction are NaN.
    labels : list of str

    Warns
    -----
    SingularInformationWarning
        If the observed information is singular or not positive definite.
    """
    lay = _prepare(result, None, None)
    rows = (X, y, sample_weight, groups, concomitant, offset, trials)
    info, gross, weights_jac, mass = _summed(result, lay, *rows)
    cov_theta = _invert_information(info, gross, lay.labels)
    jac, labels = _natural_jacobian(result, lay, weights_jac / mass)
    return delta_method(cov_theta, jac), labels


def _natural_jacobian(result: EMResult, lay: Layout, weights_jac: np.ndarray):
    """Jacobian of the natural parameters in θ; ``weights_jac`` (K, P) is that of the mean
    prior weights (:func:`_part_information`)."""
    K = result.n_components
    rows: list[np.ndarray] = []
    labels: list[str] = []

    def row() -> np.ndarray:
        out = np.zeros(lay.size)
        rows.append(out)
        return out

    for j in range(K):
        cols = range(lay.beta_index.shape[1])
        for col in cols:
            row()[lay.beta_index[j, col]] = 1.0
            if result.fit_intercept and col == 0:
                labels.append(f"intercept[{j}]")
            else:
                labels.append(f"coef[{j},{col - int(result.fit_intercept)}]")
    # d exp(log x) / d log x = x, for x = sigma, df
    values = np.exp(_nuisance_values(result))
    for k, name in enumerate(lay.nuisance):
        natural = name.removeprefix("log_")
        mode = _nuisance_mode(result, name)
        for j in range(K if mode == "component" else int(mode == "shared")):
            row()[lay.nuisance_index[j, k]] = values[j, k]
            labels.append(f"{natural}[{j}]" if mode == "component" else natural)
    for j in range(K):
        row()[:] = weights_jac[j]
        labels.append(f"weights[{j}]")
    if result.concomitant_coef is not None:
        r = result.n_concomitant
        for j in range(K):
            out = row()
            if j:
                out[lay.gate_index[j, 0]] = 1.0
            labels.append(f"concomitant_intercept[{j}]")
        for j in range(K):
            for k in range(r):
                out = row()
                if j:
                    out[lay.gate_index[j, 1 + k]] = 1.0
                labels.append(f"concomitant_coef[{j},{k}]")
    return np.array(rows), labels


def standard_errors(
    result: EMResult,
    X: Any,
    y: Any,
    sample_weight: Any = None,
    groups: Any = None,
    concomitant: Any = None,
    offset: Any = None,
    trials: Any = None,
) -> dict[str, np.ndarray]:
    """Standard errors of a model fitted by :func:`bayes_mlr.fit_structured` (any family,
    concomitant variables, groups, shared coefficients).

    Returns
    -------
    dict
        ``"weights"`` (K,), ``"intercept"`` (K,) (zeros when not fitted), ``"coef"`` (K, p),
        ``"sigma"`` (K,) (zeros when fixed; absent for a family without σ), ``"df"`` (K,) for
        a Student-t family (zeros when ν is fixed), and with concomitant variables
        ``"concomitant_intercept"`` (K,) and ``"concomitant_coef"`` (K, r), row 0 zeros (the
        reference is fixed). Shared coefficients have the same standard error in every
        component. Entries in a singular direction of the information are NaN.
    """
    cov, labels = covariance(
        result,
        X,
        y,
        sample_weight=sample_weight,
        groups=groups,
        concomitant=concomitant,
        offset=offset,
        trials=trials,
    )
    se = dict(zip(labels, np.sqrt(np.maximum(np.diag(cov), 0.0)), strict=True))
    K, p = result.n_components, result.n_features
    out = {
        "weights": np.array([se[f"weights[{j}]"] for j in range(K)]),
        "intercept": np.array([se.get(f"intercept[{j}]", 0.0) for j in range(K)]),
        "coef": np.array([[se[f"coef[{j},{k}]"] for k in range(p)] for j in range(K)]),
    }
    for name in ("sigma", "df"):
        if f"log_{name}" in result.family.nuisance:
            out[name] = np.array(
                [se.get(f"{name}[{j}]", se.get(name, 0.0)) for j in range(K)], dtype=float
            )
    if result.concomitant_coef is not None:
        r = result.n_concomitant
        out["concomitant_intercept"] = np.array(
            [se[f"concomitant_intercept[{j}]"] for j in range(K)]
        )
        out["concomitant_coef"] = np.array(
            [[se[f"concomitant_coef[{j},{k}]"] for k in range(r)] for j in range(K)]
        )
    return out
