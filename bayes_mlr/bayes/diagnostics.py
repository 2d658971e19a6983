"""Checking and using a posterior from :func:`bayes_mlr.bayes.model.sample_posterior`.

* :func:`diagnose`: convergence checks (R-hat, bulk/tail ESS, divergences, BFMI, relabelling);
* :func:`compare_em_posterior`: EM estimates and standard errors next to posterior summaries;
* :func:`posterior_membership`: membership probabilities averaged over the posterior;
* :func:`compare_n_components`: PSIS-LOO next to EM's BIC / AIC / ICL for several K.

ArviZ (``arviz_stats``) is imported inside the functions, so importing this module is light.
Every table is built here from ``fmt="xarray"`` results with our own row labels (ArviZ 1.3's
wide summary can mislabel rows, see ``shared/FACTS.md``), and holds numbers, not strings.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from bayes_mlr.bayes.modes import MODE_COLUMNS

__all__ = [
    "Diagnosis",
    "compare_em_posterior",
    "compare_n_components",
    "diagnose",
    "invariant_table",
    "mode_summary",
    "posterior_membership",
    "summarise_modes",
    "summary_table",
]

_PARAMS = (
    "weights",
    "intercept",
    "coef",
    "sigma",
    "df",
    "concomitant_intercept",
    "concomitant_coef",
)
#: The concomitant coefficients, whose component 0 is the reference (fixed at zero, no row).
_CONCOMITANT = ("concomitant_intercept", "concomitant_coef")


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _group(posterior: Any, name: str) -> Any:
    """The dataset of group ``name`` of a DataTree, or None when absent."""
    try:
        node = posterior[name]
    except KeyError:
        return None
    return node.to_dataset() if hasattr(node, "to_dataset") else node


def _require_posterior(posterior: Any) -> Any:
    post = _group(posterior, "posterior")
    if post is None:
        raise ValueError("expected a DataTree with a 'posterior' group (from sample_posterior)")
    return post


def _shared_structure(post: Any) -> tuple[set[str], bool]:
    """The features whose coefficient all components share, and whether the intercept is
    shared (a structured posterior: variables ``coef_shared``, ``intercept_shared``)."""
    shared = set()
    if "coef_shared" in post.data_vars and "feature_shared" in post.coords:
        shared = {str(f) for f in post["feature_shared"].values}
    return shared, "intercept_shared" in post.data_vars


def _scalars(
    ds: Any, var_names: Sequence[str], post: Any = None
) -> Iterator[tuple[str, str, Any, Any, dict]]:
    """Yield ``(label, parameter, component, feature, selection)`` for every scalar parameter.

    Labels follow ArviZ: ``"weights[0]"``, ``"coef[1, x0]"``, ``"sigma"`` for a scalar. With
    ``post`` a structured posterior, a coefficient all components share is one row
    (``"coef[shared, w]"``, ``"intercept[shared]"``, component None, selected at component 0),
    and the reference row 0 of ``concomitant_intercept`` / ``concomitant_coef`` (fixed at zero)
    has none.
    """
    shared, shared_intercept = _shared_structure(post if post is not None else ds)
    for name in var_names:
        da = ds[name]
        dims = [d for d in da.dims if d not in ("chain", "draw")]
        if not dims:
            yield name, name, None, None, {}
            continue
        index = np.ndindex(*(da.sizes[d] for d in dims))
        for idx in index:
            sel = {d: i for d, i in zip(dims, idx, strict=True)}
            coords = [da[d].values[i] for d, i in zip(dims, idx, strict=True)]
            label = f"{name}[{', '.join(str(c) for c in coords)}]"
            component = (
                int(da["component"].values[sel["component"]]) if "component" in sel else None
            )
            feature = str(da["feature"].values[sel["feature"]]) if "feature" in sel else None
            if name in _CONCOMITANT and sel.get("component") == 0:
                continue  # the reference: zero by definition
            if (name == "coef" and feature in shared) or (name == "intercept" and shared_intercept):
                if sel["component"] != 0:
                    continue
                component = None
                label = f"{name}[shared, {feature}]" if feature is not None else f"{name}[shared]"
            yield label, name, component, feature, sel


def _model_vars(post: Any) -> list[str]:
    return [v for v in _PARAMS if v in post.data_vars]


# --------------------------------------------------------------------------------------------
# diagnose
# --------------------------------------------------------------------------------------------


@dataclass
class Diagnosis:
    """Result of :func:`diagnose`; ``bool(diagnosis)`` is ``diagnosis.ok``.

    Attributes
    ----------
    ok : bool
        True when no check failed.
    table : pandas.DataFrame
        One row per scalar parameter (index like ``"coef[0, x0]"``), numeric columns ``mean``,
        ``sd``, ``hdi_low``, ``hdi_high``, ``ess_bulk``, ``ess_tail``, ``r_hat``,
        ``mcse_mean``, ``mcse_sd``, plus ``parameter``, ``component``, ``feature``.
    problems : list of str
        One readable sentence per failed check.
    n_divergences : int or None
        Divergent transitions after tuning (None without sampler statistics).
    bfmi : ndarray of shape (chain,) or None
    relabelled_fraction : float or None
        Fraction of draws relabelled to the EM labelling by ``sample_posterior``.
    thresholds : dict
        The thresholds used.
    invariant : pandas.DataFrame
        The label-invariant checks, made before any relabelling: R-hat, bulk and tail ESS of
        the log density (``log_density``) and the total log-likelihood (``log_likelihood``) of
        each draw; index ``lp``, ``log_likelihood``. Empty when the posterior has neither.
    modes : pandas.DataFrame or None
        The posterior modes the chains sit in (group ``modes`` of ``sample_posterior``), one
        row each: ``chains``, ``n_chains``, ``mean_lp``, ``mean_log_likelihood``, ``share``
        (estimated share of the posterior mass), ``nearest_optimum`` and
        ``optimum_log_likelihood`` (the nearest EM optimum). None without that group.
    relabel_agreement : float or None
        Share of draws that the EM alignment and Stephens' relabelling label alike.
    ambiguous_share : float or None
        Share of draws whose EM assignment is ambiguous (a small cost gap to the second best).
    identified : bool
        False when the components are not identified (the relabelling methods disagree, or
        many draws are relabelled or ambiguous): the per-component rows of ``table`` (column
        ``identified``) then describe no component and only label-invariant quantities
        (predictions, :func:`bayes_mlr.posterior_predictive`, the modes) are meaningful.
    """

    ok: bool
    table: pd.DataFrame
    problems: list[str]
    n_divergences: int | None = None
    bfmi: np.ndarray | None = None
    relabelled_fraction: float | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    invariant: pd.DataFrame = field(default_factory=pd.DataFrame)
    modes: pd.DataFrame | None = None
    relabel_agreement: float | None = None
    ambiguous_share: float | None = None
    identified: bool = True

    @property
    def n_modes(self) -> int:
        """How many posterior modes the chains sit in (1 without a ``modes`` group)."""
        return 1 if self.modes is None else len(self.modes)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        t = self.thresholds
        lines = [f"Posterior diagnosis: {'OK' if self.ok else 'PROBLEMS FOUND'}"]
        if len(self.invariant):
            inv = self.invariant
            lines.append(
                "  label-invariant: "
                + ", ".join(
                    f"{name} R-hat {row.r_hat:.4f}, bulk ESS {row.ess_bulk:.0f}"
                    for name, row in inv.iterrows()
                )
            )
        if self.modes is not None:
            lines.append(f"  posterior modes the chains sit in: {len(self.modes)}")
        if self.relabel_agreement is not None:
            lines.append(
                f"  relabelling: EM alignment and Stephens agree on "
                f"{self.relabel_agreement:.1%} of draws (limit {t['agreement_min']:.0%})"
                + ("" if self.identified else "; components NOT identified")
            )
        if len(self.table):
            lines.append(
                f"  max R-hat {self.table['r_hat'].max():.4f} (limit {t['rhat_max']}), "
                f"min bulk ESS {self.table['ess_bulk'].min():.0f}, "
                f"min tail ESS {self.table['ess_tail'].min():.0f} "
                f"(limit {t['ess_bulk_min']:.0f} / {t['ess_tail_min']:.0f})"
            )
        if self.n_divergences is not None:
            lines.append(f"  divergences {self.n_divergences} (limit {t['max_divergences']})")
        if self.bfmi is not None:
            lines.append(
                f"  BFMI per chain {np.array2string(self.bfmi, precision=2)} "
                f"(limit {t['bfmi_min']})"
            )
        if self.relabelled_fraction is not None:
            lines.append(
                f"  relabelled draws {self.relabelled_fraction:.2%} "
                f"(limit {t['relabelled_max']:.0%})"
            )
        lines.extend(f"  - {p}" for p in self.problems)
        columns = ["mean", "sd", "hdi_low", "hdi_high", "ess_bulk", "ess_tail", "r_hat"]
        if len(self.table):
            lines.append("")
            lines.append(
                self.table[columns].to_string(
                    float_format=lambda v: f"{v:.4g}", formatters={"r_hat": "{:.3f}".format}
                )
            )
        return "\n".join(lines)


def summary_table(
    posterior: Any, var_names: Sequence[str] | None = None, ci_prob: float = 0.94
) -> pd.DataFrame:
    """Numeric ArviZ summary with our row labels (``component`` first, no string formatting).

    Parameters
    ----------
    posterior : xarray.DataTree
    var_names : sequence of str, optional
        Defaults to the model parameters present (``weights``, ``intercept``, ``coef``,
        ``sigma``, ``concomitant_intercept``, ``concomitant_coef``). A coefficient shared by all
        components has one row (``"coef[shared, w]"``); the reference row 0 of the
        concomitant coefficients, fixed at zero, has none.
    ci_prob : float
        Probability of the highest-density interval.

    Returns
    -------
    pandas.DataFrame
        See :class:`Diagnosis` ``table``.
    """
    import arviz_stats as azs

    post = _require_posterior(posterior)
    names = list(var_names) if var_names is not None else _model_vars(post)
    ds = post[names]
    # the reference row of the concomitant coefficients is constant (no R-hat, no ESS): those
    # variables are summarised without it
    parts = {
        "main": [n for n in names if n not in _CONCOMITANT],
        "concomitant": [n for n in names if n in _CONCOMITANT],
    }
    summ = {}
    for part, members in parts.items():
        if members:
            data = ds[members]
            if part == "concomitant":
                data = data.isel(component=slice(1, None))
            summ[part] = azs.summary(
                data, kind="all", fmt="xarray", ci_kind="hdi", ci_prob=ci_prob, round_to="none"
            )
    first = next(iter(summ.values()))
    stats = [str(s) for s in first["summary"].values]
    rename = {stats[2]: "hdi_low", stats[3]: "hdi_high"}
    rows, index = [], []
    for label, name, component, feature, sel in _scalars(ds, names, post):
        if name in _CONCOMITANT:
            values = summ["concomitant"][name].isel({**sel, "component": sel["component"] - 1})
        else:
            values = summ["main"][name].isel(sel)
        row = {"parameter": name, "component": component, "feature": feature}
        for s, v in zip(stats, np.atleast_1d(values.values), strict=True):
            row[rename.get(s, s)] = float(v)
        rows.append(row)
        index.append(label)
    table = pd.DataFrame(rows, index=index)
    if len(table):
        table["component"] = table["component"].astype("Int64")
    return table


def diagnose(
    posterior: Any,
    *,
    rhat_max: float = 1.01,
    ess_bulk_min: float = 400,
    ess_tail_min: float = 400,
    max_divergences: int = 0,
    bfmi_min: float = 0.3,
    relabelled_max: float = 0.05,
    agreement_min: float = 0.95,
    var_names: Sequence[str] | None = None,
) -> Diagnosis:
    """Check a posterior: modes, R-hat, bulk and tail ESS, divergences, BFMI and relabelling.

    Label-invariant checks come first: R-hat of the log density and of the total
    log-likelihood of each draw (:func:`invariant_table`), which no relabelling affects, and
    the posterior modes the chains sit in (group ``modes`` of
    :func:`bayes_mlr.bayes.model.sample_posterior`): several modes fail the check, and the problem
    names each with its chains, mean lp, nearest EM optimum and estimated share. The
    per-parameter checks on the aligned draws follow.

    Parameters
    ----------
    posterior : xarray.DataTree
        From :func:`bayes_mlr.bayes.model.sample_posterior` (or any DataTree with a ``posterior``
        group; sampler checks are skipped without ``sample_stats``).
    rhat_max : float
        Largest acceptable rank-normalised split R-hat.
    ess_bulk_min, ess_tail_min : float
        Smallest acceptable bulk / tail effective sample size (whole run, all chains).
    max_divergences : int
        Largest acceptable number of divergent transitions after tuning.
    bfmi_min : float
        Smallest acceptable energy BFMI of any chain.
    relabelled_max : float
        Largest acceptable fraction of draws that had to be relabelled to the EM labelling
        (a large one means the labels are poorly identified: per-component summaries are then
        doubtful even if the aligned chains mix).
    agreement_min : float
        Smallest acceptable share of draws that the EM alignment and Stephens' relabelling
        label alike; below it (or above ``relabelled_max``, or with more than
        ``relabelled_max`` of the draws ambiguous) the components are not identified.
    var_names : sequence of str, optional
        Variables to check; defaults to the model parameters present.

    Returns
    -------
    Diagnosis
        ``ok`` is False as soon as one check fails; ``problems`` says which and why.

    Examples
    --------
    >>> import bayes_mlr
    >>> diagnosis = bayes_mlr.diagnose(posterior)  # doctest: +SKIP
    >>> diagnosis.ok, diagnosis.n_modes, diagnosis.identified  # doctest: +SKIP
    (True, 1, True)
    >>> print(diagnosis)  # the checks, the problems, a per-parameter table  # doctest: +SKIP
    """
    import arviz_stats as azs

    thresholds = {
        "rhat_max": rhat_max,
        "ess_bulk_min": ess_bulk_min,
        "ess_tail_min": ess_tail_min,
        "max_divergences": max_divergences,
        "bfmi_min": bfmi_min,
        "relabelled_max": relabelled_max,
        "agreement_min": agreement_min,
    }
    table = summary_table(posterior, var_names)
    problems = []
    approximation = _require_posterior(posterior).attrs.get("approximation")
    invariant = pd.DataFrame()
    if not approximation:
        # first, before any relabelling matters: quantities no labelling changes
        invariant = invariant_table(posterior)
        bad = invariant[~(invariant["r_hat"] <= rhat_max)] if len(invariant) else invariant
        if len(bad):
            worst = ", ".join(f"{name} {row.r_hat:.3f}" for name, row in bad.iterrows())
            problems.append(
                f"the chains disagree on label-invariant quantities (R-hat of {worst}, limit "
                f"{rhat_max}): they sit in different modes or have not mixed, whatever the "
                "relabelling"
            )
    modes = mode_summary(posterior)
    if modes is not None and len(modes) > 1:
        problems.append(_modes_problem(modes))
    if approximation:
        # A variational fit (bayes_mlr.approximate_posterior) is one independent-draw "chain":
        # R-hat, ESS and BFMI say nothing about how well it matches the true posterior.
        problems.append(
            f"this is a {approximation}: MCMC diagnostics do not apply; validate it against "
            "sample_posterior on a subsample before trusting its intervals"
        )
    if len(table) and not approximation:
        bad = table[~(table["r_hat"] <= rhat_max)]
        if len(bad):
            problems.append(
                f"R-hat above {rhat_max} for {len(bad)} of {len(table)} parameters "
                f"(worst {bad['r_hat'].max():.3f} at {bad['r_hat'].idxmax()}): chains disagree "
                "(label switching or poor mixing)"
            )
        for column, limit, what in (
            ("ess_bulk", ess_bulk_min, "bulk"),
            ("ess_tail", ess_tail_min, "tail"),
        ):
            bad = table[~(table[column] >= limit)]
            if len(bad):
                problems.append(
                    f"{what} ESS below {limit:.0f} for {len(bad)} parameters (lowest "
                    f"{bad[column].min():.0f} at {bad[column].idxmin()}): draw more"
                )
    stats = _group(posterior, "sample_stats")
    n_div = bfmi = None
    if stats is not None and "diverging" in stats:
        n_div = int(stats["diverging"].sum())
        if n_div > max_divergences:
            problems.append(
                f"{n_div} divergent transitions (allowed {max_divergences}): the sampler "
                "missed part of the posterior; raise target_accept or check the model"
            )
    if stats is not None and "energy" in stats:
        bfmi = np.asarray(azs.bfmi(stats["energy"]), dtype=float).reshape(-1)
        low = np.flatnonzero(~(bfmi >= bfmi_min))
        if low.size:
            problems.append(
                f"BFMI below {bfmi_min} in chain(s) {low.tolist()} (lowest {bfmi.min():.2f}): "
                "poor exploration of the energy distribution"
            )
    post = _require_posterior(posterior)
    fraction = post.attrs.get("relabelled_fraction")
    agreement = post.attrs.get("relabel_agreement")
    ambiguous = post.attrs.get("relabel_ambiguous_share")
    agreement = None if agreement is None else float(agreement)
    ambiguous = None if ambiguous is None else float(ambiguous)
    if fraction is not None:
        fraction = float(fraction)
        if fraction > relabelled_max:
            problems.append(
                f"{fraction:.1%} of draws were relabelled (allowed {relabelled_max:.0%}): "
                "the components are not well identified"
            )
    identified = not (
        (fraction is not None and fraction > relabelled_max)
        or (agreement is not None and agreement < agreement_min)
        or (ambiguous is not None and ambiguous > relabelled_max)
    )
    if agreement is not None and agreement < agreement_min:
        problems.append(
            f"the EM alignment and Stephens' relabelling agree on only {agreement:.1%} of draws "
            f"(needed {agreement_min:.0%})"
        )
    if ambiguous is not None and ambiguous > relabelled_max:
        problems.append(
            f"{ambiguous:.1%} of draws have an ambiguous labelling (a second assignment "
            "nearly as close to EM)"
        )
    if not identified:
        problems.append(
            "the components are not identified (overlapping components: the posterior holds "
            "every labelling, the 'bowtie' of Betancourt): the per-component summaries "
            "(table column 'identified') describe no component; use label-invariant "
            "quantities: predictions, posterior_predictive, the modes"
        )
    if len(table):
        table["identified"] = table["component"].isna() | identified
    return Diagnosis(
        ok=not problems,
        table=table,
        problems=problems,
        n_divergences=n_div,
        bfmi=bfmi,
        relabelled_fraction=fraction,
        thresholds=thresholds,
        invariant=invariant,
        modes=modes,
        relabel_agreement=agreement,
        ambiguous_share=ambiguous,
        identified=identified,
    )


def _modes_problem(modes: pd.DataFrame) -> str:
    parts = []
    for m, row in modes.iterrows():
        text = (
            f"mode {m} (chains {', '.join(map(str, row['chains']))}; mean lp {row['mean_lp']:.2f}"
        )
        if row["nearest_optimum"] is not None and row["nearest_optimum"] >= 0:
            text += (
                f"; nearest EM optimum {int(row['nearest_optimum'])}, log-likelihood "
                f"{row['optimum_log_likelihood']:.2f}"
            )
        if np.isfinite(row["share"]):
            text += f"; estimated share {row['share']:.2f}"
        parts.append(text + ")")
    return (
        f"the chains sit in {len(modes)} posterior modes that they do not move between: "
        + ", ".join(parts)
        + ". No single mode summarises the posterior: report the modes with their shares "
        "(summarise_modes), and read per-parameter summaries per mode"
    )


#: ``invariant_table`` checks the posterior predictive mean at this many observations at most
#: (evenly spaced through the data).
PREDICTIVE_CHECK_ROWS = 200


def invariant_table(posterior: Any) -> pd.DataFrame:
    """R-hat and ESS of the label-invariant quantities of the draws.

    Parameters
    ----------
    posterior : xarray.DataTree
        With ``sample_stats`` variables ``log_density`` and ``log_likelihood`` (per draw), as
        :func:`bayes_mlr.bayes.model.sample_posterior` writes them, and ``constant_data`` ``X``.

    Returns
    -------
    pandas.DataFrame
        Index ``lp`` (the log density), ``log_likelihood`` and ``predictive_mean`` (the
        posterior predictive mean ``sum_j weights_j (intercept_j + coef_j . x_i)`` at the
        observed ``x_i``, the worst of up to ``PREDICTIVE_CHECK_ROWS`` rows: its largest R-hat
        and smallest ESS; ``mean``/``sd`` NaN); columns ``mean``, ``sd``, ``ess_bulk``,
        ``ess_tail``, ``r_hat``. Empty when none is available.
    """
    import arviz_stats as azs
    import xarray as xr

    stats = _group(posterior, "sample_stats")
    names = {"lp": "log_density", "log_likelihood": "log_likelihood"}
    present = {k: v for k, v in names.items() if stats is not None and v in stats}
    data = {k: stats[v] for k, v in present.items()}
    predictive = _predictive_mean_at_data(posterior)
    if predictive is not None:
        data["predictive_mean"] = predictive
    if not data:
        return pd.DataFrame(columns=["mean", "sd", "ess_bulk", "ess_tail", "r_hat"])
    summ = azs.summary(xr.Dataset(data), kind="all", fmt="xarray", round_to="none")
    labels = [str(x) for x in summ["summary"].values]
    rows = {}
    for name in data:
        values = summ[name]
        if name == "predictive_mean":
            get = {lab: values.sel(summary=lab).values for lab in labels}
            rows[name] = {
                "mean": np.nan,
                "sd": np.nan,
                "ess_bulk": float(np.min(get["ess_bulk"])),
                "ess_tail": float(np.min(get["ess_tail"])),
                "r_hat": float(np.max(get["r_hat"])),
            }
            continue
        got = dict(zip(labels, np.atleast_1d(values.values), strict=True))
        rows[name] = {k: float(got[k]) for k in ("mean", "sd", "ess_bulk", "ess_tail", "r_hat")}
    return pd.DataFrame.from_dict(rows, orient="index")


def _predictive_mean_at_data(posterior: Any) -> Any:
    """``(chain, draw, obs)`` mixture means at (a subset of) the observed x, or None.

    On the response scale of the posterior's family (a rate, a number of successes), with the
    training rows' offset and trials from ``constant_data``."""
    post = _group(posterior, "posterior")
    const = _group(posterior, "constant_data")
    if post is None or const is None or "X" not in const or "coef" not in post:
        return None
    import xarray as xr

    from bayes_mlr.bayes.predictive import mixture_means, parameter_draws

    X = np.asarray(const["X"].values, dtype=float)
    n = min(PREDICTIVE_CHECK_ROWS, X.shape[0])
    rows = np.unique(np.linspace(0, X.shape[0] - 1, n).astype(int))
    family, extra = _family(posterior), None
    if family.name != "gaussian":
        obs = _group(posterior, "observed_data")
        if obs is None or "y" not in obs:
            return None
        extra = _family_rows_of(posterior, obs["y"].to_numpy())[rows]
    _, mean = mixture_means(parameter_draws(None, posterior), X[rows], family, extra)
    return xr.DataArray(mean, dims=("chain", "draw", "obs"))


