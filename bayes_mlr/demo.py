"""``python -m bayes_mlr.demo``: fit EM on simulated data and print a summary (``make demo``)."""

from __future__ import annotations

import time

import numpy as np

from . import MixtureOfRegressions, simulate


def main() -> None:
    truth = {
        "weights": np.array([0.5, 0.3, 0.2]),
        "intercept": np.array([-2.0, 0.5, 3.0]),
        "coef": np.array([[1.5, -0.5], [-1.0, 2.0], [0.5, 0.0]]),
        "sigma": np.array([0.5, 0.8, 0.4]),
    }
    data = simulate(5_000, **truth, random_state=0)
    print(f"Simulated {data.X.shape[0]} observations, {data.X.shape[1]} features, 3 components.")
    start = time.perf_counter()
    model = MixtureOfRegressions(3, random_state=0).fit(data.X, data.y)
    elapsed = time.perf_counter() - start
    print(
        f"EM: {model.n_iter_} iterations, converged={model.converged_}, {elapsed:.2f} s, "
        f"log-likelihood {model.log_likelihood_:.2f}, BIC {model.bic(data.X, data.y):.1f}\n"
    )
    se = model.standard_errors_
    print(f"{'parameter':<16}{'truth':>10}{'EM':>10}{'SE':>10}")
    for name in ("weights", "intercept", "sigma", "coef"):
        est, err, true = getattr(model, f"{name}_"), se[name], truth[name]
        for idx in np.ndindex(est.shape):
            label = f"{name}[{', '.join(map(str, idx))}]"
            print(f"{label:<16}{true[idx]:>10.3f}{est[idx]:>10.3f}{err[idx]:>10.3f}")


if __name__ == "__main__":
    main()
