"""Poisson and binomial mixtures of regressions side by side with flexmix (and mixtools where it
fits the model): a table from the stored reference fits of ``tests/peers/families`` (written by
``families_refs.R``; rerun it with ``Rscript tests/peers/families/families_refs.R OUT`` to check
them against R itself).

Run with ``python -m tests.peers.families_compare``. For each case it prints flexmix's EM
log-likelihood (best of 30 seeds), mixtools' (best of 30 seeds, where present), bayes_mlr's
(defaults, ``random_state=0``) and its difference from the best peer, the largest difference of
the coefficients from flexmix's likelihood maximum (BFGS polish of its EM optimum; concomitant
logits against the component matched to flexmix's ``Comp.1``), of the weights, the largest
relative difference of the standard errors from ``refit()``'s, and the parameter counts.

The helpers are importable by tests: ``CASES`` (case -> keyword arguments of
``MixtureOfRegressions.from_formula`` besides the data and K), ``RENAME`` (flexmix coefficient
name -> bayes_mlr feature name), ``load_case``, ``fit_case``, ``flexmix_components``,
``ours_components``, ``match_labels`` and ``compare``.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

PEERS = Path(__file__).resolve().parent / "families"

# case -> keyword arguments of MixtureOfRegressions.from_formula (besides data and K). The same
# specification is stored by families_refs.R in each JSON ("python" / "from_formula");
# load_case checks that the two agree.
CASES: dict[str, dict[str, Any]] = {
    # real: flexmix data(seizure), exposure = observation hours
    "seizure_poisson": {
        "formula": "Seizures ~ Treatment * np.log(Day)",
        "family": "poisson",
        "offset": "np.log(Hours)",
    },
    # real: flexmix data(patent), concomitant R&D intensity
    "patent_concomitant": {
        "formula": "Patents ~ lgRD",
        "family": "poisson",
        "concomitant": "~ RDS",
    },
    # real: flexmix data(betablocker), arms grouped by center, treatment effect shared
    "betablocker_grouped_shared": {
        "formula": "Deaths ~ 1 | Center",
        "family": "binomial",
        "trials": "Total",
        "shared": "~ Treatment",
    },
    "betablocker_shared": {
        "formula": "Deaths ~ 1",
        "family": "binomial",
        "trials": "Total",
        "shared": "~ Treatment",
    },
    "poisson_sim": {"formula": "y ~ x", "family": "poisson", "offset": "np.log(h)"},
    "poisson_sim_nooffset": {"formula": "y ~ x", "family": "poisson"},
    "binomial_sim": {"formula": "y ~ x", "family": "binomial", "trials": "m"},
    "poisson_shared_grouped_sim": {"formula": "y ~ x | id", "family": "poisson", "shared": "~ w"},
}

# flexmix coefficient name -> bayes_mlr (formulaic) feature name, where they differ
RENAME: dict[str, dict[str, str]] = {
    "seizure_poisson": {
        "TreatmentYes": "Treatment[T.Yes]",
        "log(Day)": "np.log(Day)",
        "TreatmentYes:log(Day)": "Treatment[T.Yes]:np.log(Day)",
    },
    "betablocker_grouped_shared": {"TreatmentTreated": "Treatment[T.Treated]"},
    "betablocker_shared": {"TreatmentTreated": "Treatment[T.Treated]"},
}


def load_case(case: str) -> tuple[pd.DataFrame, dict]:
    """The stored data (CSV) and flexmix/mixtools reference (JSON) of one case."""
    ref = json.loads((PEERS / f"{case}.json").read_text())
    data = pd.read_csv(PEERS / f"{case}.csv")
    stored = {k: v for k, v in ref["python"]["from_formula"].items() if v is not None}
    if stored != CASES[case]:
        raise ValueError(f"{case}: CASES {CASES[case]} differs from the JSON's {stored}")
    if (ref["python"]["rename"] or {}) != RENAME.get(case, {}):
        raise ValueError(f"{case}: RENAME differs from the JSON's {ref['python']['rename']}")
    return data, ref


def fit_case(case: str, data: pd.DataFrame | None = None, ref: dict | None = None, **kwargs: Any):
    """bayes_mlr's fit of a case (defaults, random_state=0 unless overridden)."""
    if data is None or ref is None:
        data, ref = load_case(case)
    options = {"random_state": 0, **CASES[case], **kwargs}
    formula = options.pop("formula")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from bayes_mlr import MixtureOfRegressions

        return MixtureOfRegressions.from_formula(formula, data, ref["K"], **options)