def _family_rows_of(posterior: Any, y: np.ndarray) -> np.ndarray:
    """The family's row columns of the training rows (offset and trials from
    ``constant_data``)."""
    from bayes_mlr.bayes.families import row_columns

    return row_columns(_family(posterior), np.asarray(y, dtype=float), *_training_rows(posterior))


def mode_summary(posterior: Any) -> pd.DataFrame | None:
    """The modes recorded by :func:`bayes_mlr.bayes.model.sample_posterior` (group ``modes``).

    Returns
    -------
    pandas.DataFrame or None
        One row per mode (index ``mode``, largest share first): ``chains`` (tuple),
        ``n_chains``, ``mean_lp``, ``mean_log_likelihood``, ``log_mass``, ``share``,
        ``nearest_optimum`` (index into the EM optima, or -1), ``optimum_log_likelihood``,
        ``optimum_distance``. None when the posterior has no ``modes`` group.
    """
    ds = _group(posterior, "modes")
    if ds is None:
        return None
    chain_mode = np.asarray(ds["chain_mode"].values)
    table = pd.DataFrame(
        {
            "chains": [
                tuple(int(c) for c in np.flatnonzero(chain_mode == m)) for m in ds["mode"].values
            ],
            **{col: ds[col].values for col in MODE_COLUMNS},
        },
        index=pd.Index(ds["mode"].values, name="mode"),
    )
    table["n_chains"] = table["n_chains"].astype(int)
    return table


