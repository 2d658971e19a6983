"""Shared helpers for the benchmark modules: argument parsing, timing and printing.

Every ``bench_*.py`` module in this folder exposes ``main(argv=None) -> dict`` returning its key
figures (JSON-serialisable scalars); :mod:`tests.benchmarks.__main__` runs them all. Timings on a
shared machine are noisy, so benchmarks report ratios against a baseline measured in the same
run rather than absolute seconds alone. Every figure is printed with the commit it was measured
on (:func:`commit_label`).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Timing",
    "add_peer_arguments",
    "add_sampling_arguments",
    "base_parser",
    "commit_label",
    "environment_line",
    "fmt_num",
    "peer_sizes",
    "print_table",
    "sampling_sizes",
    "say",
    "time_call",
    "to_jsonable",
]


def base_parser(description: str, prog: str | None = None) -> argparse.ArgumentParser:
    """An :class:`argparse.ArgumentParser` with the options every benchmark accepts.

    ``--quick`` asks for smaller problem sizes (a smoke run of the harness); each benchmark
    decides what that means for it.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes and fewer repeats (smoke run)"
    )
    return parser


def add_peer_arguments(parser: argparse.ArgumentParser, *, default_n: int, quick_n: int) -> None:
    """The options of a benchmark against an R peer: ``--n``, ``--repeats``, ``--no-r`` and
    ``--r-timeout``."""
    parser.add_argument(
        "--n", type=int, default=None, help=f"rows (default {default_n}; {quick_n} with --quick)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed bayes_mlr fits after one warm-up (default 3; 1 with --quick)",
    )
    parser.add_argument("--no-r", action="store_true", help="skip the R reference fits")
    parser.add_argument(
        "--r-timeout",
        type=float,
        default=3600.0,
        help="seconds before the Rscript run is abandoned (default 3600)",
    )


def peer_sizes(parser: argparse.ArgumentParser, args, *, default_n: int, quick_n: int):
    """``(n, repeats)`` from the options of :func:`add_peer_arguments`."""
    n = args.n if args.n is not None else (quick_n if args.quick else default_n)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if repeats < 1 or n < 100:
        parser.error("--repeats must be at least 1 and --n at least 100")
    return n, repeats


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a posterior benchmark against the hand-written ``pm.NormalMixture``
    baseline (``bench_sampling``, ``bench_gibbs``): the problem's size, the like-for-like runs
    and which baselines to skip."""
    parser.add_argument("--n", type=int, default=None, help="rows (default 20000; quick 2000)")
    parser.add_argument("--draws", type=int, default=None, help="kept draws per chain")
    parser.add_argument(
        "--tune", type=int, default=None, help="tuning (burn-in) iterations per chain"
    )
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument(
        "--runs",
        type=int,
        default=None,
        help="like-for-like pairs (ours, baseline on the same cores); default 3, quick 1",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip every baseline run")
    parser.add_argument(
        "--no-pymc-default",
        action="store_true",
        help="skip the secondary baseline on PyMC's default number of cores",
    )


def sampling_sizes(args) -> tuple[int, int, int, int, int]:
    """``(n, draws, tune, chains, runs)`` from the options of :func:`add_sampling_arguments`."""
    n = args.n or (2000 if args.quick else 20_000)
    draws = args.draws or (200 if args.quick else 1000)
    tune = args.tune if args.tune is not None else (200 if args.quick else 1000)
    runs = args.runs or (1 if args.quick else 3)
    return n, draws, tune, args.chains, runs


def say(*parts: Any) -> None:
    """print() and flush, so progress shows up while long fits run."""
    print(*parts, flush=True)


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of repeated calls (warm-up calls excluded)."""

    seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        return min(self.seconds)

    def describe(self) -> str:
        runs = ", ".join(f"{s:.3f}" for s in self.seconds)
        return (
            f"median {self.median:.3f} s, best {self.best:.3f} s over {len(self.seconds)} ({runs})"
        )


def time_call[T](func: Callable[[], T], *, repeats: int, warmup: int = 1) -> tuple[Timing, T]:
    """Call ``func`` ``warmup`` times untimed, then ``repeats`` times timed.

    Returns the timings (``time.perf_counter`` wall clock) and the result of the last call.
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    for _ in range(warmup):
        func()
    seconds = []
    result: T
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = func()
        seconds.append(time.perf_counter() - t0)
    return Timing(tuple(seconds)), result


REPO_ROOT = Path(__file__).resolve().parents[2]


def commit_label() -> str:
    """The commit the working tree is at, as ``git rev-parse --short HEAD``, with ``-dirty``
    appended when tracked files differ from it (git's own ``--dirty`` rule: untracked files do
    not count); ``"unknown"`` outside a git checkout.

    Read afresh on every call: others may commit while a long ``make bench`` runs.
    """

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
        )

    try:
        head = git("rev-parse", "--short", "HEAD")
        if head.returncode != 0:
            return "unknown"
        dirty = git("diff", "--quiet", "HEAD", "--").returncode != 0
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty else "")


def environment_line() -> str:
    """One line describing where the numbers were measured (commit, CPU count, load,
    versions)."""
    try:
        load = "load avg " + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        load = "load avg n/a"
    return (
        f"commit {commit_label()}, Python {platform.python_version()}, numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs, {load}, {platform.machine()} {sys.platform}"
    )


def fmt_num(value: Any, digits: int = 6) -> str:
    """Format a figure for a table: floats with ``digits`` significant digits, None as "n/a"."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isnan(v):
            return "nan"
        if v != 0 and (abs(v) >= 1e7 or abs(v) < 1e-3):
            return f"{v:.{min(digits, 6) - 1}e}"
        return f"{v:.{digits}g}" if abs(v) < 10**digits else f"{v:.1f}"
    return str(value)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a plain-text table; cells are formatted with :func:`fmt_num`."""
    cells = [[fmt_num(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(
        h.ljust(w) if i == 0 else h.rjust(w)
        for i, (h, w) in enumerate(zip(headers, widths, strict=True))
    )
    say(line)
    say("  ".join("-" * w for w in widths))
    for row in cells:
        say(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays (recursively) to plain Python for :mod:`json`; NaN/inf to
    None so the output is strict JSON."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer | int):
        return int(value)
    if isinstance(value, np.floating | float):
        v = float(value)
        return v if math.isfinite(v) else None
    return value