def flexmix_components(ref: dict) -> list[dict]:
    """Per flexmix component (Comp.1..K): regression coefficients at flexmix's likelihood
    maximum (``coef``: BFGS polish of the EM optimum, found through refit()'s flat vector by
    value; ``em_coef``: the EM estimates), refit() standard errors (``se``), the prior, and for a
    concomitant model the logits against Comp.1 (``gate``, ``gate_se``; Comp.1 has none). Names
    are bayes_mlr's (RENAME applied)."""
    rename = ref["python"]["rename"] or {}
    refit = ref["refit"]
    polished = refit.get("polished_mle") or {}
    have_polish = "coef" in polished and "error" not in refit

    def at_mle(value: float) -> float:
        if not have_polish:
            return value
        # refit's coef names repeat for FLXMRglmfix, so the position is found by value
        i = next(i for i, v in enumerate(refit["coef"]) if v == value)
        return polished["coef"][i]

    out = []
    for j, comp in enumerate(ref["components"]):
        name = comp["name"]
        reg = refit["regression"][name] if "regression" in refit else None
        entry = {
            "prior": comp["prior"],
            "em_coef": {rename.get(n, n): v for n, v in comp["coef"].items()},
            "coef": (
                {rename.get(n, n): at_mle(v) for n, v in reg["estimate"].items()}
                if reg
                else {rename.get(n, n): v for n, v in comp["coef"].items()}
            ),
            "se": {rename.get(n, n): v for n, v in (comp["se"] or {}).items()},
        }
        conc = (refit.get("concomitant") or {}).get(name)
        if ref["concomitant_model"] == "FLXPmultinom" and j > 0 and conc:
            entry["gate"] = {n: at_mle(v) for n, v in conc["estimate"].items()}
            entry["gate_se"] = dict(conc["std_error"])
        out.append(entry)
    return out


def loglik_at_flexmix(case: str) -> tuple[float, float]:
    """The mixture log-likelihood at flexmix's EM estimates computed here from the CSV with the
    documented column coding (formulaic designs, offset, trials, groups, shared coefficients,
    concomitant logits), and flexmix's own logLik: the two agree when the coding is right.
    Needs no bayes_mlr fit."""
    from formulaic import model_matrix
    from scipy.special import expit, logsumexp
    from scipy.stats import binom, poisson

    data, ref = load_case(case)
    spec = CASES[case]
    formula, _, group = spec["formula"].partition("|")
    response, rhs = (s.strip() for s in formula.split("~"))

    def design(rhs_: str) -> pd.DataFrame:
        X = model_matrix(rhs_, data)
        return X.rename(columns={"Intercept": "(Intercept)"})

    X = design(rhs)
    if "shared" in spec:
        S = design(spec["shared"]).drop(columns="(Intercept)", errors="ignore")
        X = pd.concat([X, S], axis=1)
    offset = (
        np.asarray(model_matrix("0 + " + spec["offset"], data), dtype=float)[:, 0]
        if "offset" in spec
        else 0.0
    )
    y = data[response].to_numpy(float)
    comps = flexmix_components(ref)
    log_f = np.column_stack(
        [
            np.asarray(X[list(c["em_coef"])], dtype=float) @ np.array(list(c["em_coef"].values()))
            + offset
            for c in comps
        ]
    )
    if spec["family"] == "poisson":
        log_f = poisson.logpmf(y[:, None], np.exp(log_f))
    else:
        trials = data[spec["trials"]].to_numpy(float)[:, None]
        log_f = binom.logpmf(y[:, None], trials, expit(log_f))
    if group.strip():
        g = data[group.strip()].to_numpy()
        log_f = pd.DataFrame(log_f).groupby(g, sort=False).sum().to_numpy()
    if "concomitant" in spec:
        Z = design(spec["concomitant"])
        conc = ref["parameters_concomitant"]
        logits = np.column_stack(
            [
                np.asarray(Z[list(conc[str(k + 1)])], dtype=float)
                @ np.array(list(conc[str(k + 1)].values()))
                for k in range(ref["K"])
            ]
        )
        log_prior = logits - logsumexp(logits, axis=1, keepdims=True)
    else:
        log_prior = np.log([c["prior"] for c in comps])[None, :]
    return float(logsumexp(log_f + log_prior, axis=1).sum()), float(ref["logLik"])


def mixtools_components(ref: dict) -> list[dict] | None:
    mix = ref.get("mixtools")
    if not mix:
        return None
    return [{"prior": c["prior"], "coef": dict(c["coef"])} for c in mix["components"]]


def ours_components(model) -> list[dict[str, float]]:
    """Per bayes_mlr component: {"(Intercept)": ..., feature name: ...}."""
    names = ["(Intercept)", *model.feature_names]
    K = len(model.weights_)
    intercept = np.broadcast_to(np.asarray(model.intercept_, dtype=float), (K,))
    coef = np.asarray(model.coef_, dtype=float).reshape(K, -1)
    return [dict(zip(names, [intercept[k], *coef[k]], strict=True)) for k in range(K)]