def summarise_modes(
    posterior: Any, *, ci_prob: float = 0.94, var_names: Sequence[str] | None = None
) -> dict[int, pd.DataFrame]:
    """Per-parameter summaries of each posterior mode, from the chains that sit in it.

    Parameters
    ----------
    posterior : xarray.DataTree
        From :func:`bayes_mlr.bayes.model.sample_posterior` (with its ``modes`` group).
    ci_prob : float
    var_names : sequence of str, optional

    Returns
    -------
    dict of int to pandas.DataFrame
        By mode (0 = the largest estimated share): :func:`summary_table` of its chains. A
        mode of one chain has no R-hat (NaN).

    Raises
    ------
    ValueError
        The posterior has no ``modes`` group.
    """
    import xarray as xr

    ds = _group(posterior, "modes")
    if ds is None:
        raise ValueError("the posterior has no 'modes' group: sample it with sample_posterior")
    post = _require_posterior(posterior)
    chain_mode = np.asarray(ds["chain_mode"].values)
    out = {}
    for m in ds["mode"].values:
        chains = np.flatnonzero(chain_mode == m)
        tree = xr.DataTree.from_dict({"posterior": post.isel(chain=chains)})
        out[int(m)] = summary_table(tree, var_names, ci_prob=ci_prob)
    return out


