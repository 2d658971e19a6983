"""Regenerate prices.csv: ``python models/data/make_prices.py`` (deterministic).

House prices (thousand euros) in two market segments that the data do not label: a budget
segment (60%) and a premium segment (40%) with a steeper price per square metre. Columns:
``size`` (m^2), ``age`` (years), ``price``.
"""

from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.default_rng(2026)
n = 400
size = rng.uniform(40, 160, n).round(0)
age = rng.uniform(0, 50, n).round(0)
premium = rng.random(n) < 0.4
price = np.where(
    premium,
    120.0 + 3.5 * size - 0.5 * age + rng.normal(0, 25, n),
    50.0 + 2.0 * size - 1.0 * age + rng.normal(0, 15, n),
)
frame = pd.DataFrame({"size": size, "age": age, "price": price.round(1)})
frame.to_csv(Path(__file__).with_name("prices.csv"), index=False)
