"""Dask: bounded memory on data never whole in memory, and the same answer as in memory.

``python -m tests.benchmarks.bench_dask``. Two figures (issue #5):

1. Memory: 20 million rows x 10 features (1.6 GB of float64) produced lazily block by block with
   ``dask.array.map_blocks`` fit for a few EM iterations in a fresh child process; its peak
   RSS (``ru_maxrss``) must stay under 1.2 GB. The child's baseline RSS after imports is
   printed too.
2. Equality: a Dask fit of (smaller) data equals the in-memory fit of the same data and seed to
   1e-9 relative in log-likelihood.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from ._common import base_parser, say

LIMIT_GB = 1.2
#: Printed by ``python -m tests.benchmarks`` (see its docstring).
TARGETS = (
    ("peak_rss_gb", "<=", LIMIT_GB, "Dask fit, 20e6 x 10 rows: peak RSS (GB)"),
    ("dask_rel_diff", "<=", 1e-9, "Dask vs in-memory fit: relative log-lik diff"),
)

CHILD = r"""
import json, resource, sys, time
import numpy as np
import dask, dask.array as da
import bayes_mlr
n, p, chunk, iters = (int(a) for a in sys.argv[1:5])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
coef = np.linspace(-1, 1, p)

def block(block_id=None):
    rng = np.random.default_rng(block_id[0])
    rows = min(chunk, n - block_id[0] * chunk)
    X = rng.normal(size=(rows, p))
    z = rng.random(rows) < 0.4
    y = np.where(z, 2.0 + X @ coef, -2.0 - X @ coef) + rng.normal(size=rows)
    return np.column_stack([X, y])

nblocks = -(-n // chunk)
sizes = tuple(min(chunk, n - i * chunk) for i in range(nblocks))
Z = da.map_blocks(block, dtype=float, chunks=(sizes, (p + 1,)))
t = time.perf_counter()
with dask.config.set(scheduler="threads", num_workers=2):
    res = bayes_mlr.fit_em(Z[:, :p], Z[:, p], 2, init="subsets", n_init=1, max_iter=iters,
                           tol=0, random_state=0)
elapsed = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_kb": peak, "base_kb": base, "seconds": elapsed,
                  "n_iter": res.n_iter, "log_likelihood": res.log_likelihood}))
"""


def memory(n: int, p: int, chunk: int, iters: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), str(p), str(chunk), str(iters)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def equality(n: int) -> dict:
    import dask.array as da

    from bayes_mlr import fit_em, simulate

    data = simulate(n, n_components=3, n_features=4, random_state=0)
    t = time.perf_counter()
    ref = fit_em(data.X, data.y, 3, n_init=4, random_state=1)
    t_mem = time.perf_counter() - t
    t = time.perf_counter()
    res = fit_em(
        da.from_array(data.X, chunks=(n // 8, 4)),
        da.from_array(data.y, chunks=n // 8),
        3,
        n_init=4,
        random_state=1,
    )
    t_dask = time.perf_counter() - t
    rel = abs(res.log_likelihood - ref.log_likelihood) / abs(ref.log_likelihood)
    return {"rel_diff": rel, "in_memory_s": t_mem, "dask_s": t_dask}


def main(argv: list[str] | None = None) -> dict:
    parser = base_parser(__doc__.splitlines()[0], prog="bench_dask")
    parser.add_argument("--n", type=int, default=20_000_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=500_000)
    parser.add_argument("--iters", type=int, default=3)
    args = parser.parse_args(argv)
    n = 1_000_000 if args.quick else args.n
    gb = n * (args.features + 1) * 8 / 1e9
    say(
        f"memory: {n:,} rows x {args.features} features (+y) = {gb:.2f} GB of float64, "
        f"generated lazily in chunks of {args.chunk:,} rows; {args.iters} EM iterations"
    )
    mem = memory(n, args.features, args.chunk, args.iters)
    peak_gb, base_gb = mem["peak_kb"] / 1024**2, mem["base_kb"] / 1024**2
    say(
        f"  peak RSS {peak_gb:.3f} GB (after imports {base_gb:.3f} GB), {mem['seconds']:.1f} s,"
        f" {mem['n_iter']} iterations -> {'MET' if peak_gb < LIMIT_GB else 'NOT MET'}"
        f" (limit {LIMIT_GB} GB)"
    )
    eq = equality(20_000 if args.quick else 200_000)
    say(
        f"equality: |ll_dask - ll_numpy| / |ll| = {eq['rel_diff']:.2e} (contract 1e-9); "
        f"in memory {eq['in_memory_s']:.2f} s, Dask {eq['dask_s']:.2f} s"
    )
    return {
        "rows": n,
        "data_gb": gb,
        "peak_rss_gb": peak_gb,
        "limit_gb": LIMIT_GB,
        "memory_met": bool(peak_gb < LIMIT_GB),
        "dask_rel_diff": eq["rel_diff"],
        "equality_met": bool(eq["rel_diff"] <= 1e-9),
    }


if __name__ == "__main__":
    main()