# --------------------------------------------------------------------------------------------
# compare_em_posterior
# --------------------------------------------------------------------------------------------


def _em_estimates(model: Any, posterior: Any) -> dict[str, np.ndarray]:
    """EM values and standard errors: from the estimator, else from the ``em`` group."""
    if model is not None:
        em = {
            "weights": np.asarray(model.weights_, dtype=float),
            "intercept": np.asarray(model.intercept_, dtype=float),
            "coef": np.asarray(model.coef_, dtype=float),
        }
        for name in ("sigma", "df", *_CONCOMITANT):  # where the family (and model) has them
            if getattr(model, f"{name}_", None) is not None:
                em[name] = np.asarray(getattr(model, f"{name}_"), dtype=float)
        se = {k: np.asarray(v, dtype=float) for k, v in model.standard_errors_.items()}
        for name in list(em):
            em[f"{name}_se"] = np.broadcast_to(se.get(name, np.nan), em[name].shape)
        return em
    group = _group(posterior, "em")
    if group is None:
        raise ValueError("pass the fitted estimator, or a posterior with an 'em' group")
    return {name: group[name].to_numpy() for name in group.data_vars}


def compare_em_posterior(model: Any, posterior: Any, *, ci_prob: float = 0.94) -> pd.DataFrame:
    """EM estimates and standard errors next to posterior summaries, one row per parameter.

    Rows: ``weights[k]`` (none when K = 1), ``intercept[k]`` (none without intercept),
    ``coef[k, feature]``, and ``sigma[k]`` for ``variance="component"``; a single row
    ``sigma`` for ``"shared"`` (one parameter); none for ``"fixed"`` nor for Poisson and
    binomial components (which have no sigma); ``df[k]`` for Student-t components with
    estimated degrees of freedom (none for ``StudentT(df=...)``). Structured models: a
    coefficient shared by all components is one row (``coef[shared, feature]``,
    ``intercept[shared]``, component missing); with concomitant variables the rows
    ``concomitant_intercept[k]`` and ``concomitant_coef[k, variable]`` for ``k >= 1`` (component
    0 is the reference, zero in both), and ``weights`` are the mean prior weights over the
    training rows (as EM's ``weights_``).

    Parameters
    ----------
    model : MixtureOfRegressions or None
        The fitted estimator; None takes the EM values from the posterior's ``em`` group.
    posterior : xarray.DataTree
        From :func:`bayes_mlr.bayes.model.sample_posterior` (aligned to the EM labelling).
    ci_prob : float, default 0.94
        Probability of the highest-density interval (ArviZ's customary 94%).

    Returns
    -------
    pandas.DataFrame
        Index like ``"coef[0, x0]"``; columns ``parameter``, ``component`` (Int64, missing
        for a shared sigma), ``feature`` (None except for ``coef``), and numeric ``em``,
        ``em_se``, ``mean``, ``sd``, ``hdi_low``, ``hdi_high``, ``em_in_hdi`` (bool) and
        ``shift_sd = (mean - em) / sd``: how many posterior sds the posterior mean lies from
        EM (not a Wald z, which is estimate / SE: see
        :meth:`~bayes_mlr.MixtureOfRegressions.summary`).
    """
    import arviz_stats as azs

    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be in (0, 1), got {ci_prob}")
    post = _require_posterior(posterior)
    names = _model_vars(post)
    ds = post[names]
    em = _em_estimates(model, posterior)
    mean = ds.mean(dim=("chain", "draw"))
    sd = ds.std(dim=("chain", "draw"), ddof=1)
    hdi = azs.hdi(ds, prob=ci_prob)
    missing = [n for n in names if n not in em]
    if missing:
        raise ValueError(
            f"the EM estimates have no {missing[0]!r}: pass the estimator the posterior was "
            "sampled for"
        )
    rows, index = [], []
    for label, name, component, feature, sel in _scalars(ds, names, post):
        value = em[name]
        se = em[f"{name}_se"]
        if "component" in sel:
            value, se = value[sel["component"]], se[sel["component"]]
        else:  # shared sigma: one parameter, equal entries in EM
            value, se = value.reshape(-1)[0], se.reshape(-1)[0]
        for dim in ("feature", "concomitant"):
            if dim in sel:
                value, se = value[sel[dim]], se[sel[dim]]
        bounds = hdi[name].isel(sel).to_numpy()
        m, s = float(mean[name].isel(sel)), float(sd[name].isel(sel))
        lo, hi = float(bounds[0]), float(bounds[1])
        rows.append(
            {
                "parameter": name,
                "component": component,
                "feature": feature,
                "em": float(value),
                "em_se": float(se),
                "mean": m,
                "sd": s,
                "hdi_low": lo,
                "hdi_high": hi,
                "em_in_hdi": bool(lo <= value <= hi),
                "shift_sd": (m - float(value)) / s if s > 0 else np.nan,
            }
        )
        index.append(label)
    table = pd.DataFrame(rows, index=index)
    table["component"] = table["component"].astype("Int64")
    return table


