"""Fitted models of every component family, alone and with groups, concomitant variables and
shared coefficients, for the workflow tests (save/load, em.json, figures, reports).

Real data: flexmix's ``seizure`` (Poisson with an exposure offset) and ``betablocker`` (binomial
with trials, rows grouped by center, a shared treatment effect), as stored for the peer
comparisons in ``tests/peers/families/``. The other cases are simulated with
:func:`bayes_mlr.simulate` (``family=``). Each fit takes well under a second.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bayes_mlr import MixtureOfRegressions, StudentT, simulate

PEERS = Path(__file__).resolve().parents[1] / "peers" / "families"


def seizure_frame() -> pd.DataFrame:
    return pd.read_csv(PEERS / "seizure_poisson.csv")


def betablocker_frame() -> pd.DataFrame:
    return pd.read_csv(PEERS / "betablocker_grouped_shared.csv")


def seizure() -> MixtureOfRegressions:
    """Poisson, offset log(Hours), formula with an interaction (flexmix logLik -376.1762)."""
    return MixtureOfRegressions.from_formula(
        "Seizures ~ Treatment * np.log(Day)",
        seizure_frame(),
        2,
        family="poisson",
        offset="np.log(Hours)",
        random_state=0,
    )


def betablocker() -> MixtureOfRegressions:
    """Binomial, trials Total, grouped by Center, shared Treatment (flexmix -159.3605)."""
    return MixtureOfRegressions.from_formula(
        "Deaths ~ 1 | Center",
        betablocker_frame(),
        3,
        family="binomial",
        trials="Total",
        shared="~ Treatment",
        random_state=0,
    )


def robust_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Two lines with t(3) noise and 5% gross outliers (y shifted by 10 to 25)."""
    rng = np.random.default_rng(seed)
    data = simulate(
        n,
        weights=[0.4, 0.6],
        intercept=[-1.0, 2.0],
        coef=[[1.5], [-1.0]],
        sigma=0.4,
        family="student_t",
        df=3.0,
        random_state=seed,
    )
    y = data.y.copy()
    out = rng.random(n) < 0.05
    y[out] += rng.choice([-1.0, 1.0], out.sum()) * rng.uniform(10, 25, out.sum())
    return pd.DataFrame({"x": data.X[:, 0], "y": y})


def student_t(df=None) -> MixtureOfRegressions:
    """Student-t components (df estimated, or fixed with ``df``) on :func:`robust_frame`."""
    family = "student_t" if df is None else StudentT(df=df)
    return MixtureOfRegressions.from_formula(
        "y ~ x", robust_frame(), 2, family=family, random_state=0
    )


def poisson_concomitant() -> MixtureOfRegressions:
    """Poisson with an exposure offset and a concomitant variable, fitted on arrays."""
    data = simulate(
        400,
        intercept=[0.5, 2.0],
        coef=[[1.0], [-0.5]],
        concomitant_coef=[[0.0], [1.5]],
        family="poisson",
        exposure=(0.5, 2.0),
        random_state=1,
    )
    model = MixtureOfRegressions(2, family="poisson", random_state=0)
    return model.fit(data.X, data.y, offset=data.offset, concomitant=data.concomitant)


def binomial_grouped() -> MixtureOfRegressions:
    """Binomial with trials 5..30, rows in 80 groups, fitted on arrays."""
    data = simulate(
        320,
        intercept=[-1.0, 1.0],
        coef=[[1.5], [-1.0]],
        family="binomial",
        trials=(5, 30),
        n_groups=80,
        random_state=2,
    )
    model = MixtureOfRegressions(2, family="binomial", random_state=0)
    return model.fit(data.X, data.y, trials=data.trials, groups=data.groups)


def student_t_shared() -> MixtureOfRegressions:
    """Student-t with a coefficient shared by both components, fitted on arrays."""
    data = simulate(
        300,
        intercept=[-2.0, 2.0],
        coef=[[1.5, 0.7], [-1.0, 0.7]],
        sigma=0.5,
        family="student_t",
        df=4.0,
        random_state=3,
    )
    model = MixtureOfRegressions(2, family="student_t", shared=[1], random_state=0)
    return model.fit(data.X, data.y)


#: Every case, by name: (builder, the data frame of a formula fit or None).
CASES = {
    "poisson-offset": (seizure, seizure_frame),
    "binomial-grouped-shared": (betablocker, betablocker_frame),
    "student_t": (student_t, robust_frame),
    "student_t-fixed-df": (lambda: student_t(df=4.0), robust_frame),
    "poisson-concomitant": (poisson_concomitant, None),
    "binomial-grouped-arrays": (binomial_grouped, None),
    "student_t-shared": (student_t_shared, None),
}
