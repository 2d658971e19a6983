"""MixtureOfRegressions: the scikit-learn style estimator. Wiring only; the numerics live in
:mod:`bayes_mlr.core.em` (fitting) and :mod:`bayes_mlr.frequentist.information` (standard
errors, criteria)."""

from __future__ import annotations

import functools
import inspect
import numbers
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from bayes_mlr._validation import (
    check_data,
    check_sample_weight,
    check_X,
    check_y,
    is_dask_collection,
)
from bayes_mlr.core.components import resolve_family
from bayes_mlr.core.em import e_step, fit_em
from bayes_mlr.exceptions import NotFittedError
from bayes_mlr.formula import FormulaState
from bayes_mlr.results import EMProgress, EMResult

__all__ = ["MixtureOfRegressions"]


@functools.cache
def _not_fitted_class(sklearn_error: type) -> type:
    """Our NotFittedError that is also scikit-learn's (built once, only if sklearn is loaded)."""

    def __reduce__(self):  # pickles as the plain bayes_mlr error: no dynamic class needed
        return (NotFittedError, self.args)

    return type(
        "NotFittedError",
        (NotFittedError, sklearn_error),
        {"__module__": NotFittedError.__module__, "__reduce__": __reduce__},
    )


def _not_fitted_error(message: str) -> NotFittedError:
    """A :class:`bayes_mlr.NotFittedError`; when scikit-learn is already imported it is also an
    instance of ``sklearn.exceptions.NotFittedError``, so scikit-learn's tools recognise it.
    scikit-learn is never imported here (``import bayes_mlr`` must stay light)."""
    sk = sys.modules.get("sklearn.exceptions")
    base = getattr(sk, "NotFittedError", None)
    if base is None:
        return NotFittedError(message)
    return _not_fitted_class(base)(message)


