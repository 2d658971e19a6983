"""Concomitant, grouped and shared models side by side with flexmix: a table from the stored
reference fits of ``tests/peers/structure`` (written by ``structure_refs.R``; rerun it with
``Rscript tests/peers/structure/structure_refs.R OUT`` to check them against R itself).

Run with ``python -m tests.peers.structure_compare``. For each case it prints flexmix's EM
log-likelihood (best of 30 seeds), flexmix's likelihood maximised to the end by BFGS from its
``refit()`` (``polished``), bayes_mlr's log-likelihood (defaults, ``random_state=0``), the
largest difference of the regression coefficients and log σ from the polished optimum (labels
matched), and the largest relative difference of the standard errors from ``refit()``'s.
The assertions behind these figures are ``tests/core/test_structured.py``.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from bayes_mlr import MixtureOfRegressions
from tests.core.test_structured import CASES, PEERS, _flexmix_components, _ours


def compare(case: str) -> dict:
    formula, concomitant, shared, rename = CASES[case]
    ref = json.loads((PEERS / f"{case}.json").read_text())
    data = pd.read_csv(PEERS / f"{case}.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MixtureOfRegressions.from_formula(
            formula, data, ref["K"], concomitant=concomitant, shared=shared, random_state=0
        )
    theirs = _flexmix_components(ref, rename)
    ours = [_ours(model, k) for k in range(ref["K"])]
    names = sorted(theirs[0]["coef"])
    cost = np.array([[sum(abs(o[n] - t["coef"][n]) for n in names) for t in theirs] for o in ours])
    rows, cols = linear_sum_assignment(cost)
    se = model.standard_errors_
    d_est, d_se = 0.0, 0.0
    for k, m in zip(rows, cols, strict=True):
        t = theirs[m]
        for n in names:
            d_est = max(d_est, abs(ours[k][n] - t["coef"][n]))
            j = model.feature_names.index(n) if n != "(Intercept)" else None
            mine = se["intercept"][k] if j is None else se["coef"][k, j]
            d_se = max(d_se, abs(mine / t["se"][n] - 1.0))
        d_est = max(d_est, abs(np.log(model.sigma_[k]) - t["log_sigma"]))
        d_se = max(d_se, abs(se["sigma"][k] / model.sigma_[k] / t["se_log_sigma"] - 1.0))
    return {
        "case": case,
        "K": ref["K"],
        "n": ref["n"],
        "flexmix EM": ref["logLik"],
        "polished": ref["refit"]["polished_mle"]["logLik"],
        "bayes_mlr": model.log_likelihood_,
        "bayes_mlr - polished": model.log_likelihood_ - ref["refit"]["polished_mle"]["logLik"],
        "max |d estimate|": d_est,
        "max rel d SE": d_se,
    }


def main() -> pd.DataFrame:
    table = pd.DataFrame([compare(case) for case in sorted(CASES)])
    formats = {name: "{:.4f}".format for name in ("flexmix EM", "polished", "bayes_mlr")}
    formats.update({name: "{:.1e}".format for name in ("bayes_mlr - polished", "max |d estimate|")})
    formats["max rel d SE"] = "{:.1e}".format
    print(table.to_string(index=False, formatters=formats))
    return table


if __name__ == "__main__":
    main()
