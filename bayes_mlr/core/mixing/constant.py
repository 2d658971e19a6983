"""Constant mixing: one weight vector ``π`` for every row (the plain mixture).

The same parameterisation as :class:`~bayes_mlr.core.mixing.multinomial.MultinomialLogit` with
an intercept-only design (``W`` a column of ones, ``gate_j = log(π_j / π_0)``), so the EM loop
and the observed information treat both alike; its M-step is the closed form of the seed's
derivation, ``π_j = Σ_g c_g γ_gj / Σ_g c_g``.
"""

from __future__ import annotations

import numpy as np

from bayes_mlr.core.mixing.multinomial import MultinomialLogit, log_softmax

__all__ = ["ConstantMixing"]


class ConstantMixing(MultinomialLogit):
    """Prior weights that are the same for every group.

    Parameters
    ----------
    group_weight : ndarray of shape (n_groups,), optional
        Replication weight ``c_g`` of each group: needed only for :meth:`objective` and
        :meth:`gradient_hessian` (the observed information); the EM loop passes the sums
        ``Σ_g c_g γ_gj`` instead (:meth:`reduce`).
    """

    name = "constant"

    def __init__(self, group_weight: np.ndarray | None = None) -> None:
        c = np.zeros(0) if group_weight is None else np.asarray(group_weight, dtype=float)
        super().__init__(np.ones((c.shape[0], 1)), c)

    def log_prior(self, gate: np.ndarray) -> np.ndarray:
        """log π_j, shape (1, K): the same row for every group (it broadcasts)."""
        return self.log_prior_of(None, gate)

    @staticmethod
    def log_prior_of(W: np.ndarray | None, gate: np.ndarray) -> np.ndarray:
        """log π_j, shape (1, K), whatever the groups."""
        return log_softmax(gate[:, 0][None, :])

    @staticmethod
    def reduce(gamma: np.ndarray, group_weight: np.ndarray) -> np.ndarray:
        """The weighted responsibility sums ``Σ_g c_g γ_gj`` (K,) of one part."""
        return group_weight @ gamma

    @staticmethod
    def combine(parts: list) -> np.ndarray:
        """Sum the parts' :meth:`reduce` outputs."""
        return np.sum(parts, axis=0)

    def m_step(self, nk: np.ndarray, gate: np.ndarray) -> np.ndarray:
        """``π_j = Σ_g c_g γ_gj / Σ_g c_g`` as ``gate_j = log π_j − log π_0``.

        Parameters
        ----------
        nk : ndarray of shape (K,)
            ``Σ_g c_g γ_gj``, from :meth:`reduce` and :meth:`combine`.
        gate : ndarray of shape (K, 1)
            Not used: the step is in closed form.
        """
        # An emptied component keeps a weight of 1e-300 rather than 0, so that component 0
        # stays a finite reference; the run is then degenerate anyway (too few observations).
        log_w = np.log(np.maximum(nk / nk.sum(), 1e-300))
        return (log_w - log_w[0])[:, None]