class _ParamsMixin:
    """get_params / set_params / repr following scikit-learn's protocol, without importing it."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor arguments as a dict (``deep`` is accepted for compatibility)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any):
        """Set constructor arguments; returns self."""
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(
                    f"Invalid parameter {key!r} for {type(self).__name__}; valid parameters: "
                    f"{valid}."
                )
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        defaults = {
            p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()
        }
        changed = []
        for k, v in self.get_params().items():
            d = defaults.get(k, inspect.Parameter.empty)
            same = v is d or (isinstance(v, str | int | float | bool | type(None)) and v == d)
            if not same:
                changed.append(f"{k}={v!r}")
        return f"{type(self).__name__}({', '.join(changed)})"


#: score_samples: every row on its own, whatever groups a formula fit would read from X.
_NO_GROUPS = object()


def _row_data(value: Any) -> Any:
    """``offset`` or ``trials`` as kept for inference: None, a lazy Dask array, or floats."""
    if value is None or is_dask_collection(value):
        return value
    return np.asarray(value, dtype=float).reshape(-1)


#: With ``verbose=2``, a progress line every this many EM iterations of a run.
VERBOSE_INTERVAL = 10


def _progress_printer(verbose: Any) -> Callable[[EMProgress], None] | None:
    """The ``fit_em`` callback that prints progress for ``verbose`` (None when 0)."""
    if isinstance(verbose, bool) or not isinstance(verbose, numbers.Integral) or verbose < 0:
        raise ValueError(f"verbose must be an integer >= 0; got {verbose!r}")
    if verbose == 0:
        return None

    def show(progress: EMProgress) -> None:
        if not progress.done and (verbose < 2 or progress.n_iter % VERBOSE_INTERVAL):
            return
        state = ""
        if progress.done:
            state = (
                "degenerate"
                if progress.degenerate
                else ("converged" if progress.converged else "stopped")
            )
            state = f" ({state})"
        print(
            f"EM {progress.stage} {progress.start + 1}/{progress.n_starts}: iteration "
            f"{progress.n_iter}, log-likelihood {progress.log_likelihood:.6f}{state}",
            flush=True,
        )

    return show


class MixtureOfRegressions(_ParamsMixin):
    """Mixture of regressions ``y ~ Σ_j π_j f(y | intercept_j + coef_j·x)`` by soft EM: normal
    (``N(η, σ_j²)``, the default), Poisson, binomial or Student-t components.

    Parameters
    ----------
    n_components : int, default=2
        Number of components K.
    variance : {"component", "shared", "fixed"}, default="component"
        One sigma per component, one shared sigma, or a known sigma given by ``sigma``.
    sigma : float, optional
        Known noise standard deviation, for ``variance="fixed"`` only.
    fit_intercept : bool, default=True
        Whether each component has an intercept.
    init : {"auto", "random", "subsets", "short_runs"}, mapping or EMResult, default="auto"
        Start strategy, see :func:`bayes_mlr.fit_em`.
    n_init : int, default=10
        Number of starts; the best non-degenerate run is kept.
    max_iter : int, default=1000
        Maximum EM iterations.
    tol : float, default=1e-8
        Convergence tolerance on the log-likelihood gain per observation; 0 runs exactly
        ``max_iter`` iterations.
    random_state : int, numpy Generator or None
        Seed for the starts.
    verbose : int, default=0
        Progress on standard output, as in scikit-learn: 0 is silent; 1 prints a line as each
        EM run stops (its stage, iterations and log-likelihood); 2 also every
        ``VERBOSE_INTERVAL`` iterations. For other reporting pass ``callback`` to
        :func:`bayes_mlr.fit_em`.
    spurious : {"avoid", "allow"}, default="avoid"
        ``"avoid"`` keeps the best EM run without a *spurious* component (a handful of
        observations fitted with a sigma far below the others', McLachlan & Peel 2000, §3.10);
        ``"allow"`` keeps the run of highest likelihood. A spurious fit is always flagged
        (``result_.spurious``) and warned about (:class:`~bayes_mlr.SpuriousFitWarning`). See
        :func:`bayes_mlr.fit_em`.
    min_weight : float in (0, 1), optional
        flexmix's ``minprior``: remove components whose weight falls below it during EM, so
        the fit may have fewer components (``n_components_``) than asked for. Not available
        with ``shared``, ``groups`` or ``concomitant``.
    shared : list of str or int, or boolean mask, optional
        Columns of ``X`` (names for a DataFrame, or indices) whose coefficient is one number
        for all components (flexmix's ``FLXMRglmfix(fixed = ~ w)``); the name
        ``"intercept"`` shares the intercept. ``coef_`` keeps its shape, with equal entries in
        shared columns.
    family : {"gaussian", "poisson", "binomial", "student_t"} or family object, default="gaussian"
        The distribution of ``y`` within a component, given its linear predictor
        ``η = intercept_j + coef_j·x (+ offset)``: normal; Poisson with a log link (counts;
        ``fit(..., offset=log(exposure))``); binomial with a logit link (``y`` successes out of
        ``fit(..., trials=m)``, 1 by default); Student-t errors with per-component scale and
        degrees of freedom (robust to outliers; ``bayes_mlr.StudentT(df=4)`` fixes ν). Family
        objects: :class:`bayes_mlr.Gaussian`, :class:`~bayes_mlr.Poisson`,
        :class:`~bayes_mlr.Binomial`, :class:`~bayes_mlr.StudentT`. Families other than the
        Gaussian are fitted by :func:`bayes_mlr.fit_structured`.

    Attributes
    ----------
    n_components_ : int
        Number of fitted components: ``n_components`` unless ``min_weight`` removed some.
    weights_ : ndarray of shape (n_components,)
        Mixing proportions. With concomitant variables the prior weights differ from row to
        row (:meth:`mixing_weights`); ``weights_`` is then their mean over the training rows.
    intercept_ : ndarray of shape (n_components,)
        Intercepts (zeros when ``fit_intercept=False``).
    coef_ : ndarray of shape (n_components, n_features)
        Regression coefficients.
    sigma_ : ndarray of shape (n_components,)
        Noise standard deviations (equal entries for shared or fixed variance); for
        ``family="student_t"`` the scales σ_j of the t errors (their standard deviation is
        ``σ_j √(ν_j / (ν_j − 2))`` for ν_j > 2). Not set for the Poisson and binomial families,
        which have no σ (the variance is ``μ`` and ``m p (1 − p)``).
    df_ : ndarray of shape (n_components,)
        Only for ``family="student_t"``: degrees of freedom ν_j (estimated, or as fixed).
    log_likelihood_ : float
        Total observed-data log-likelihood at the estimates.
    log_likelihood_trace_ : ndarray of shape (``n_iter_ + 1``,)
        Log-likelihood at the start and after every iteration of the returned run.
    n_iter_ : int
    converged_ : bool
    result_ : EMResult
        The full result of :func:`bayes_mlr.fit_em`.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only set when ``X`` had string column names (pandas).
    standard_errors_ : dict of str to ndarray
        Keys "weights", "intercept", "coef", "sigma", each in its parameter's shape, and with
        concomitant variables "concomitant_intercept" and "concomitant_coef". From the
        observed information of the observed-data log-likelihood (free parameters: coefficients,
        log sigma and K-1 logits or the concomitant coefficients), mapped to the natural scale
        by the delta method. Computed on first access.
    concomitant_intercept_ : ndarray of shape (n_components,)
        Only with concomitant variables: the intercepts α_j of the multinomial logit
        ``π_ij = softmax_j(α_j + w_iᵀγ_j)``; entry 0 is 0 (component 0 is the reference).
    concomitant_coef_ : ndarray of shape (n_components, n_concomitant)
        Only with concomitant variables: the γ_j; row 0 is all zeros.
    concomitant_names_in_ : ndarray of str
        Only with concomitant variables: their names (DataFrame columns, the concomitant
        formula's columns, or ``w0, w1, ...``).
    shared_ : ndarray of bool, shape (n_features,)
        Which features have a shared coefficient.
    n_groups_ : int or None
        Number of groups of a grouped fit (``fit(..., groups=)``), else None.

    Examples
    --------
    >>> import numpy as np
    >>> from bayes_mlr import MixtureOfRegressions
    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=(400, 1))
    >>> z = rng.random(400) < 0.5
    >>> y = np.where(z, 1.0 + 2.0 * x[:, 0], -1.0 - 2.0 * x[:, 0]) + 0.2 * rng.normal(size=400)
    >>> model = MixtureOfRegressions(2, random_state=0).fit(x, y)
    >>> np.round(model.coef_.ravel(), 1)
    array([-2.,  2.])
    >>> model.standard_errors_["coef"].shape
    (2, 1)
    """

    def __init__(
        self,
        n_components: int = 2,
        *,
        variance: str = "component",
        sigma: float | None = None,
        fit_intercept: bool = True,
        init: Any = "auto",
        n_init: int = 10,
        max_iter: int = 1000,
        tol: float = 1e-8,
        random_state: int | np.random.Generator | None = None,
        verbose: int = 0,
        spurious: str = "avoid",
        min_weight: float | None = None,
        shared: Any = None,
        family: Any = "gaussian",
    ) -> None:
        self.n_components = n_components
        self.variance = variance
        self.sigma = sigma
        self.fit_intercept = fit_intercept
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose
        self.spurious = spurious
        self.min_weight = min_weight
        self.shared = shared
        self.family = family

    # -- fitting ---------------------------------------------------------------------------

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        *,
        groups: Any = None,
        concomitant: Any = None,
        offset: Any = None,
        trials: Any = None,
    ) -> MixtureOfRegressions:
        """Fit by soft EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features (pandas DataFrames keep their column names).
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional
            Replication weights (with ``groups``: constant within each group).
        groups : array-like of shape (n_samples,), optional
            Group labels: all rows of a group share one component (repeated measurements of
            one subject; flexmix's ``y ~ x | id``). The E-step is then Bayes' rule per group,
            and the log-likelihood a sum over groups.
        concomitant : array-like of shape (n_samples, r), optional
            Concomitant variables ``w``: the prior weights become
            ``π_ij = softmax_j(α_j + w_iᵀγ_j)`` (a mixture of experts; flexmix's
            ``FLXPmultinom``). With ``groups`` they must be constant within each group.
        offset : array-like of shape (n_samples,), optional
            Added to the linear predictor of every component (``family="poisson"`` or
            ``"binomial"``), e.g. ``np.log(exposure)`` for counts per unit of exposure.
        trials : array-like of shape (n_samples,), optional
            Number of trials of each row for ``family="binomial"`` (positive integers;
            default 1), ``y`` counting the successes.

        Returns
        -------
        self

        Notes
        -----
        Dask arrays or DataFrames are fitted chunk by chunk, also with ``groups``,
        ``concomitant`` or ``shared`` (:func:`bayes_mlr.fit_structured`); with ``groups`` every
        group must lie inside one row chunk (checked; the error names a group that does not).
        """
        callback = _progress_printer(self.verbose)  # checks verbose before any work
        family = resolve_family(self.family)  # checks family before any work
        structured = (groups, concomitant, self.shared, offset, trials)
        if family.name != "gaussian" or any(v is not None for v in structured):
            return self._fit_structured(
                X, y, sample_weight, groups, concomitant, callback, offset, trials
            )
        if is_dask_collection(X) or is_dask_collection(y):
            from bayes_mlr.core.dask_data import (
                prepare,  # Dask arrays/DataFrames: stream the blocks, stay lazy
            )

            X_arr, y_arr, sw, names = prepare(X, y, sample_weight)
        else:
            X_arr, y_arr, sw, names = check_data(X, y, sample_weight)
        result = fit_em(
            X_arr,
            y_arr,
            self.n_components,
            sample_weight=sw,
            callback=callback,
            **self._em_settings(),
            min_weight=self.min_weight,
        )
        self._set_result(result, X_arr, y_arr, sw, names)
        return self

    def _em_settings(self) -> dict[str, Any]:
        """The constructor arguments that every EM entry point takes."""
        names = ("variance", "sigma", "fit_intercept", "init", "n_init", "max_iter", "tol")
        return {name: getattr(self, name) for name in (*names, "random_state", "spurious")}

    def _fit_structured(
        self, X, y, sample_weight, groups, concomitant, callback, offset=None, trials=None
    ):
        """fit() with groups, concomitant variables, shared coefficients or a non-Gaussian
        family (:func:`bayes_mlr.core.structured.fit_structured`)."""
        from bayes_mlr._validation import check_concomitant, check_shared
        from bayes_mlr.core.group_data import dask_concomitant, dask_group_codes
        from bayes_mlr.core.grouping import Grouping
        from bayes_mlr.core.structured import fit_structured

        if self.min_weight is not None:
            raise ValueError(
                "min_weight is not available with shared coefficients, groups, concomitant "
                "variables or a non-Gaussian family; leave it None."
            )
        lazy = any(map(is_dask_collection, (X, y, sample_weight, groups, concomitant)))
        if lazy:
            from bayes_mlr.core.dask_data import prepare

            X_arr, y_arr, sw, names = prepare(X, y, sample_weight)
        else:
            X_arr, y_arr, sw, names = check_data(X, y, sample_weight)
        mask, shared_intercept = check_shared(
            self.shared, X_arr.shape[1], names, fit_intercept=bool(self.fit_intercept)
        )
        shared = [int(k) for k in np.flatnonzero(mask)] + ["intercept"] * shared_intercept
        W = conc_names = None
        if concomitant is not None and not is_dask_collection(concomitant):
            W, conc_names = check_concomitant(concomitant, X_arr.shape[0])
        elif concomitant is not None:
            W, conc_names = dask_concomitant(concomitant)
        if groups is None:
            codes = None
        elif is_dask_collection(groups) or lazy:
            codes = dask_group_codes(groups, X_arr.chunks[0])
        else:
            codes = Grouping(groups, X_arr.shape[0]).index
        result = fit_structured(
            X_arr,
            y_arr,
            self.n_components,
            groups=groups,
            concomitant=W,
            shared=shared,
            sample_weight=sw,
            callback=callback,
            family=self.family,
            offset=offset,
            trials=trials,
            **self._em_settings(),
        )
        self._set_result(
            result,
            X_arr,
            y_arr,
            sw,
            names,
            groups=codes,
            concomitant=W,
            offset=_row_data(offset),
            trials=_row_data(trials),
        )
        if W is not None:
            self.concomitant_names_in_ = (
                conc_names
                if conc_names is not None
                else np.asarray([f"w{k}" for k in range(W.shape[1])], dtype=object)
            )
        return self

    def _set_result(
        self,
        result: EMResult,
        X,
        y,
        sw,
        names,
        *,
        groups=None,
        concomitant=None,
        offset=None,
        trials=None,
    ) -> None:
        self.result_ = result
        self.n_components_ = result.n_components
        self.weights_ = np.array(result.weights)
        self.intercept_ = np.array(result.intercept)
        self.coef_ = np.array(result.coef)
        for name in ("sigma_", "df_"):
            if hasattr(self, name):
                delattr(self, name)
        if result.family.has_sigma:
            self.sigma_ = np.array(result.sigma)
        if result.df is not None:
            self.df_ = np.array(result.df)
        self.log_likelihood_ = result.log_likelihood
        self.log_likelihood_trace_ = np.array(result.log_likelihood_trace)
        self.n_iter_ = result.n_iter
        self.converged_ = result.converged
        self.n_features_in_ = X.shape[1]
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.shared_ = np.array(result.shared)
        self.n_groups_ = result.n_groups
        for name in ("concomitant_intercept_", "concomitant_coef_", "concomitant_names_in_"):
            if hasattr(self, name):
                delattr(self, name)
        if result.concomitant_coef is not None:
            self.concomitant_intercept_ = np.array(result.concomitant_intercept)
            self.concomitant_coef_ = np.array(result.concomitant_coef)
        # Training data are kept for standard errors and sample_posterior().
        self._fit_X, self._fit_y, self._fit_sample_weight = X, y, sw
        self._fit_groups, self._fit_concomitant = groups, concomitant
        self._fit_offset, self._fit_trials = offset, trials
        self._standard_errors = None
        self._covariance = None

    # -- fitted-model helpers ----------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "result_"):
            raise _not_fitted_error(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this method."
            )

    def _check_X(self, X: Any) -> np.ndarray:
        self._check_fitted()
        state = self._formula_state()
        names = getattr(X, "columns", None)
        if state is not None and names is not None and list(names) != state.feature_names:
            X = state.encode(X)  # raw data for a formula fit; an encoded design passes as is
            names = X.columns
        fitted = getattr(self, "feature_names_in_", None)
        if names is not None and fitted is not None and list(names) != list(fitted):
            raise ValueError(
                f"X has feature names {list(names)}, but the model was fitted with "
                f"{list(fitted)} (same names in the same order are required)."
            )
        arr = check_X(X)
        if arr.shape[1] != self.n_features_in_:
            # scikit-learn's wording; a 1-D X is one feature, which is rarely meant here
            hint = (
                " A 1-D X is read as a single feature: Reshape your data with "
                "X.reshape(1, -1) if it is a single sample."
                if np.ndim(X) == 1
                else ""
            )
            raise ValueError(
                f"X has {arr.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input.{hint}"
            )
        return arr

    # -- model formulas ------------------------------------------------------------------------

    @classmethod
    def from_formula(
        cls,
        formula: str,
        data: Any,
        n_components: int = 2,
        *,
        sample_weight: Any = None,
        na_action: str = "raise",
        concomitant: str | None = None,
        shared: str | None = None,
        offset: Any = None,
        trials: Any = None,
        **kwargs: Any,
    ) -> MixtureOfRegressions:
        """Fit from a model formula and a data frame, e.g. ``"price ~ size + C(region)"``.

        The formula is evaluated by formulaic (:func:`bayes_mlr.formula.design_from_formula`):
        categorical columns are one-hot encoded, transforms such as ``np.log(x)`` or
        ``center(x)`` are applied, and ``- 1`` (or ``+ 0``) fits without intercepts. The fitted
        estimator keeps the formula, so every method that takes ``X`` (:meth:`predict`,
        :meth:`responsibilities`, :meth:`bic`, ...) also accepts a data frame of raw columns,
        encoded exactly as in the fit (same categories, same transform parameters). The methods
        that take ``y`` compute it from the response term (``response_``) when the frame holds
        its columns, so ``model.bic(df)`` works; a ``y`` passed as well must agree with it. A
        frame whose columns are the encoded feature names is taken as already encoded.

        A later ``fit(X, y)`` forgets the formula, and :func:`sklearn.base.clone` returns an
        unfitted estimator with the same settings (the formula is data handling, not a
        parameter).

        Parameters
        ----------
        formula : str
            One response left of ``~``, the features right of it; ``| g`` at the end groups
            the rows by the column ``g`` (flexmix's ``y ~ x | id``: all rows of a group share
            one component).
        data : pandas.DataFrame or mapping of column name to array
        n_components : int, default=2
        sample_weight : str or array-like of shape (n_samples,), optional
            Replication weights, or the name of a column of ``data`` holding them.
        na_action : {"raise", "drop", "ignore"}, default="raise"
            Rows with missing values in the formula's variables: refuse, drop (the weights of
            dropped rows are dropped too) or keep (then EM refuses the NaN).
        concomitant : str, optional
            A one-sided formula of concomitant variables, e.g. ``"~ z1 + C(z2)"``: the prior
            weights are a multinomial logit in them (see :meth:`fit`). Encoded like the main
            formula and kept, so :meth:`predict` and :meth:`mixing_weights` take the frame.
        shared : str, optional
            A one-sided formula of variables whose coefficient is one for all components,
            e.g. ``"~ w"`` (flexmix's ``FLXMRglmfix(fixed = ~ w)``); write ``1`` as a term
            (``"~ 1 + w"``) to share the intercept too.
        offset : str or array-like of shape (n_samples,), optional
            An expression over the columns of ``data`` added to the linear predictor, e.g.
            ``"np.log(Hours)"`` (``family="poisson"`` or ``"binomial"``); kept, so that the
            methods that take a data frame compute it from the frame.
        trials : str or array-like of shape (n_samples,), optional
            The number of trials for ``family="binomial"``: an expression over the columns of
            ``data`` such as ``"Total"``, the response counting successes
            (``"Deaths ~ Treatment"``; flexmix's ``cbind(Deaths, Total - Deaths) ~ ...``).
        **kwargs
            Other constructor arguments (``family``, ``variance``, ``random_state``, ...);
            ``fit_intercept`` comes from the formula.

        Returns
        -------
        MixtureOfRegressions
            Fitted, with ``formula_`` and ``response_`` set and ``feature_names_in_`` the
            encoded column names.

        Raises
        ------
        bayes_mlr.formula.FormulaError
            The formula cannot be evaluated on ``data`` (a ``ValueError``).
        TypeError
            ``fit_intercept`` was passed.

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> from bayes_mlr import MixtureOfRegressions, simulate
        >>> sim = simulate(600, intercept=[-2, 2], coef=[[1.5], [-1.0]], random_state=0)
        >>> df = pd.DataFrame({"x": sim.X[:, 0], "y": sim.y})
        >>> model = MixtureOfRegressions.from_formula("y ~ x", df, random_state=0)
        >>> model.feature_names_in_.tolist(), model.fit_intercept
        (['x'], True)
        >>> model.predict(df.head(3)).shape
        (3,)
        """
        from bayes_mlr.formula import structured_design

        if "fit_intercept" in kwargs:
            raise TypeError(
                "from_formula() takes the intercept from the formula, not fit_intercept: write "
                "'y ~ x - 1' (or 'y ~ x + 0') for a model without intercepts."
            )
        if shared is not None and not isinstance(shared, str):
            raise TypeError(
                f"from_formula() takes shared as a formula such as '~ w'; got {shared!r}."
            )
        if concomitant is not None and not isinstance(concomitant, str):
            raise TypeError(
                "from_formula() takes concomitant as a formula such as '~ z'; got "
                f"{type(concomitant).__name__}."
            )
        design = structured_design(
            formula, data, concomitant=concomitant, shared=shared, na_action=na_action
        )
        if isinstance(sample_weight, str):
            if sample_weight not in getattr(data, "columns", data):
                raise ValueError(f"sample_weight={sample_weight!r} is not a column of data.")
            column = data[sample_weight]
            sample_weight = column if is_dask_collection(column) else np.asarray(column)
        lazy = is_dask_collection(design.X)  # rows are never dropped on Dask data
        if sample_weight is not None and not lazy and np.ndim(sample_weight) == 1:
            n_data = len(getattr(data, "index", sample_weight))
            if len(sample_weight) == n_data != design.X.shape[0]:  # rows dropped (na_action)
                import pandas as pd

                index = data.index if hasattr(data, "index") else pd.RangeIndex(n_data)
                sample_weight = (
                    pd.Series(np.asarray(sample_weight), index=index).loc[design.X.index].to_numpy()
                )
        if design.shared is not None:
            kwargs["shared"] = design.shared
        row_values = {}
        for name, value in (("offset", offset), ("trials", trials)):
            if isinstance(value, str):
                from bayes_mlr.formula import evaluate_expression

                value = evaluate_expression(value, _rows_of(data, design), name)
            elif value is not None and not lazy:
                value = np.asarray(value, dtype=float).reshape(-1)
                if value.shape[0] == len(getattr(data, "index", value)) != design.X.shape[0]:
                    value = value[_kept_rows(data, design)]
            row_values[name] = value
        model = cls(n_components, fit_intercept=design.fit_intercept, **kwargs)
        model.fit(
            design.X,
            design.y,
            sample_weight=sample_weight,
            groups=design.groups,
            concomitant=design.concomitant,
            **row_values,
        )
        model._remember_formula(
            design,
            offset=offset if isinstance(offset, str) else None,
            trials=trials if isinstance(trials, str) else None,
        )
        return model

    def _remember_formula(self, design: Any, *, offset=None, trials=None) -> None:
        """Attach the formula of a :class:`~bayes_mlr.formula.Design` to the current fit (made
        on ``design.X``, ``design.y``), as :meth:`from_formula` does; it is saved with the
        model."""
        self._check_fitted()
        self._formula = FormulaState(
            formula=design.formula,
            response=design.response,
            feature_names=list(design.feature_names),
            model_spec=design.model_spec,
            result=self.result_,
            response_spec=design.response_spec,
            group=design.group,
            concomitant_formula=design.concomitant_formula,
            concomitant_spec=design.concomitant_spec,
            concomitant_names=(
                None if design.concomitant is None else list(design.concomitant.columns)
            ),
            shared_formula=design.shared_formula,
            offset=offset,
            trials=trials,
        )

    def _formula_state(self) -> FormulaState | None:
        state = getattr(self, "_formula", None)
        if state is None or state.result is not getattr(self, "result_", None):
            return None
        return state

    @property
    def formula_(self) -> str:
        """The formula of a :meth:`from_formula` fit (AttributeError otherwise)."""
        state = self._formula_state()
        if state is None:
            raise AttributeError(f"This {type(self).__name__} was not fitted from a formula.")
        return state.formula

    @property
    def response_(self) -> str:
        """The response term of a :meth:`from_formula` fit, e.g. ``"np.log(price)"``."""
        state = self._formula_state()
        if state is None:
            raise AttributeError(f"This {type(self).__name__} was not fitted from a formula.")
        return state.response

    @property
    def feature_names(self) -> list[str]:
        """Feature names: the pandas column names if fitted on a DataFrame, else x0, x1, ..."""
        self._check_fitted()
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            return [str(n) for n in names]
        return [f"x{k}" for k in range(self.n_features_in_)]

    def _design(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Design matrix and coefficient matrix β (K, q) in the original units."""
        if self.fit_intercept:
            return np.column_stack([np.ones(X.shape[0]), X]), np.column_stack(
                [self.intercept_, self.coef_]
            )
        return X, self.coef_

    def _inference_args(self) -> tuple[tuple, dict]:
        args = (self._fit_X, self._fit_y, self.weights_, self.intercept_, self.coef_, self.sigma_)
        kwargs = {
            "variance": self.variance,
            "fit_intercept": self.fit_intercept,
            "sample_weight": self._fit_sample_weight,
        }
        return args, kwargs

    def _training_structure(self) -> dict[str, Any]:
        """``groups``, ``concomitant``, ``offset`` and ``trials`` of the training data, as
        keywords for the methods that score data (``bic``, ``responsibilities``, ...)."""
        return {
            "groups": getattr(self, "_fit_groups", None),
            "concomitant": getattr(self, "_fit_concomitant", None),
            "offset": getattr(self, "_fit_offset", None),
            "trials": getattr(self, "_fit_trials", None),
        }

    def _structured_inference_args(self) -> tuple:
        """Training data for the structured observed information: X, y, sample_weight,
        groups, concomitant, offset, trials."""
        return (
            self._fit_X,
            self._fit_y,
            self._fit_sample_weight,
            getattr(self, "_fit_groups", None),
            getattr(self, "_fit_concomitant", None),
            getattr(self, "_fit_offset", None),
            getattr(self, "_fit_trials", None),
        )

    @property
    def standard_errors_(self) -> dict[str, np.ndarray]:
        """Standard errors from the observed information (computed on first access; the
        arrays are read-only)."""
        self._check_fitted()
        if self._standard_errors is None:
            if self.result_.structured:
                from bayes_mlr.frequentist.structured_information import standard_errors

                ses = standard_errors(self.result_, *self._structured_inference_args())
            else:
                from bayes_mlr.frequentist.information import standard_errors

                args, kwargs = self._inference_args()
                ses = standard_errors(*args, **kwargs)
            for value in ses.values():
                value.setflags(write=False)
            self._standard_errors = ses
        return self._standard_errors

    @property
    def covariance_(self) -> np.ndarray:
        """Asymptotic covariance of the estimates: the inverse observed information of the
        observed-data log-likelihood, mapped by the delta method to the natural parameters.

        ndarray of shape (Q, Q), read-only, in the order of :attr:`covariance_labels_`: for
        each component ``j`` its ``intercept[j]`` (when fitted) and ``coef[j,k]``; then
        ``sigma[j]`` for each component (``variance="component"``), one ``sigma``
        (``"shared"``) or none (``"fixed"``); then ``weights[j]`` for every component (their
        block is singular, since the weights sum to one). The square roots of its diagonal are
        :attr:`standard_errors_`. Rows and columns in a singular direction are NaN.
        """
        return self._covariance_and_labels()[0]

    @property
    def covariance_labels_(self) -> list[str]:
        """The parameter of each row and column of :attr:`covariance_`."""
        return list(self._covariance_and_labels()[1])

    def _covariance_and_labels(self) -> tuple[np.ndarray, list[str]]:
        self._check_fitted()
        if self._covariance is None:
            if self.result_.structured:
                from bayes_mlr.frequentist.structured_information import covariance

                cov, labels = covariance(self.result_, *self._structured_inference_args())
            else:
                from bayes_mlr.frequentist.information import covariance

                args, kwargs = self._inference_args()
                cov, labels = covariance(*args, **kwargs)
            cov = np.array(cov)
            cov.setflags(write=False)
            self._covariance = (cov, labels)
        return self._covariance

    def summary(self, *, ci_prob: float = 0.95):
        """The parameter table: one row per scalar parameter, with Wald tests.

        Parameters
        ----------
        ci_prob : float, default=0.95
            Coverage of the Wald intervals.

        Returns
        -------
        bayes_mlr.frequentist.summary.SummaryTable
            A :class:`pandas.DataFrame` with the columns ``parameter``, ``component``,
            ``feature``, ``estimate``, ``std_error``, ``z`` (estimate / std_error), ``p_value``
            (two-sided, normal), ``ci_lower``, ``ci_upper``; printing it shows a header with the
            fit (observations, log-likelihood, BIC, AIC, convergence, flags) above the table,
            as statsmodels' ``summary()`` or flexmix's ``summary(refit())``. σ is the maximum
            likelihood estimate (as mixtools; flexmix corrects it for degrees of freedom).
        """
        self._check_fitted()
        from bayes_mlr.frequentist.summary import summary_table

        return summary_table(self, ci_prob=ci_prob)

    def bootstrap_standard_errors(
        self, n_boot: int = 100, kind: str = "parametric", random_state: Any = None
    ) -> dict[str, np.ndarray]:
        """Bootstrap standard errors, every replicate's labels aligned to this fit's.

        Parameters
        ----------
        n_boot : int, default=100
        kind : {"parametric", "empirical"}, default="parametric"
            Responses drawn from the fitted mixture at the training X, or rows resampled.
        random_state : int, numpy Generator or None

        Returns
        -------
        dict of str to ndarray
            The keys and shapes of :attr:`standard_errors_` (read-only arrays). See
            :func:`bayes_mlr.frequentist.bootstrap.bootstrap_standard_errors`.
        """
        from bayes_mlr.frequentist.bootstrap import bootstrap_standard_errors

        return bootstrap_standard_errors(self, n_boot=n_boot, kind=kind, random_state=random_state)

    # -- prediction and scoring --------------------------------------------------------------

    def predict(
        self, X: Any, concomitant: Any = None, *, offset: Any = None, trials: Any = None
    ) -> np.ndarray:
        """Mixture mean on the response scale, E[y | x] = Σ_j π_j μ_j(x).

        ``μ_j`` is the component mean: ``intercept_j + coef_j·x`` for the Gaussian and
        Student-t families, ``exp(offset + η_j)`` for the Poisson, ``trials · expit(offset +
        η_j)`` for the binomial (a probability with the default ``trials=1``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        concomitant : array-like of shape (n_samples, r), optional
            Required for a model with concomitant variables (then π_j depends on the row), unless
            it was fitted from a formula and ``X`` is the data frame.
        offset, trials : array-like of shape (n_samples,), optional
            For the Poisson and binomial families; required when the model was fitted with
            them, unless it was fitted from a formula and ``X`` is the data frame.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        means = self.predict_components(X, offset=offset, trials=trials)
        if getattr(self, "concomitant_coef_", None) is None:
            return means @ self.weights_
        _, W = self._structure_of(X, None, concomitant)
        return np.einsum("ij,ij->i", means, self.mixing_weights(W))

    def predict_components(self, X: Any, *, offset: Any = None, trials: Any = None) -> np.ndarray:
        """Each component's mean at X on the response scale (for the Gaussian and Student-t
        families, its regression line). ``offset`` and ``trials`` as in :meth:`predict`.

        Returns
        -------
        ndarray of shape (n_samples, n_components)
        """
        offset, trials = self._family_data_of(X, offset, trials)
        X = self._check_X(X)
        if self.result_.family.name == "gaussian" and offset is None and trials is None:
            return X @ self.coef_.T + self.intercept_
        from bayes_mlr.core.structured import family_rows, linear_predictor

        extra = family_rows(self.result_, np.zeros(X.shape[0]), offset, trials)
        return self.result_.family.mean(linear_predictor(self.result_, X, extra), extra)

    def _family_data_of(self, X: Any, offset: Any, trials: Any) -> tuple[Any, Any]:
        """``offset`` and ``trials`` for data X: as given, or for a formula fit and a raw data
        frame X, computed from X with the fit's expressions. A model fitted with an offset
        (trials) needs one for new data."""
        self._check_fitted()
        state = self._formula_state()
        frame = state is not None and hasattr(X, "columns") and not is_dask_collection(X)
        values = {"offset": offset, "trials": trials}
        for name in values:
            expression = getattr(state, name, None) if state is not None else None
            if values[name] is None and frame and expression is not None:
                from bayes_mlr.formula import evaluate_expression

                values[name] = evaluate_expression(expression, X, name)
            fitted = getattr(self, f"_fit_{name}", None) is not None
            if values[name] is None and fitted:
                raise ValueError(
                    f"This model was fitted with {name}=: pass {name}= for these rows too (an "
                    "array of shape (n_samples,)), or, for a formula fit, the data frame with "
                    "the columns it is computed from."
                )
        return values["offset"], values["trials"]

    def mixing_weights(self, concomitant: Any) -> np.ndarray:
        """Prior component probabilities of each row, π_ij = softmax_j(α_j + w_iᵀγ_j).

        Parameters
        ----------
        concomitant : array-like of shape (n_samples, r) or data frame
            The concomitant variables (for a formula fit, a data frame of raw columns is
            encoded with the concomitant formula). For a model without concomitant
            variables any array-like with ``n_samples`` rows (e.g. ``X``) gives ``weights_``
            on every row.

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            Rows sum to one.
        """
        from bayes_mlr.core.structured import mixing_weights

        self._check_fitted()
        if concomitant is None:
            raise ValueError(
                "mixing_weights needs the concomitant variables (or, for a model without them, "
                "any array with one row per observation, e.g. X)."
            )
        state = self._formula_state()
        if state is not None and hasattr(concomitant, "columns"):
            encoded = state.concomitant_of(concomitant)
            if encoded is not None:
                concomitant = encoded
        if getattr(self, "concomitant_coef_", None) is None:
            return mixing_weights(self.result_, None, len(concomitant))
        return mixing_weights(self.result_, concomitant)

    def _structure_of(self, X: Any, groups: Any, concomitant: Any) -> tuple[Any, Any]:
        """``groups`` and ``concomitant`` for data X: as given, or for a formula fit and a
        raw data frame X, read from X (the ``| g`` column and the concomitant formula)."""
        state = self._formula_state()
        frame = state is not None and hasattr(X, "columns") and not is_dask_collection(X)
        if groups is None and frame:
            groups = state.groups_of(X)
        has_concomitant = getattr(self, "concomitant_coef_", None) is not None
        if not has_concomitant:
            if concomitant is not None:
                raise ValueError(
                    "concomitant was given, but this model was fitted without concomitant "
                    "variables."
                )
            return groups, None
        if concomitant is None and frame:
            concomitant = state.concomitant_of(X)
        elif concomitant is not None and state is not None and hasattr(concomitant, "columns"):
            encoded = state.concomitant_of(concomitant)
            concomitant = concomitant if encoded is None else encoded
        if concomitant is None:
            raise ValueError(
                f"This model has {self.concomitant_coef_.shape[1]} concomitant variable(s) "
                f"({', '.join(map(str, self.concomitant_names_in_))}): pass concomitant=, an "
                "array of shape (n_samples, r)."
            )
        return groups, concomitant

    def _response(self, X: Any, y: Any) -> Any:
        """``y``, or for a formula fit and a raw data frame ``X``, the formula's response
        computed from ``X`` (a ``y`` given as well must agree with it)."""
        state = self._formula_state()
        frame = state is not None and hasattr(X, "columns") and not is_dask_collection(X)
        expected = state.response_of(X) if frame else None
        if y is None:
            if expected is not None:
                return expected
            if state is not None:
                columns = ", ".join(map(str, getattr(X, "columns", []))) or "none (not a frame)"
                raise ValueError(
                    f"y is required: X lacks the columns of the response {state.response!r} "
                    f"of the formula {state.formula!r} (columns in X: {columns}); pass the data "
                    "frame with its response column, or y on the response's scale."
                )
            raise ValueError(
                "y is required: pass the responses y (only a model fitted from a formula takes "
                "them from the data frame X)."
            )
        if expected is None:
            return y
        y_arr = check_y(y, expected.shape[0])
        # The same transform of the same numbers: equal up to rounding, whatever the scale.
        atol = 1e-12 * max(1.0, float(np.nanmax(np.abs(expected), initial=0.0)))
        differ = ~np.isclose(y_arr, expected, rtol=1e-9, atol=atol)
        if differ.any():
            i = int(np.flatnonzero(differ)[0])
            raise ValueError(
                f"y does not match the response {state.response!r} that the formula "
                f"{state.formula!r} computes from X: {int(differ.sum())} of {differ.size} "
                f"values differ (row {i}: y = {y_arr[i]:.6g}, {state.response} = "
                f"{expected[i]:.6g}). Pass y on the response's scale, or leave y out to take "
                "it from X."
            )
        return y_arr

    def _e_step(
        self,
        X: Any,
        y: Any,
        groups: Any = None,
        concomitant: Any = None,
        offset: Any = None,
        trials: Any = None,
    ) -> tuple[np.ndarray, np.ndarray, Any]:
        """Responsibilities per row (n, K), log-likelihood per group (per row without
        groups), and the grouping (None for the plain model without groups)."""
        self._check_fitted()
        y = self._response(X, y)
        groups, concomitant = self._structure_of(X, groups, concomitant)
        groups = None if groups is _NO_GROUPS else groups
        offset, trials = self._family_data_of(X, offset, trials)
        X_arr = self._check_X(X)
        y_arr = check_y(y, X_arr.shape[0])
        plain = self.result_.family.name == "gaussian" and offset is None and trials is None
        if plain and groups is None and concomitant is None:
            X1, beta = self._design(X_arr)
            resp, ll = e_step(X1, y_arr, self.weights_, beta, self.sigma_)
            return resp, ll, None
        from bayes_mlr.core.structured import e_step_structured

        return e_step_structured(
            self.result_,
            X_arr,
            y_arr,
            groups=groups,
            concomitant=concomitant,
            offset=offset,
            trials=trials,
        )

    def responsibilities(
        self,
        X: Any,
        y: Any = None,
        *,
        groups: Any = None,
        concomitant: Any = None,
        offset: Any = None,
        trials: Any = None,
    ) -> np.ndarray:
        """Posterior membership probabilities γ_ij at the EM estimates (Bayes' rule).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), optional
            Required, except for a model fitted with :meth:`from_formula` when ``X`` is a
            data frame holding the response's columns: then ``y`` is the formula's response
            computed from ``X`` (a ``y`` given as well must equal it, so that a ``y`` on the
            wrong scale, e.g. the raw column for ``np.log(y) ~ x``, is refused). The same
            holds for every method below that takes ``y``.
        groups : array-like of shape (n_samples,), optional
            Group labels: the rows of a group get their group's posterior (Bayes' rule on the
            product of their densities). A formula fit with ``| g`` reads them from ``X``.
            Without groups each row is its own group.
        concomitant : array-like of shape (n_samples, r), optional
            Required for a model with concomitant variables (a formula fit reads them from
            ``X``).
        offset, trials : array-like of shape (n_samples,), optional
            For the Poisson and binomial families, as in :meth:`predict`. The same holds for
            every method below.

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            Rows sum to one.
        """
        return self._e_step(X, y, groups, concomitant, offset, trials)[0]

    def predict_component(
        self,
        X: Any,
        y: Any = None,
        *,
        groups: Any = None,
        concomitant: Any = None,
        offset: Any = None,
        trials: Any = None,
    ) -> np.ndarray:
        """Most probable component of each observation (argmax of the responsibilities).

        ``y``, ``groups`` and ``concomitant`` as in :meth:`responsibilities`.

        Returns
        -------
        ndarray of shape (n_samples,) of int
        """
        return self.responsibilities(
            X, y, groups=groups, concomitant=concomitant, offset=offset, trials=trials
        ).argmax(axis=1)

    def score_samples(
        self,
        X: Any,
        y: Any = None,
        *,
        concomitant: Any = None,
        offset: Any = None,
        trials: Any = None,
    ) -> np.ndarray:
        """Per-observation log-likelihood log Σ_j π_ij N(y_i | ·), each row on its own (for
        the log-likelihood of groups see :meth:`log_likelihood`).

        ``y`` and ``concomitant`` as in :meth:`responsibilities`.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self._e_step(X, y, _NO_GROUPS, concomitant, offset, trials)[1]

    def _group_weights(self, sample_weight: Any, n_rows: int, grouping: Any) -> Any:
        """Validated sample weights, reduced to one per group when the rows are grouped."""
        sw = check_sample_weight(sample_weight, n_rows)
        if sw is None or grouping is None or grouping.trivial:
            return sw
        from bayes_mlr.core.grouping import group_constant

        return group_constant(grouping, sw, "sample_weight")

    def log_likelihood(
        self,
        X: Any,
        y: Any = None,
        sample_weight: Any = None,
        *,
        groups: Any = None,
        concomitant: Any = None,
        offset: Any = None,
        trials: Any = None,
    ) -> float:
        """Total (sample-weighted) observed-data log-likelihood of (X, y): a sum over groups
        when ``groups`` are given (or read from a formula fit's frame). ``y``, ``groups``,
        ``concomitant``, ``offset`` and ``trials`` as in :meth:`responsibilities`."""
        resp, ll, grouping = self._e_step(X, y, groups, concomitant, offset, trials)
        sw = self._group_weights(sample_weight, resp.shape[0], grouping)
        return float(ll @ sw) if sw is not None else float(ll.sum())

    def _criteria(
        self, X: Any, y: Any, sample_weight: Any, groups: Any, concomitant: Any, family_data
    ) -> dict[str, float]:
        from bayes_mlr.frequentist.information import information_criteria

        resp, ll_groups, grouping = self._e_step(X, y, groups, concomitant, *family_data)
        n_rows = resp.shape[0]
        row_sw = check_sample_weight(sample_weight, n_rows)
        sw = self._group_weights(sample_weight, n_rows, grouping)
        ll = float(ll_groups @ sw) if sw is not None else float(ll_groups.sum())
        if grouping is not None and not grouping.trivial:
            resp = grouping.first(resp)
        n_params = self.result_.n_parameters
        crit = information_criteria(ll, resp, n_params, resp.shape[0], sample_weight=sw)
        # BIC's n counts rows (as flexmix), also when the rows are grouped
        n_obs = float(row_sw.sum()) if row_sw is not None else float(n_rows)
        bic = -2.0 * ll + n_params * float(np.log(n_obs))
        return {"bic": bic, "aic": crit["aic"], "icl": bic + crit["icl"] - crit["bic"]}

    def bic(
        self,
        X: Any,
        y: Any = None,
        sample_weight: Any = None,
        *,
        groups: Any = None,
        concomitant: Any = None,
        offset: Any = None,
        trials: Any = None,
    ) -> float:
        """Bayesian information criterion −2ℓ + P log n on (X, y); lower is better. ``n``
        counts rows (also with groups, as flexmix). ``y``, ``groups``, ``concomitant``,
        ``offset`` and ``trials`` as in :meth:`responsibilities`."""
        return self._criteria(X, y, sample_weight, groups, concomitant, (offset, trials))["bic"]

    def aic(
        self,
        X: Any,
        y: Any = None,
        sample_weight: Any = None,
        *,
        groups: Any = None,
        concomitant: Any = None,
        offset: Any = None,
        trials: Any = None,
    ) -> float:
        """Akaike information criterion −2ℓ + 2P on (X, y); lower is better. ``y``, ``groups``
        and ``concomitant`` as in :meth:`responsibilities`."""
        return self._criteria(X, y, sample_weight, groups, concomitant, (offset, trials))["aic"]

    def icl(
        self,
        X: Any,
        y: Any = None,
        sample_weight: Any = None,
        *,
        groups: Any = None,
        concomitant: Any = None,
        offset: Any = None,
        trials: Any = None,
    ) -> float:
        """Integrated completed likelihood (Biernacki, Celeux & Govaert 2000), as flexmix's
        ``ICL()`` and mclust: BIC − 2 Σ_i w_i log γ_{i,ẑ_i} with ẑ_i the MAP component (per
        group with groups); lower is better (see
        :func:`bayes_mlr.frequentist.information.information_criteria`). ``y``, ``groups`` and
        ``concomitant`` as in :meth:`responsibilities`."""
        return self._criteria(X, y, sample_weight, groups, concomitant, (offset, trials))["icl"]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Coefficient of determination R² of :meth:`predict` (scikit-learn's regressor score).

        ``1 - Σ w (y - ŷ)² / Σ w (y - ȳ)²`` with ŷ the mixture mean; 1.0 for a constant y that
        is predicted exactly, 0.0 for one that is not (as ``sklearn.metrics.r2_score``).

        The mixture mean ``Σ_j π_j (intercept_j + coef_j·x)`` is itself linear in x, so R²
        cannot tell numbers of components apart: to choose ``n_components`` by
        cross-validation, score the held-out log-likelihood instead, e.g.
        ``GridSearchCV(model, {"n_components": [1, 2, 3]},
        scoring=lambda est, X, y: est.log_likelihood(X, y) / len(y))``, or use :meth:`bic`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        float
        """
        y_pred = self.predict(X)
        y_arr = check_y(y, y_pred.shape[0])
        sw = check_sample_weight(sample_weight, y_arr.shape[0])
        w = np.ones_like(y_arr) if sw is None else sw
        residual = float(w @ (y_arr - y_pred) ** 2)
        total = float(w @ (y_arr - np.average(y_arr, weights=w)) ** 2)
        if total == 0.0:
            return 1.0 if residual == 0.0 else 0.0
        return 1.0 - residual / total

    # -- scikit-learn protocol (scikit-learn is imported only when scikit-learn asks) --------

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "result_")

    def __sklearn_tags__(self):
        """Estimator tags for scikit-learn >= 1.6: a single-output regressor on dense 2-D
        float data without NaN (``MixtureOfRegressions`` does not inherit from
        ``BaseEstimator``, so that ``import bayes_mlr`` does not import scikit-learn)."""
        from sklearn.utils import InputTags, RegressorTags, Tags, TargetTags

        return Tags(
            estimator_type="regressor",
            target_tags=TargetTags(required=True, single_output=True, multi_output=False),
            regressor_tags=RegressorTags(),
            input_tags=InputTags(two_d_array=True, sparse=False, allow_nan=False),
        )

    # -- Bayesian layer (PyMC and ArviZ are imported only here, on first use) ---------------

    def sample_posterior(
        self,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        *,
        sampler: str = "auto",
        random_seed: Any = None,
        progressbar: bool = True,
        **kwargs: Any,
    ):
        """Sample the posterior of the same mixture with PyMC, starting every chain at the EM
        estimates and aligning every draw to the EM labelling.

        See :func:`bayes_mlr.bayes.model.sample_posterior` for the arguments.

        Returns
        -------
        xarray.DataTree
        """
        self._check_fitted()
        from bayes_mlr.bayes.posterior import sample_posterior

        return sample_posterior(
            self,
            draws=draws,
            tune=tune,
            chains=chains,
            sampler=sampler,
            random_seed=random_seed,
            progressbar=progressbar,
            **kwargs,
        )

    # -- saving and loading (JSON and netCDF, no pickle; see bayes_mlr.workflow.io) ---------

    def save(self, dir: Any) -> Any:
        """Save the estimator to the directory ``dir`` (created if needed).

        Writes ``model.json`` (constructor arguments and every fitted attribute, floats stored
        losslessly) and ``data-<hash>.nc`` (the training data, which standard errors and
        :meth:`sample_posterior` need), each atomically. No pickle: loading cannot run code.
        See :func:`bayes_mlr.workflow.io.save_model`.

        Parameters
        ----------
        dir : path-like

        Returns
        -------
        pathlib.Path
            The directory.
        """
        from bayes_mlr.workflow.io import save_model

        return save_model(self, dir)

    @classmethod
    def load(cls, dir: Any) -> MixtureOfRegressions:
        """Load an estimator saved by :meth:`save`; it equals the saved one bit for bit.

        Parameters
        ----------
        dir : path-like

        Returns
        -------
        MixtureOfRegressions

        Examples
        --------
        >>> import tempfile
        >>> import numpy as np
        >>> from bayes_mlr import MixtureOfRegressions, simulate
        >>> data = simulate(300, random_state=0)
        >>> model = MixtureOfRegressions(2, random_state=0).fit(data.X, data.y)
        >>> folder = model.save(tempfile.mkdtemp())
        >>> loaded = MixtureOfRegressions.load(folder)
        >>> bool(np.array_equal(loaded.coef_, model.coef_))
        True
        """
        from bayes_mlr.workflow.io import load_model

        return load_model(dir, cls=cls)


def _rows_of(data: Any, design: Any) -> Any:
    """The rows of ``data`` that the design kept (``na_action="drop"`` may drop some)."""
    import pandas as pd

    if is_dask_collection(design.X):
        return data
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    return frame.loc[design.X.index]


def _kept_rows(data: Any, design: Any) -> np.ndarray:
    """Positions in ``data`` of the rows that the design kept."""
    import pandas as pd

    index = data.index if hasattr(data, "index") else pd.RangeIndex(len(design.X))
    return index.get_indexer(design.X.index)
