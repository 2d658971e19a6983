"""What every component family is: the distribution of ``y`` given the linear predictor.

A family object (:class:`~bayes_mlr.Gaussian`, :class:`~bayes_mlr.Poisson`,
:class:`~bayes_mlr.Binomial`, :class:`~bayes_mlr.StudentT`) is what users pass as
``family=``. It knows the density of one observation given its linear predictor
``η_ij = x1_iᵀβ_j (+ offset_i)`` and the component's nuisance parameters (``σ_j``, ``ν_j``),
with its first and second derivatives, and it builds the EM component model
(:mod:`bayes_mlr.core.components`) that fits it. Everything else (the EM loop, standard errors,
the posterior) reads a family through this interface, so a new family is one new module.

Per-row data that the density needs besides ``y`` (an offset, the number of trials, constants
such as ``log y!``) travel as extra columns after ``y`` in the augmented data matrix
``Z = [X1, y, extra...]`` (:meth:`Family.row_columns`).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
from scipy import special

__all__ = ["NUMPY_OPS", "Family", "row_vector"]

#: The array functions a family's :meth:`Family.log_density` uses, for numpy arrays. The
#: Bayesian layer passes the same functions for PyTensor graphs
#: (:mod:`bayes_mlr.bayes.families`), so each density is written once, in its family's module,
#: for the EM and the posterior alike.
NUMPY_OPS = SimpleNamespace(
    exp=np.exp,
    log=np.log,
    log1p=np.log1p,
    minimum=np.minimum,
    gammaln=special.gammaln,
    log_expit=special.log_expit,
)


class Family:
    """Base class of the component families.

    Class attributes
    ----------------
    name : str
        The name ``family=`` takes (``"gaussian"``, ``"poisson"``, ...).
    has_sigma : bool
        Whether components have a scale ``σ_j`` (``sigma_`` exists).
    takes_offset, takes_trials : bool
        Whether ``offset`` / ``trials`` apply.
    standardise_y : bool
        Whether the EM may shift and scale ``y`` (not for counts).
    nuisance : tuple of str
        Names of the per-component nuisance parameters on the scale the observed information
        uses (``"log_sigma"``, ``"log_df"``), in the order of :meth:`derivatives`.
    """

    name: ClassVar[str] = ""
    has_sigma: ClassVar[bool] = False
    takes_offset: ClassVar[bool] = False
    takes_trials: ClassVar[bool] = False
    standardise_y: ClassVar[bool] = True
    nuisance: ClassVar[tuple[str, ...]] = ()

    # -- identity -----------------------------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        """The family's options (for saving and equality)."""
        return {}

    @property
    def has_df(self) -> bool:
        """Whether components have degrees of freedom ``ν_j`` (``df_`` exists)."""
        return False

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_params() == other.get_params()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.get_params().items()))))

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., **options}`` (JSON)."""
        return {"name": self.name, **self.get_params()}

    # -- data ---------------------------------------------------------------------------------

    def check_response(
        self, y: np.ndarray, offset: np.ndarray | None, trials: np.ndarray | None
    ) -> None:
        """Raise ``ValueError`` when ``y`` (and ``offset``, ``trials``, already 1-D float arrays
        of ``y``'s length) are not valid for this family. Called before any computation."""
        if offset is not None and not self.takes_offset:
            raise ValueError(
                f"offset applies to the poisson and binomial families, not to {self.name!r}"
                + (
                    "; subtract it from y instead."
                    if self.name in ("gaussian", "student_t")
                    else "."
                )
            )
        if trials is not None and not self.takes_trials:
            raise ValueError(f"trials applies to the binomial family only, not to {self.name!r}.")
        if offset is not None and not np.all(np.isfinite(offset)):
            raise ValueError("offset contains NaN or infinite values.")

    def row_columns(
        self, y: np.ndarray, offset: np.ndarray | None, trials: np.ndarray | None
    ) -> np.ndarray:
        """Per-row data the density needs besides ``y``, shape (n, m): the columns after ``y``
        in ``Z``. None for a family that needs none."""
        return np.empty((y.shape[0], 0))

    def rows(self, y: np.ndarray, offset: Any, trials: Any) -> np.ndarray:
        """The row columns (n, m) of data given as ``y`` (n,) and array-likes ``offset``,
        ``trials`` (or None): shapes and values checked (:func:`row_vector`,
        :meth:`check_response`), then :meth:`row_columns`."""
        n = y.shape[0]
        offset, trials = row_vector(offset, "offset", n), row_vector(trials, "trials", n)
        self.check_response(y, offset, trials)
        return self.row_columns(y, offset, trials)

    def offset_of(self, extra: np.ndarray) -> np.ndarray | float:
        """The offset from the row columns (0 when there is none)."""
        return 0.0

    # -- the density ----------------------------------------------------------------------------

    def log_density(self, y, eta, extra, sigma, df, xp: Any = NUMPY_OPS):
        """``log f(y_i | η_ij, σ_j, ν_j)``, shape (n, K), from ``y`` (n,), the linear
        predictor ``eta`` (n, K) with any offset included, and the row columns (n, m).

        ``xp`` holds the array functions (:data:`NUMPY_OPS`, or PyTensor's for the posterior):
        the same formula serves both."""
        raise NotImplementedError

    def draw(self, eta, extra, sigma, df, rng: np.random.Generator) -> np.ndarray:
        """One draw of ``y`` per entry of ``eta`` (shape ``(..., n)``, offset included), with
        ``sigma``, ``df`` broadcast like ``eta`` where the family has them and the row columns
        ``extra`` (n, m): predictive draws."""
        raise NotImplementedError

    def derivatives(
        self, y: np.ndarray, eta: np.ndarray, extra: np.ndarray, sigma: np.ndarray, df
    ) -> tuple[np.ndarray, np.ndarray]:
        """First and second derivatives of ``log f`` in ``(η, *nuisance)``.

        Returns
        -------
        score : ndarray of shape (n, K, 1 + len(nuisance))
        hessian : ndarray of shape (n, K, 1 + len(nuisance), 1 + len(nuisance))
        """
        raise NotImplementedError

    def mean(self, eta: np.ndarray, extra: np.ndarray) -> np.ndarray:
        """``E[y | η]`` on the response scale, same shape as ``eta`` (with ``extra`` (n, m)
        broadcast over its last axis)."""
        return eta

    def null_sums(self, y: np.ndarray, extra: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Summable statistics (over parts of the data) of the intercept-only fit."""
        return np.zeros(2)

    def null_eta(self, sums: np.ndarray) -> float:
        """The linear predictor (offset excluded) of the intercept-only fit, from the summed
        :meth:`null_sums`: where a random start's first Newton step is taken (0 for a family
        whose ``y`` is standardised)."""
        return 0.0

    # -- EM ------------------------------------------------------------------------------------

    def components(
        self,
        shared: np.ndarray,
        *,
        variance: str,
        sigma_fixed: float | None,
        sigma_floor: float,
        null_beta: np.ndarray,
        intercept: bool,
    ):
        """The EM component model (:mod:`bayes_mlr.core.components`) of this family."""
        raise NotImplementedError

    def n_nuisance(self, n_components: int, variance: str) -> int:
        """Free nuisance parameters (σ, ν) of ``n_components`` components."""
        if not self.has_sigma:
            return 0
        return {"component": n_components, "shared": 1, "fixed": 0}[variance]


def row_vector(value: Any, name: str, n: int) -> np.ndarray | None:
    """``offset`` or ``trials`` as a float vector of ``n`` rows (None stays None).

    Raises
    ------
    TypeError
        Not numeric.
    ValueError
        Not ``n`` values (a single column of ``n`` rows is accepted).
    """
    if value is None:
        return None
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be numeric; got {type(value).__name__}.") from err
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), one value per row; got {arr.shape}.")
    return arr
