"""The table that people read: one row per scalar parameter, as statsmodels' and flexmix's
``summary(refit())``, with Wald tests and intervals from the observed information."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["SUMMARY_COLUMNS", "SummaryTable", "summary_table"]

#: The columns of :meth:`bayes_mlr.MixtureOfRegressions.summary`, in order.
SUMMARY_COLUMNS = (
    "parameter",
    "component",
    "feature",
    "estimate",
    "std_error",
    "z",
    "p_value",
    "ci_lower",
    "ci_upper",
)


class SummaryTable(pd.DataFrame):
    """A :class:`pandas.DataFrame` of parameter estimates that prints with a header.

    The header (``header``, a dict) gives the fit: observations, components, log-likelihood,
    BIC, AIC, convergence and any flags; ``str()`` prints it above the table.
    """

    _metadata: ClassVar[list[str]] = ["header"]

    @property
    def _constructor(self):
        return SummaryTable

    def __str__(self) -> str:
        header = getattr(self, "header", None) or {}
        kinds = {"poisson": "Poisson", "binomial": "binomial (logit)", "student_t": "Student-t"}
        name = kinds.get(str(header.get("family", "")).split(" ")[0], "linear")
        lines = [f"Mixture of {name} regressions (soft EM, maximum likelihood)"]
        lines += [f"  {key}: {value}" for key, value in header.items()]
        body = pd.DataFrame(self).to_string(
            index=False,
            na_rep="",
            formatters={
                "estimate": "{:.6g}".format,
                "std_error": "{:.4g}".format,
                "z": "{:.3f}".format,
                "p_value": "{:.3g}".format,
                "ci_lower": "{:.6g}".format,
                "ci_upper": "{:.6g}".format,
            },
        )
        notes = [
            "Wald z = estimate / std_error, two-sided normal p-value, 95% interval "
            "estimate ± 1.96 std_error (for weights and sigma it can leave their range)."
        ]
        return "\n".join([*lines, "", body, "", *notes])

    def __repr__(self) -> str:
        return str(self)


def summary_table(model: Any, *, ci_prob: float = 0.95) -> SummaryTable:
    """Build the summary of a fitted :class:`~bayes_mlr.MixtureOfRegressions`.

    Parameters
    ----------
    model : MixtureOfRegressions
        A fitted estimator.
    ci_prob : float, default=0.95
        Coverage of the Wald intervals.

    Returns
    -------
    SummaryTable
        One row per scalar parameter: ``parameter`` (weights, intercept, coef, sigma, df),
        ``component`` (int; empty for a shared sigma), ``feature`` (the feature name for coef
        rows, empty otherwise), ``estimate``, ``std_error``, ``z`` (estimate / std_error),
        ``p_value`` (two-sided, normal), ``ci_lower``, ``ci_upper``. A fixed sigma is no
        parameter and has no row; parameters in a singular direction of the information have
        NaN standard errors.
    """
    if not 0.0 < ci_prob < 1.0:
        raise ValueError(f"ci_prob must lie in (0, 1); got {ci_prob!r}.")
    se = model.standard_errors_
    K = model.n_components_
    names = list(model.feature_names)
    rows: list[tuple[str, Any, str, float, float]] = []
    for j in range(K):
        rows.append(("weights", j, "", model.weights_[j], se["weights"][j]))
    res = model.result_
    shared = np.asarray(res.shared, dtype=bool)
    # A shared coefficient is one parameter: one row, without a component.
    if model.fit_intercept and res.shared_intercept:
        rows.append(("intercept", None, "", model.intercept_[0], se["intercept"][0]))
    elif model.fit_intercept:
        rows += [("intercept", j, "", model.intercept_[j], se["intercept"][j]) for j in range(K)]
    rows += [
        ("coef", None, name, model.coef_[0, k], se["coef"][0, k])
        for k, name in enumerate(names)
        if shared[k]
    ]
    for j in range(K):
        rows += [
            ("coef", j, name, model.coef_[j, k], se["coef"][j, k])
            for k, name in enumerate(names)
            if not shared[k]
        ]
    family = res.family
    if family.has_sigma and model.variance == "component":
        rows += [("sigma", j, "", model.sigma_[j], se["sigma"][j]) for j in range(K)]
    elif family.has_sigma and model.variance == "shared":
        rows.append(("sigma", None, "", model.sigma_[0], se["sigma"][0]))
    if res.df is not None and family.df is None:  # estimated degrees of freedom
        rows += [("df", j, "", model.df_[j], se["df"][j]) for j in range(K)]
    if res.concomitant_coef is not None:  # component 0 is the reference: no rows
        w_names = [str(n) for n in model.concomitant_names_in_]
        for j in range(1, K):
            rows.append(
                (
                    "concomitant_intercept",
                    j,
                    "",
                    model.concomitant_intercept_[j],
                    se["concomitant_intercept"][j],
                )
            )
            rows += [
                (
                    "concomitant_coef",
                    j,
                    name,
                    model.concomitant_coef_[j, k],
                    se["concomitant_coef"][j, k],
                )
                for k, name in enumerate(w_names)
            ]
    frame = pd.DataFrame(
        rows, columns=["parameter", "component", "feature", "estimate", "std_error"]
    )
    frame["component"] = frame["component"].astype("Int64")
    est, err = frame["estimate"].to_numpy(float), frame["std_error"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(err > 0, est / err, np.nan)
    q = stats.norm.ppf(0.5 + ci_prob / 2)
    frame["z"] = z
    frame["p_value"] = 2.0 * stats.norm.sf(np.abs(z))
    frame["ci_lower"] = est - q * err
    frame["ci_upper"] = est + q * err
    table = SummaryTable(frame[list(SUMMARY_COLUMNS)])
    X, y, sw = model._fit_X, model._fit_y, model._fit_sample_weight
    structure = model._training_structure()
    flags = [
        name.upper()
        for name in ("spurious", "degenerate", "separated")
        if getattr(res, name, False)
    ]
    unidentified = table.loc[table["std_error"].isna(), ["parameter", "component", "feature"]]
    if len(unidentified):
        flags.append(
            f"{len(unidentified)} parameter(s) without a standard error (singular information)"
        )
    table.header = {
        "observations": f"{res.n_obs:g}",
        "components": f"{K}"
        + (f" ({res.n_removed} removed by min_weight)" if res.n_removed else ""),
        "family": family.name,
        "variance": model.variance if family.has_sigma else "none (a function of the mean)",
        "log-likelihood": f"{model.log_likelihood_:.6f}",
        "BIC": f"{model.bic(X, y, sample_weight=sw, **structure):.4f}",
        "AIC": f"{model.aic(X, y, sample_weight=sw, **structure):.4f}",
        "converged": f"{res.converged} after {res.n_iter} iterations ({res.n_runs} runs)",
        "optima reached": _optima_line(res),
        "flags": "; ".join(flags) if flags else "none",
    }
    if family.name == "student_t":
        table.header["sigma"] = "scale of the t errors (maximum likelihood)"
    elif family.has_sigma:
        table.header["sigma"] = (
            "maximum likelihood (as mixtools; flexmix corrects it for degrees of freedom)"
        )
    if res.df is not None and family.df is not None:
        table.header["df"] = f"fixed at {family.df:g}"
    if res.n_groups is not None:
        table.header["groups"] = f"{res.n_groups} (all rows of a group share one component)"
    if res.concomitant_coef is not None:
        table.header["mixing"] = (
            f"multinomial logit in {', '.join(map(str, model.concomitant_names_in_))}; "
            "component 0 is the reference; weights are the mean prior over the rows"
        )
    if shared.any() or res.shared_intercept:
        table.header["shared"] = ", ".join(
            (["intercept"] if res.shared_intercept else [])
            + [n for n, s_ in zip(names, shared, strict=True) if s_]
        )
    return table


def _optima_line(result: Any) -> str:
    """The distinct optima of the restarts, e.g. ``"2: 145.42 (3 runs), 141.20 (7 runs)"``."""
    optima = list(getattr(result, "optima", None) or ())
    if not optima:
        return "not recorded"
    parts = []
    for o in optima[:5]:
        flags = ["degenerate"] * bool(o.degenerate) + ["spurious"] * bool(
            np.any(o.spurious_components)
        )
        runs = f"{o.n_runs} run{'s' if o.n_runs != 1 else ''}"
        parts.append(f"{o.log_likelihood:.2f} ({', '.join([runs, *flags])})")
    more = f", {len(optima) - 5} more" if len(optima) > 5 else ""
    return f"{len(optima)}: " + ", ".join(parts) + more