# --------------------------------------------------------------------------------------------
# Posterior draws as arrays, membership
# --------------------------------------------------------------------------------------------


def _draw_arrays(posterior: Any) -> dict[str, np.ndarray]:
    """Stacked draws ``(S, K)`` / ``(S, K, p)`` of every parameter, filling the fixed ones.

    Weights are 1 for K = 1, the intercept 0 without one, a shared sigma is repeated per
    component and a fixed sigma comes from ``constant_data`` (as do fixed Student-t ``df``); a
    family without sigma (Poisson, binomial) gets unit scales, which its density ignores.
    """
    post = _require_posterior(posterior)
    coef = post["coef"].transpose("chain", "draw", "component", "feature").to_numpy()
    S = coef.shape[0] * coef.shape[1]
    K, p = coef.shape[2], coef.shape[3]
    out = {"coef": coef.reshape(S, K, p)}

    def flat(name: str) -> np.ndarray | None:
        if name not in post:
            return None
        da = post[name]
        if "component" in da.dims:
            return da.transpose("chain", "draw", "component").to_numpy().reshape(S, K)
        return np.repeat(da.to_numpy().reshape(S, 1), K, axis=1)

    weights = flat("weights")
    out["weights"] = np.ones((S, K)) if weights is None else weights
    intercept = flat("intercept")
    out["intercept"] = np.zeros((S, K)) if intercept is None else intercept
    sigma = flat("sigma")
    const = _group(posterior, "constant_data")
    if sigma is None and not _family(posterior).has_sigma:
        sigma = np.ones((S, K))
    if sigma is None:
        if const is None or "sigma" not in const:
            raise ValueError("the posterior has no sigma and no fixed sigma in constant_data")
        sigma = np.broadcast_to(const["sigma"].to_numpy(), (S, K))
    out["sigma"] = sigma
    df = flat("df")
    if df is None and const is not None and "df" in const:  # StudentT(df=...): known
        df = np.broadcast_to(const["df"].to_numpy(), (S, K))
    if df is not None:
        out["df"] = df
    return out


