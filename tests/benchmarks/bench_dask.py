"""Dask: bounded memory on data never whole in memory, and the same answer as in memory.

``python -m tests.benchmarks.bench_dask``. Three figures (issue #5; issue #13 made them measure
the default fit):

1. Memory of the fit: 20 million rows x 10 features (1.76 GB of float64 with y) produced lazily
   block by block with ``dask.array.map_blocks`` and fitted in a fresh child process by the
   default fit, ``MixtureOfRegressions(2, random_state=0).fit(X, y)`` (``fit_em``'s defaults:
   ``init="auto"``, ``n_init=10`` starts scouting on a random subsample of 20,000 rows drawn
   through Dask, the best of them continued to convergence, ``tol=1e-8``, on all rows; each EM
   update is a pass over the lazily generated chunks). Its peak RSS (``ru_maxrss``) must stay
   under 1.2 GB. The child's RSS after imports, the time and the runs on all rows are printed
   too.
2. Memory through save and load: the same child then writes the model with ``model.save(dir)``
   (the training data one row chunk at a time) and opens it with
   ``MixtureOfRegressions.load(dir)`` (lazily); the peak RSS over fit, save and load
   (``--no-save-load`` to skip).
3. Equality: the default fit of (smaller, 200,000-row) data through Dask equals the in-memory
   default fit of the same data and seed to 1e-9 relative in log-likelihood.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from ._common import base_parser, commit_label, environment_line, say

LIMIT_GB = 1.2
#: Printed by ``python -m tests.benchmarks`` (see its docstring).
TARGETS = (
    ("peak_rss_gb", "<=", LIMIT_GB, "Dask default fit, 20e6 x 10 rows: peak RSS (GB)"),
    ("peak_rss_save_load_gb", "<=", LIMIT_GB, "the same through save and load: peak RSS (GB)"),
    ("dask_rel_diff", "<=", 1e-9, "Dask vs in-memory default fit: rel. log-lik diff"),
)

CHILD = r"""
import json, os, resource, sys, tempfile, time
import numpy as np
import dask, dask.array as da
from bayes_mlr import MixtureOfRegressions
n, p, chunk, save_load = (int(a) for a in sys.argv[1:5])
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
out = {"base_kb": base}
with dask.config.set(scheduler="threads", num_workers=2):
    t = time.perf_counter()
    model = MixtureOfRegressions(2, random_state=0).fit(Z[:, :p], Z[:, p])
    out["seconds"] = time.perf_counter() - t
    out["peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    res = model.result_
    out.update(n_iter=res.n_iter, n_runs=res.n_runs, converged=res.converged,
               log_likelihood=res.log_likelihood)
    if save_load:
        with tempfile.TemporaryDirectory(prefix="bayes_mlr_bench_dask_") as tmp:
            t = time.perf_counter()
            model.save(tmp)
            out["save_seconds"] = time.perf_counter() - t
            out["saved_gb"] = sum(
                os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp)
            ) / 1e9
            t = time.perf_counter()
            loaded = MixtureOfRegressions.load(tmp)
            out["load_seconds"] = time.perf_counter() - t
            out["loaded_lazy"] = isinstance(loaded._fit_X, da.Array)
            out["loaded_same"] = bool(np.array_equal(loaded.coef_, model.coef_))
            del loaded
        out["peak_after_save_load_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(out))
"""


def memory(n: int, p: int, chunk: int, save_load: bool = True) -> dict:
    """Peak RSS and the run summary of the default Dask fit in a fresh child process, then
    (``save_load``) the peak through ``model.save`` and ``MixtureOfRegressions.load``."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), str(p), str(chunk), str(int(save_load))],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def equality(n: int) -> dict:
    """The default fit in memory and through Dask (8 chunks) on the same data and seed."""
    import dask.array as da

    from bayes_mlr import fit_em, simulate

    data = simulate(n, n_components=3, n_features=4, random_state=0)
    t = time.perf_counter()
    ref = fit_em(data.X, data.y, 3, random_state=1)
    t_mem = time.perf_counter() - t
    t = time.perf_counter()
    res = fit_em(
        da.from_array(data.X, chunks=(n // 8, 4)),
        da.from_array(data.y, chunks=n // 8),
        3,
        random_state=1,
    )
    t_dask = time.perf_counter() - t
    rel = abs(res.log_likelihood - ref.log_likelihood) / abs(ref.log_likelihood)
    return {"rel_diff": rel, "in_memory_s": t_mem, "dask_s": t_dask, "n_runs": res.n_runs}


def main(argv: list[str] | None = None) -> dict:
    parser = base_parser(__doc__.splitlines()[0], prog="bench_dask")
    parser.add_argument("--n", type=int, default=None, help="rows (20e6; quick 1e6)")
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=500_000)
    parser.add_argument(
        "--equality-n", type=int, default=None, help="rows of the equality check (200e3; 20e3)"
    )
    parser.add_argument("--no-save-load", action="store_true", help="skip save and load")
    args = parser.parse_args(argv)
    n = args.n or (1_000_000 if args.quick else 20_000_000)
    gb = n * (args.features + 1) * 8 / 1e9
    commit = commit_label()  # the code under test is what is checked out now
    say(environment_line())
    say(
        f"memory: {n:,} rows x {args.features} features (+y) = {gb:.2f} GB of float64, "
        f"generated lazily in chunks of {args.chunk:,} rows; the default fit "
        "MixtureOfRegressions(2, random_state=0).fit(X, y): 10 starts scouting on a "
        "20,000-row subsample drawn through Dask, the best continued to convergence on all rows"
        + ("" if args.no_save_load else "; then model.save(dir) and MixtureOfRegressions.load")
    )
    mem = memory(n, args.features, args.chunk, save_load=not args.no_save_load)
    peak_gb, base_gb = mem["peak_kb"] / 1024**2, mem["base_kb"] / 1024**2
    say(
        f"  fit: peak RSS {peak_gb:.3f} GB (after imports {base_gb:.3f} GB), "
        f"{mem['seconds']:.1f} s; {mem['n_runs']} run(s) continued on all rows, best run "
        f"{mem['n_iter']} iterations, converged {mem['converged']} -> "
        f"{'MET' if peak_gb < LIMIT_GB else 'NOT MET'} (limit {LIMIT_GB} GB)  [commit {commit}]"
    )
    figures = {
        "rows": n,
        "data_gb": gb,
        "peak_rss_gb": peak_gb,
        "rss_after_imports_gb": base_gb,
        "fit_seconds": mem["seconds"],
        "n_runs_on_all_rows": mem["n_runs"],
        "n_iter": mem["n_iter"],
        "converged": bool(mem["converged"]),
        "limit_gb": LIMIT_GB,
        "memory_met": bool(peak_gb < LIMIT_GB),
    }
    if "peak_after_save_load_kb" in mem:
        both_gb = mem["peak_after_save_load_kb"] / 1024**2
        say(
            f"  fit, save and load: peak RSS {both_gb:.3f} GB; save {mem['save_seconds']:.1f} s "
            f"({mem['saved_gb']:.2f} GB written), load {mem['load_seconds']:.2f} s, loaded "
            f"lazily {mem['loaded_lazy']}, same coefficients {mem['loaded_same']}  "
            f"[commit {commit}]"
        )
        figures.update(
            peak_rss_save_load_gb=both_gb,
            save_seconds=mem["save_seconds"],
            load_seconds=mem["load_seconds"],
            saved_gb=mem["saved_gb"],
            loaded_lazy=bool(mem["loaded_lazy"]),
            loaded_same=bool(mem["loaded_same"]),
        )
    eq_n = args.equality_n or (20_000 if args.quick else 200_000)
    eq = equality(eq_n)
    say(
        f"equality, default fit of {eq_n:,} rows (3 components, 4 features; {eq['n_runs']} "
        f"run(s) continued): |ll_dask - ll_numpy| / |ll| = {eq['rel_diff']:.2e} (contract "
        f"1e-9); in memory {eq['in_memory_s']:.2f} s, Dask {eq['dask_s']:.2f} s  "
        f"[commit {commit}]"
    )
    figures.update(dask_rel_diff=eq["rel_diff"], equality_met=bool(eq["rel_diff"] <= 1e-9))
    return figures


if __name__ == "__main__":
    main()