def match_labels(ours: list[dict], theirs: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Label matching by the smallest total |difference| of the common coefficients:
    ours[rows[i]] is theirs[cols[i]]."""
    names = sorted(set(ours[0]) & set(theirs[0]["coef"]))
    cost = np.array([[sum(abs(o[n] - t["coef"][n]) for n in names) for t in theirs] for o in ours])
    return linear_sum_assignment(cost)


def _our_se(model, k: int, name: str) -> float:
    se = model.standard_errors_
    if name == "(Intercept)":
        intercept = np.asarray(se["intercept"], dtype=float)
        return float(np.broadcast_to(intercept, (len(model.weights_),))[k])
    j = list(model.feature_names).index(name)
    return float(np.asarray(se["coef"], dtype=float)[k, j])


def _n_parameters(model, data: pd.DataFrame, ref: dict) -> float:
    result = getattr(model, "result_", None)
    if result is not None and hasattr(result, "n_parameters"):
        return float(result.n_parameters)
    try:  # BIC = -2 l + P log n, n = rows (as flexmix)
        return (model.bic(data) + 2.0 * model.log_likelihood_) / math.log(ref["nobs"])
    except Exception:
        return float("nan")


def compare(case: str, **kwargs: Any) -> dict:
    """bayes_mlr against the stored peers for one case (see the module docstring); ``kwargs``
    go to the fit (e.g. a tighter ``tol``)."""
    data, ref = load_case(case)
    model = fit_case(case, data, ref, **kwargs)
    theirs = flexmix_components(ref)
    ours = ours_components(model)
    rows, cols = match_labels(ours, theirs)
    names = sorted(set(ours[0]) & set(theirs[0]["coef"]))
    missing = sorted(set(theirs[0]["coef"]) ^ set(ours[0]))
    weights = np.asarray(model.weights_, dtype=float)
    d_est = d_se = d_prior = 0.0
    for k, m in zip(rows, cols, strict=True):
        t = theirs[m]
        for n in names:
            d_est = max(d_est, abs(ours[k][n] - t["coef"][n]))
            if n in t["se"]:
                d_se = max(d_se, abs(_our_se(model, k, n) / t["se"][n] - 1.0))
        if ref["concomitant_model"] != "FLXPmultinom":
            d_prior = max(d_prior, abs(weights[k] - t["prior"]))
    if ref["concomitant_model"] == "FLXPmultinom":
        # logits against the component matched to flexmix's Comp.1 (its reference)
        gate_names = ["(Intercept)", *map(str, model.concomitant_names_in_)]
        gate = np.column_stack([model.concomitant_intercept_, model.concomitant_coef_])
        ref_k = rows[list(cols).index(0)]
        gate = gate - gate[ref_k]
        gate_se = model.standard_errors_.get("concomitant_coef") if ref_k == 0 else None
        for k, m in zip(rows, cols, strict=True):
            if m == 0:
                continue
            for i, n in enumerate(gate_names):
                d_est = max(d_est, abs(gate[k, i] - theirs[m]["gate"][n]))
                if gate_se is not None:  # same reference: SEs directly comparable
                    mine = (
                        model.standard_errors_["concomitant_intercept"][k]
                        if i == 0
                        else model.standard_errors_["concomitant_coef"][k, i - 1]
                    )
                    d_se = max(d_se, abs(mine / theirs[m]["gate_se"][n] - 1.0))
    peers = {"flexmix": ref["logLik"]}
    polished = (ref["refit"].get("polished_mle") or {}).get("logLik")
    if polished is not None:
        peers["flexmix polished"] = polished
    mix = ref.get("mixtools")
    if mix:
        peers["mixtools"] = mix["logLik"]
    d_mix = float("nan")
    mixc = mixtools_components(ref)
    if mixc:
        mrows, mcols = match_labels(ours, mixc)
        d_mix = max(
            abs(ours[k][n] - mixc[m]["coef"][n])
            for k, m in zip(mrows, mcols, strict=True)
            for n in mixc[m]["coef"]
        )
    best_peer = max(peers.values())
    return {
        "case": case,
        "n": ref["n"],
        "K": ref["K"],
        "flexmix": ref["logLik"],
        "mixtools": mix["logLik"] if mix else float("nan"),
        "bayes_mlr": model.log_likelihood_,
        "bayes_mlr - best peer": model.log_likelihood_ - best_peer,
        "max |d est|": d_est,
        "max |d weight|": d_prior if ref["concomitant_model"] != "FLXPmultinom" else float("nan"),
        "max rel d SE": d_se,
        "max |d est| mixtools": d_mix,
        "df flexmix": ref["df"],
        "df bayes_mlr": _n_parameters(model, data, ref),
        "unmatched names": ", ".join(missing),
    }


def to_markdown(table: pd.DataFrame) -> str:
    def fmt(name: str, v: Any) -> str:
        if isinstance(v, str):
            return v
        if isinstance(v, (int, np.integer)):
            return str(v)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        if name in ("flexmix", "mixtools", "bayes_mlr"):
            return f"{v:.4f}"
        if name.startswith("df"):
            return f"{v:g}"
        return f"{v:.1e}"

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(fmt(c, row[c]) for c in table.columns) + " |")
    return "\n".join(lines)


def main(cases: list[str] | None = None) -> pd.DataFrame:
    rows = []
    for case in cases or list(CASES):
        try:
            rows.append(compare(case))
        except Exception as err:  # one failing case must not hide the others
            rows.append({"case": case, "unmatched names": f"FAILED: {type(err).__name__}: {err}"})
    table = pd.DataFrame(rows)
    print(to_markdown(table))
    return table


if __name__ == "__main__":
    main(sys.argv[1:] or None)
