"""EMResult, the immutable outcome of :func:`bayes_mlr.fit_em`, and EMProgress, its reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _frozen(arr) -> np.ndarray:
    out = np.array(arr, dtype=np.float64, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class EMProgress:
    """What :func:`bayes_mlr.fit_em` reports to its ``callback`` as it goes.

    A report follows every recorded EM update of every run, and one more (``done=True``)
    ends each run.

    Attributes
    ----------
    stage : {"scout", "run"}
        ``"scout"``: the short runs of ``init="auto"``/``"short_runs"`` that rank the starts
        (on a random subsample of ``SHORT_RUN_ROWS`` rows when the data have over twice as
        many); ``"run"``: a run to convergence on all rows (a scout that converged on all
        rows is kept as it is, without one).
    start : int
        Which start (0-based) within its stage.
    n_starts : int
        How many runs the stage has.
    n_iter : int
        EM updates recorded so far in this run (a continued scout counts from 0 again).
    log_likelihood : float
        The log-likelihood after the latest update, in the data's units, over the rows this
        stage uses (the subsample for a subsampled scout).
    done : bool
        The run has stopped; ``converged`` and ``degenerate`` say how.
    converged, degenerate : bool
        As in :class:`EMResult`, for this run so far.
    """

    stage: str
    start: int
    n_starts: int
    n_iter: int
    log_likelihood: float
    done: bool = False
    converged: bool = False
    degenerate: bool = False


@dataclass(frozen=True, eq=False)
class Optimum:
    """One distinct optimum that EM runs reached (an entry of :attr:`EMResult.optima`).

    Attributes
    ----------
    weights, intercept, sigma : ndarray of shape (n_components,)
    coef : ndarray of shape (n_components, n_features)
        The parameters, in the canonical component order (ascending mean prediction).
    log_likelihood : float
    n_runs : int
        How many EM runs ended at this optimum.
    converged, degenerate : bool
        As in :class:`EMResult`, for the best run that reached it.
    spurious_components : ndarray of bool, shape (n_components,)
        Which components are spurious (:mod:`bayes_mlr.core.spurious`).
    concomitant_intercept : ndarray of shape (n_components,) or None
    concomitant_coef : ndarray of shape (n_components, n_concomitant) or None
        The mixing model's coefficients at this optimum, in its own component order (row 0
        the reference), for a model with concomitant variables; else None.
    df : ndarray of shape (n_components,) or None
        Degrees of freedom of Student-t components at this optimum; else None.
    """

    weights: np.ndarray
    intercept: np.ndarray
    coef: np.ndarray
    sigma: np.ndarray
    log_likelihood: float
    n_runs: int
    converged: bool
    degenerate: bool
    spurious_components: np.ndarray
    concomitant_intercept: np.ndarray | None = None
    concomitant_coef: np.ndarray | None = None
    df: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("weights", "intercept", "coef", "sigma"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        for name in ("concomitant_intercept", "concomitant_coef", "df"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _frozen(getattr(self, name)))
        flags = np.array(self.spurious_components, dtype=bool)
        flags.setflags(write=False)
        object.__setattr__(self, "spurious_components", flags)
        object.__setattr__(self, "log_likelihood", float(self.log_likelihood))

    @property
    def spurious(self) -> bool:
        return bool(self.spurious_components.any())

    def params(self) -> dict[str, np.ndarray]:
        """The parameters as a dict with keys weights, intercept, coef, sigma, and the
        concomitant coefficients and degrees of freedom when the model has them."""
        out = {k: getattr(self, k) for k in ("weights", "intercept", "coef", "sigma")}
        for name in ("concomitant_intercept", "concomitant_coef", "df"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


@dataclass(frozen=True, eq=False)
class EMResult:
    """Point estimates of a mixture of linear regressions fitted by soft EM.

    Components are in the canonical order documented in :func:`bayes_mlr.fit_em` (ascending
    mean prediction over the training data). Arrays are read-only.

    Attributes
    ----------
    weights : ndarray of shape (n_components,)
        Mixing proportions π_j; they sum to one.
    intercept : ndarray of shape (n_components,)
        Intercepts (zeros when ``fit_intercept=False``).
    coef : ndarray of shape (n_components, n_features)
        Regression coefficients of each component.
    sigma : ndarray of shape (n_components,)
        Noise standard deviations (scales, for ``family="student_t"``); equal entries for
        ``variance="shared"`` or ``"fixed"``; NaN for a family without σ (Poisson, binomial).
    log_likelihood : float
        Total observed-data log-likelihood Σ_i w_i log Σ_j π_j f_j(y_i | ·) at these
        parameters.
    log_likelihood_trace : ndarray of shape (n_iter + 1,)
        Log-likelihood at the start and after each EM iteration of the returned run
        (non-decreasing up to rounding).
    n_iter : int
        EM updates recorded in the trace of the returned run, on all rows: plain EM steps and
        kept SQUAREM steps (scouting runs of ``init="auto"`` on a subsample, and rejected
        extrapolations, are not counted).
    converged : bool
        Whether the run met ``tol`` before ``max_iter``.
    variance : str
        "component", "shared" or "fixed"; "none" for a family without σ.
    fit_intercept : bool
    n_obs : float
        Number of observations (sum of sample weights).
    degenerate : bool
        True if the returned run is a degenerate optimum (a collapsed sigma or an empty component).
    spurious : bool
        True if the returned run has a spurious component: a handful of observations fitted
        with a sigma far below the other components' (see :mod:`bayes_mlr.core.spurious`). With
        the default ``spurious="avoid"`` this happens only when every run had one.
    spurious_components : ndarray of bool, shape (n_components,)
        Which components are spurious (in the order of the other attributes).
    n_runs : int
        EM runs to convergence whose best is returned (scouting-only starts not counted).
    n_spurious_runs : int
        How many of them ended with a spurious (and not degenerate) component.
    n_removed : int
        Components removed during EM by ``min_weight`` (``n_components`` asked minus fitted).
    shared : ndarray of bool, shape (n_features,)
        Which features have one coefficient for all components (all False by default).
    shared_intercept : bool
        Whether the intercept is one number for all components.
    concomitant_intercept : ndarray of shape (n_components,) or None
        With concomitant variables, the intercepts ``α_j`` of the multinomial logit of the
        prior weights, ``π_ij = softmax_j(α_j + w_iᵀ γ_j)``; entry 0 is 0 (the reference).
        ``None`` without concomitant variables.
    concomitant_coef : ndarray of shape (n_components, n_concomitant) or None
        The ``γ_j``; row 0 is all zeros. ``None`` without concomitant variables.
    n_groups : int or None
        Number of groups when the rows were grouped (all rows of a group share one
        component), else ``None``.
    separated : bool
        True when the concomitant variables separate the components (their maximum likelihood
        coefficients are infinite; :class:`~bayes_mlr.SeparationWarning`).
    family : Family or None
        The component family (:mod:`bayes_mlr.core.components`); None means Gaussian.
    df : ndarray of shape (n_components,) or None
        Degrees of freedom ν_j of Student-t components; None for other families.
    optima : tuple of Optimum
        The distinct optima that the non-degenerate runs reached, the returned one first, then
        in the order the fit ranks them (regular before spurious, then by log-likelihood), each
        with how many runs ended there (degenerate runs stopped at no optimum and are left out
        unless every run was degenerate). Another optimum close in log-likelihood to the
        returned one means the data support more than one answer.
    """

    weights: np.ndarray
    intercept: np.ndarray
    coef: np.ndarray
    sigma: np.ndarray
    log_likelihood: float
    log_likelihood_trace: np.ndarray
    n_iter: int
    converged: bool
    variance: str = "component"
    fit_intercept: bool = True
    n_obs: float = field(default=float("nan"))
    degenerate: bool = False
    spurious: bool = False
    spurious_components: np.ndarray | None = None
    n_runs: int = 1
    n_spurious_runs: int = 0
    n_removed: int = 0
    optima: tuple[Optimum, ...] = ()
    shared: np.ndarray | None = None
    shared_intercept: bool = False
    concomitant_intercept: np.ndarray | None = None
    concomitant_coef: np.ndarray | None = None
    n_groups: int | None = None
    separated: bool = False
    family: Any = None
    df: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("weights", "intercept", "coef", "sigma", "log_likelihood_trace"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        for name in ("concomitant_intercept", "concomitant_coef", "df"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _frozen(getattr(self, name)))
        if self.family is None:
            from bayes_mlr.core.components import Gaussian

            object.__setattr__(self, "family", Gaussian())
        shared = np.zeros(self.coef.shape[1], bool) if self.shared is None else self.shared
        shared = np.array(shared, dtype=bool)
        shared.setflags(write=False)
        object.__setattr__(self, "shared", shared)
        object.__setattr__(self, "shared_intercept", bool(self.shared_intercept))
        object.__setattr__(self, "log_likelihood", float(self.log_likelihood))
        flags = self.spurious_components
        flags = np.zeros(self.weights.shape, bool) if flags is None else np.array(flags, bool)
        if flags.shape != self.weights.shape:
            raise ValueError(
                f"spurious_components must have shape {self.weights.shape}; got {flags.shape}."
            )
        flags.setflags(write=False)
        object.__setattr__(self, "spurious_components", flags)
        object.__setattr__(self, "spurious", bool(self.spurious or flags.any()))

    @property
    def n_components(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.coef.shape[1])

    @property
    def n_parameters(self) -> int:
        """Number of free parameters (coefficients, K-1 weights or the concomitant model,
        estimated sigmas and degrees of freedom)."""
        from bayes_mlr.frequentist.information import n_parameters

        return n_parameters(
            self.n_components,
            self.n_features,
            variance="fixed" if self.variance == "none" else self.variance,
            fit_intercept=self.fit_intercept,
            n_shared=int(self.shared.sum()) + int(self.shared_intercept),
            n_concomitant=self.n_concomitant,
        ) + (self.n_components if self.df is not None and self.family.df is None else 0)

    @property
    def n_concomitant(self) -> int:
        """Number of concomitant variables ``r`` (0 without a concomitant model)."""
        return 0 if self.concomitant_coef is None else int(self.concomitant_coef.shape[1])

    @property
    def structured(self) -> bool:
        """True when the model has concomitant variables, groups, shared coefficients or a
        non-Gaussian family (it is fitted by :func:`bayes_mlr.fit_structured`)."""
        return bool(
            self.family.name != "gaussian"
            or self.concomitant_coef is not None
            or self.n_groups is not None
            or self.shared.any()
            or self.shared_intercept
        )

    @property
    def bic(self) -> float:
        """Bayesian information criterion −2ℓ + P log n (lower is better)."""
        return -2.0 * self.log_likelihood + self.n_parameters * float(np.log(self.n_obs))

    @property
    def aic(self) -> float:
        """Akaike information criterion −2ℓ + 2P (lower is better)."""
        return -2.0 * self.log_likelihood + 2.0 * self.n_parameters

    def params(self) -> dict[str, np.ndarray]:
        """The parameters as a dict with keys weights, intercept, coef, sigma."""
        return {k: getattr(self, k) for k in ("weights", "intercept", "coef", "sigma")}

    def __repr__(self) -> str:
        return (
            f"EMResult(n_components={self.n_components}, n_features={self.n_features}, "
            + (f"family={self.family!r}, " if self.family.name != "gaussian" else "")
            + f"variance={self.variance!r}, log_likelihood={self.log_likelihood:.6g}, "
            f"n_iter={self.n_iter}, converged={self.converged}, degenerate={self.degenerate}, "
            f"spurious={self.spurious})"
        )

    def __str__(self) -> str:
        lines = [
            repr(self),
            f"{'':>10}" + "".join(f"{f'component {j}':>14}" for j in range(self.n_components)),
        ]
        rows = [("weights", self.weights), ("intercept", self.intercept)]
        rows += [("sigma", self.sigma)] * bool(self.family.has_sigma)
        rows += [("df", self.df)] * (self.df is not None)
        rows += [(f"coef[{k}]", self.coef[:, k]) for k in range(self.n_features)]
        for name, values in rows:
            lines.append(f"{name:>10}" + "".join(f"{v:>14.6g}" for v in values))
        return "\n".join(lines)
