"""Regenerate robust.csv: ``python models/data/make_robust.py`` (deterministic).

Two regression lines (40% / 60% of the rows) with normal noise (sd 0.5); each row has a 5%
chance of being shifted by 10 to 25 up or down (14 of the 400 are): gross outliers, as a faulty
sensor or a data-entry slip makes them. Columns: ``x``, ``y`` and ``outlier`` (1 for a shifted
row; the spec does not use it).
"""

from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.default_rng(2026)
n = 400
x = rng.normal(0.0, 1.0, n).round(3)
first = rng.random(n) < 0.4
y = np.where(first, -1.0 + 1.5 * x, 2.0 - 1.0 * x) + rng.normal(0.0, 0.5, n)
outlier = rng.random(n) < 0.05
y[outlier] += rng.choice([-1.0, 1.0], outlier.sum()) * rng.uniform(10.0, 25.0, outlier.sum())
frame = pd.DataFrame({"x": x, "y": y.round(3), "outlier": outlier.astype(int)})
frame.to_csv(Path(__file__).with_name("robust.csv"), index=False)
