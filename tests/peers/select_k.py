"""K chosen by BIC on real data sets, side by side with R flexmix's ``stepFlexmix``.

Run with ``make compare-r`` or ``python -m tests.peers.select_k [--nrep 10] [--seed 0]``; needs
``Rscript`` with flexmix and mixtools (Debian: r-cran-flexmix, r-cran-mixtools). R exports each
data set (``select_k.R``), fits K = 1..4 with ``nrep`` starts and prints its BIC; bayes_mlr fits
the same CSV with its defaults (the spurious guard on), and, to show what the guard changes,
with ``spurious="allow"`` (the plain highest-likelihood run).

flexmix drops components below ``minprior = 0.05`` (its ``k_fit`` column) and corrects sigma for
degrees of freedom, so its log-likelihood sits slightly below the ML value. BIC here is
−2ℓ + P log n for both packages (lower is better).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bayes_mlr import MixtureOfRegressions

HERE = Path(__file__).parent
# The formulas of select_k.R, in formulaic's syntax (R's I(x^2) is I(x**2) here).
FORMULAS = {
    "CO2data": "CO2 ~ GNP",
    "NOdata": "NO ~ Equivalence",
    "tonedata": "tuned ~ stretchratio",
    "NPreg": "yn ~ x + I(x**2)",
    "NregFix": "y ~ x1 + x2 + w",
}
KS = (1, 2, 3, 4)


def run_r(outdir: Path, nrep: int, seed: int) -> list[dict]:
    proc = subprocess.run(
        ["Rscript", str(HERE / "select_k.R"), str(outdir), str(nrep), str(seed)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"Rscript failed:\n{proc.stderr[-2000:]}")
    prefix = "SELECTK_JSON "
    return [
        json.loads(line[len(prefix) :])
        for line in proc.stdout.splitlines()
        if line.startswith(prefix)
    ]


def fit_ours(frame: pd.DataFrame, formula: str, K: int, seed: int, spurious: str) -> dict:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = MixtureOfRegressions.from_formula(
            formula, frame, n_components=K, random_state=seed, spurious=spurious
        )
    X, y = model._fit_X, model._fit_y
    return {
        "loglik": model.log_likelihood_,
        "bic": model.bic(X, y),
        "icl": model.icl(X, y),
        "spurious": bool(model.result_.spurious),
        "warned": sorted({w.category.__name__ for w in caught}),
    }


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nrep", type=int, default=10, help="flexmix starts per K (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if shutil.which("Rscript") is None:
        raise SystemExit("Rscript not found: install r-base-core r-cran-flexmix r-cran-mixtools")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        r_rows = run_r(Path(tmp), args.nrep, args.seed)
        for name, formula in FORMULAS.items():
            frame = pd.read_csv(Path(tmp) / f"{name}.csv")
            for K in KS:
                (r,) = [row for row in r_rows if row["data"] == name and row["k"] == K]
                ours = fit_ours(frame, formula, K, args.seed, "avoid")
                raw = fit_ours(frame, formula, K, args.seed, "allow")
                rows.append(
                    {
                        "data": name,
                        "n": len(frame),
                        "K": K,
                        "flexmix_k_fit": r["k_fit"],
                        "flexmix_loglik": r["loglik"],
                        "flexmix_bic": r["bic"],
                        "flexmix_icl": r["icl"],
                        "loglik": ours["loglik"],
                        "bic": ours["bic"],
                        "icl": ours["icl"],
                        "spurious": ours["spurious"],
                        "allow_loglik": raw["loglik"],
                        "allow_bic": raw["bic"],
                        "allow_spurious": raw["spurious"],
                    }
                )
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    print(table.round(2).to_string(index=False))
    print()
    chosen = {}
    for name, part in table.groupby("data", sort=False):
        regular = part[~part["spurious"]]
        chosen[name] = {
            "flexmix": int(part.loc[part["flexmix_bic"].idxmin(), "flexmix_k_fit"]),
            "bayes_mlr": int(regular.loc[regular["bic"].idxmin(), "K"]) if len(regular) else None,
            "bayes_mlr_allow": int(part.loc[part["allow_bic"].idxmin(), "K"]),
        }
    print("K chosen by BIC (bayes_mlr: among fits not flagged spurious)")
    print(pd.DataFrame(chosen).T.to_string())
    return {"table": rows, "chosen": chosen}


if __name__ == "__main__":
    main()