def _family(posterior: Any) -> Any:
    """The component family of a posterior (Gaussian when it records none)."""
    from bayes_mlr.bayes.families import family_of_posterior

    return family_of_posterior(posterior)


def _training_rows(posterior: Any, model: Any = None) -> tuple[Any, Any]:
    """``offset`` and ``trials`` of the training rows: the estimator's, else the posterior's
    ``constant_data`` (None where there is none)."""
    if model is not None and hasattr(model, "_fit_X"):
        return getattr(model, "_fit_offset", None), getattr(model, "_fit_trials", None)
    const = _group(posterior, "constant_data")
    if const is None:
        return None, None
    return tuple(const[k].to_numpy() if k in const else None for k in ("offset", "trials"))


def _data(model: Any, posterior: Any, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    if X is not None and y is not None:
        return np.asarray(X, dtype=float).reshape(len(y), -1), np.asarray(y, dtype=float)
    if X is not None or y is not None:
        raise ValueError("pass both X and y, or neither")
    if model is not None and hasattr(model, "_fit_X"):
        return model._fit_X, model._fit_y
    const, obs = _group(posterior, "constant_data"), _group(posterior, "observed_data")
    if const is None or obs is None:
        raise ValueError("no data: pass X and y, or a fitted estimator")
    return const["X"].to_numpy(), obs["y"].to_numpy()


def posterior_membership(
    model: Any,
    posterior: Any,
    X: Any = None,
    y: Any = None,
    *,
    chunk_size: int = 200,
    groups: Any = None,
    concomitant: Any = None,
    offset: Any = None,
    trials: Any = None,
) -> np.ndarray:
    """Membership probabilities averaged over the posterior.

    For each draw ``theta`` the responsibilities
    ``gamma_ik = w_k N(y_i | mu_ik, sigma_k) / sum_j w_j N(y_i | mu_ij, sigma_j)`` are computed
    and averaged over all draws (the posterior probability that observation ``i`` came from
    component ``k``, in the EM labelling). For a structured posterior
    (:mod:`bayes_mlr.bayes.structured`) the responsibilities are per group, with each group's
    prior weights (from the concomitant model when there is one), and every row of a group
    carries its group's; the component densities are those of the posterior's family
    (Poisson, binomial, Student-t: ``posterior.attrs["family"]``).

    Parameters
    ----------
    model : MixtureOfRegressions or None
        Supplies the training data when ``X``/``y`` are not given (else the posterior's
        ``constant_data``/``observed_data`` are used).
    posterior : xarray.DataTree
        Aligned posterior from :func:`bayes_mlr.bayes.model.sample_posterior`.
    X : array-like of shape (n, p), optional
    y : array-like of shape (n,), optional
    chunk_size : int
        Draws processed at once (memory ``chunk_size * n * K`` floats).
    groups : array-like of shape (n,), optional
        Group labels of new ``X`` (structured models; the training data's otherwise).
    concomitant : array-like of shape (n, r), optional
        Concomitant variables of new ``X`` (structured models with a concomitant model).
    offset, trials : array-like of shape (n,), optional
        The offset (Poisson, binomial) and trials (binomial) of new ``X`` (the training
        data's otherwise).

    Returns
    -------
    ndarray of shape (n, K)
        Rows sum to 1.
    """
    if _is_structured_posterior(posterior):
        return _structured_membership(
            model, posterior, X, y, groups, concomitant, chunk_size, (offset, trials)
        )
    if any(v is not None for v in (groups, concomitant, offset, trials)):
        raise ValueError(
            "groups, concomitant, offset and trials apply to a structured posterior only"
        )
    X, y = _data(model, posterior, X, y)
    draws = _draw_arrays(posterior)
    S, K = draws["weights"].shape
    total = np.zeros((y.shape[0], K))
    for start in range(0, S, chunk_size):
        sl = slice(start, start + chunk_size)
        mu = np.einsum("np,skp->snk", X, draws["coef"][sl]) + draws["intercept"][sl, None, :]
        sigma = draws["sigma"][sl, None, :]
        with np.errstate(divide="ignore"):
            log_w = np.log(draws["weights"][sl, None, :])
        lp = log_w - np.log(sigma) - 0.5 * ((y[None, :, None] - mu) / sigma) ** 2
        total += np.exp(lp - logsumexp(lp, axis=-1, keepdims=True)).sum(axis=0)
    return total / S


def _is_structured_posterior(posterior: Any) -> bool:
    post = _require_posterior(posterior)
    const = _group(posterior, "constant_data")
    return bool(
        post.attrs.get("structured")
        or any(v in post.data_vars for v in ("coef_shared", "intercept_shared", *_CONCOMITANT))
        or (const is not None and "group_index" in const)
    )


def _structured_membership(
    model: Any,
    posterior: Any,
    X: Any,
    y: Any,
    groups: Any,
    concomitant: Any,
    chunk_size: int,
    family_data: tuple[Any, Any] = (None, None),
) -> np.ndarray:
    """:func:`posterior_membership` of a structured posterior."""
    from bayes_mlr.bayes.families import row_columns
    from bayes_mlr.bayes.stephens import group_classification_probabilities
    from bayes_mlr.core.grouping import Grouping, group_constant

    post = _require_posterior(posterior)
    const = _group(posterior, "constant_data")
    has_concomitant = "concomitant_coef" in post.data_vars
    if X is None and y is None:
        X, y = _data(model, posterior, None, None)
        family_data = _training_rows(posterior, model)
        if model is not None and hasattr(model, "_fit_X"):
            groups, W = model._fit_groups, model._fit_concomitant
        else:
            groups = None if "group_index" not in const else const["group_index"].to_numpy()
            W = None if "W" not in const else const["W"].to_numpy()
            if W is not None and groups is not None:  # one row per group: back to rows
                W = W[groups]
    else:
        X, y = _data(model, posterior, X, y)
        W = None if concomitant is None else np.asarray(concomitant, dtype=float)
        if W is not None and W.ndim == 1:
            W = W[:, None]
    if has_concomitant and W is None:
        raise ValueError("this posterior has a concomitant model: pass concomitant")
    n = y.shape[0]
    grouping = Grouping(groups, n)
    codes = None if grouping.trivial else grouping.index
    W_groups = None
    if has_concomitant:
        if W.shape[0] != n:
            raise ValueError(f"concomitant has {W.shape[0]} rows, X has {n}")
        W_groups = group_constant(grouping, W, "concomitant")
    family = _family(posterior)
    extra = row_columns(family, np.asarray(y, dtype=float), *family_data)
    draws = _draw_arrays(posterior)
    if has_concomitant:
        for name in _CONCOMITANT:
            da = post[name].transpose("chain", "draw", "component", ...)
            draws[name] = da.to_numpy().reshape(-1, *da.shape[2:])
    S, K = draws["weights"].shape
    total = np.zeros((grouping.n_groups, K))
    for start in range(0, S, chunk_size):
        chunk = {k: v[start : start + chunk_size] for k, v in draws.items()}
        total += group_classification_probabilities(
            X, y, chunk, groups=codes, concomitant=W_groups, family=family, extra=extra
        ).sum(axis=0)
    return grouping.expand(total / S)


# --------------------------------------------------------------------------------------------
# Choosing the number of components
# --------------------------------------------------------------------------------------------


def _criterion(model: Any, name: str) -> float:
    method = getattr(model, name)
    kwargs = {}
    sw = getattr(model, "_fit_sample_weight", None)
    if sw is not None:
        kwargs["sample_weight"] = sw
    for key in ("groups", "concomitant"):  # a structured model's training groups and variables
        value = getattr(model, f"_fit_{key}", None)
        if value is not None:
            kwargs[key] = value
    return float(method(model._fit_X, model._fit_y, **kwargs))


def compare_n_components(
    models: Sequence[Any] | Mapping[Any, Any],
    posteriors: Sequence[Any] | Mapping[Any, Any],
) -> pd.DataFrame:
    """PSIS-LOO of each posterior next to EM's BIC, AIC and ICL, to choose K.

    Parameters
    ----------
    models : sequence of MixtureOfRegressions (or mapping name -> estimator)
        Fitted estimators on the same data, e.g. with different ``n_components``.
    posteriors : sequence of xarray.DataTree (or mapping with the same keys)
        Their posteriors from :func:`bayes_mlr.bayes.model.sample_posterior` (with the
        ``log_likelihood`` group).

    Returns
    -------
    pandas.DataFrame
        One row per model (index: ``n_components``, or the mapping's keys), columns
        ``n_components``, ``elpd_loo``, ``se``, ``p_loo``, ``elpd_diff`` (to the best LOO),
        ``loo_warning`` (bool: Pareto k too high), ``log_likelihood`` (EM), ``bic``, ``aic``,
        ``icl`` (EM; lower is better), ``spurious`` (the EM fit has a spurious component,
        see :func:`bayes_mlr.fit_em`), ``best_loo`` and ``best_bic`` (bool, chosen among the
        fits that are not spurious). Higher ``elpd_loo`` is better.
    """
    import arviz_stats as azs

    if isinstance(models, Mapping):
        if not isinstance(posteriors, Mapping) or set(models) != set(posteriors):
            raise ValueError("models and posteriors must be mappings with the same keys")
        keys = list(models)
        pairs = [(models[k], posteriors[k]) for k in keys]
    else:
        models, posteriors = list(models), list(posteriors)
        if len(models) != len(posteriors):
            raise ValueError(
                f"got {len(models)} models and {len(posteriors)} posteriors; pair them up"
            )
        pairs = list(zip(models, posteriors, strict=True))
        keys = [int(m.n_components) for m in models]
        if len(set(keys)) != len(keys):
            keys = list(range(len(models)))
    rows = []
    for model, posterior in pairs:
        if _group(posterior, "log_likelihood") is None:
            raise ValueError(
                "a posterior has no log_likelihood group: sample with log_likelihood=True"
            )
        loo = azs.loo(posterior, var_name="y")
        rows.append(
            {
                "n_components": int(model.n_components),
                "elpd_loo": float(loo.elpd),
                "se": float(loo.se),
                "p_loo": float(loo.p),
                "loo_warning": bool(loo.warning),
                "log_likelihood": float(model.log_likelihood_),
                "bic": _criterion(model, "bic"),
                "aic": _criterion(model, "aic"),
                "icl": _criterion(model, "icl"),
                "spurious": bool(getattr(model.result_, "spurious", False)),
            }
        )
    table = pd.DataFrame(rows, index=pd.Index(keys, name="model"))
    table.insert(4, "elpd_diff", table["elpd_loo"] - table["elpd_loo"].max())
    # choices among the EM fits without a spurious component (all, if every fit has one)
    pool = table[~table["spurious"]] if not table["spurious"].all() else table
    table["best_loo"] = table.index == pool["elpd_loo"].idxmax()
    table["best_bic"] = table.index == pool["bic"].idxmin()
    return table
