"""Multinomial-logit mixing: prior weights that depend on concomitant variables.

``π_gj = softmax_j(α_j + w_gᵀ γ_j)`` with component 0 the reference (``α_0 = 0``, ``γ_0 = 0``):
a mixture of experts, flexmix's ``FLXPmultinom``. The M-step maximises the gating part of the
expected complete-data log-likelihood,

    Q(gate) = Σ_g c_g Σ_j γ_gj log π_gj(gate),

a weighted multinomial logistic regression with the responsibilities as soft targets. It is
concave; a few Newton steps per EM iteration, each halved until ``Q`` does not decrease, keep the
EM log-likelihood monotone (a generalised EM step).
"""

from __future__ import annotations

import numpy as np

from bayes_mlr.core.linalg import solve_weighted_least_squares

__all__ = ["MultinomialLogit", "log_softmax"]

#: Newton steps per EM iteration (the gating problem is concave and usually settles in 2-3).
NEWTON_STEPS = 5
#: Stop the Newton steps when Q gains at most this (relative to the total weight).
NEWTON_TOL = 1e-12
#: Halvings of a Newton step before it is given up (Q is then left as it was).
MAX_HALVINGS = 30


def log_softmax(eta: np.ndarray) -> np.ndarray:
    """Row-wise log softmax of ``eta`` (n, K), stable for large values."""
    top = eta.max(axis=1, keepdims=True)
    shifted = eta - top
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class MultinomialLogit:
    """Prior weights from a multinomial logit in the concomitant design ``W``.

    Parameters
    ----------
    W : ndarray of shape (n_groups, r1)
        One row per group; column 0 is ones (the intercept), the others the concomitant
        variables (best standardised: the Newton steps are then well conditioned).
    group_weight : ndarray of shape (n_groups,)
        Replication weight ``c_g`` of each group.
    """

    name = "multinomial"

    def __init__(self, W: np.ndarray, group_weight: np.ndarray) -> None:
        self.W = np.asarray(W, dtype=float)
        self.c = np.asarray(group_weight, dtype=float)
        self.total = float(self.c.sum())

    @property
    def n_coef(self) -> int:
        """Coefficients per component, the intercept included (``r1 = r + 1``)."""
        return int(self.W.shape[1])

    def n_parameters(self, n_components: int) -> int:
        """Free parameters: ``(K - 1) (r + 1)``."""
        return (n_components - 1) * self.n_coef

    def zeros(self, n_components: int) -> np.ndarray:
        """Equal prior weights: ``gate`` of shape (K, r1), all zeros."""
        return np.zeros((n_components, self.n_coef))

    def log_prior(self, gate: np.ndarray) -> np.ndarray:
        """log π_gj, shape (n_groups, K)."""
        return self.log_prior_of(self.W, gate)

    @staticmethod
    def log_prior_of(W: np.ndarray, gate: np.ndarray) -> np.ndarray:
        """log π of the groups with mixing design ``W`` (G, r1): shape (G, K)."""
        return log_softmax(W @ gate.T)

    @staticmethod
    def reduce(gamma: np.ndarray, group_weight: np.ndarray) -> np.ndarray:
        """What :meth:`m_step` needs of one part's responsibilities: all of them (G_part, K)."""
        return gamma

    @staticmethod
    def combine(parts: list) -> np.ndarray:
        """Join the parts' :meth:`reduce` outputs, in part order."""
        return np.concatenate(parts, axis=0)

    def objective(self, gamma: np.ndarray, gate: np.ndarray) -> float:
        """``Q(gate) = Σ_g c_g Σ_j γ_gj log π_gj`` (terms with γ = 0 count 0)."""
        log_pi = self.log_prior(gate)
        terms = np.where(gamma > 0, gamma * log_pi, 0.0)
        return float(self.c @ terms.sum(axis=1))

    def m_step(self, gamma: np.ndarray, gate: np.ndarray) -> np.ndarray:
        """Newton steps on ``Q`` from ``gate``, each halved until ``Q`` does not decrease.

        Parameters
        ----------
        gamma : ndarray of shape (n_groups, K)
            Responsibilities (rows sum to one).
        gate : ndarray of shape (K, r1)
            The current coefficients (row 0 zeros).

        Returns
        -------
        ndarray of shape (K, r1)
        """
        K = gate.shape[0]
        if K < 2:
            return gate.copy()
        gate = gate.copy()
        q_old = self.objective(gamma, gate)
        for _ in range(NEWTON_STEPS):
            pi = np.exp(self.log_prior(gate))
            grad, neg_hess = self.gradient_hessian(gamma, pi)
            step = solve_weighted_least_squares(neg_hess, grad).reshape(K - 1, -1)
            t = 1.0
            for _ in range(MAX_HALVINGS):
                trial = gate.copy()
                trial[1:] += t * step
                q_new = self.objective(gamma, trial)
                if np.isfinite(q_new) and q_new >= q_old:
                    break
                t *= 0.5
            else:
                return gate
            gain = q_new - q_old
            gate, q_old = trial, q_new
            if gain <= NEWTON_TOL * max(self.total, 1.0):
                break
        return gate

    def gradient_hessian(self, gamma: np.ndarray, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and negative Hessian of ``Q`` in the free coefficients (rows 1..K-1 of
        ``gate``, flattened row by row).

        Returns
        -------
        grad : ndarray of shape ((K-1) r1,)
            ``Σ_g c_g (γ_gk − π_gk) w_g``.
        neg_hess : ndarray of shape ((K-1) r1, (K-1) r1)
            ``Σ_g c_g (diag π_g − π_g π_gᵀ)_{kl} w_g w_gᵀ`` for k, l >= 1.
        """
        W, c = self.W, self.c
        K, r1 = pi.shape[1], W.shape[1]
        grad = ((gamma[:, 1:] - pi[:, 1:]) * c[:, None]).T @ W  # (K-1, r1)
        p = pi[:, 1:]
        cov = -p[:, :, None] * p[:, None, :]  # (G, K-1, K-1)
        idx = np.arange(K - 1)
        cov[:, idx, idx] += p
        cov *= c[:, None, None]
        neg_hess = np.einsum("gkl,ga,gb->kalb", cov, W, W).reshape((K - 1) * r1, (K - 1) * r1)
        return grad.ravel(), neg_hess
