"""Run every ``bench_*.py`` module of this folder in turn: ``python -m tests.benchmarks``.

Usage::

    python -m tests.benchmarks [--quick] [-k NAME ...] [--list] [--output FILE] [-- ARGS ...]

Modules are discovered by name, so a new ``bench_<name>.py`` exposing ``main(argv=None) -> dict``
is picked up without editing this file. A module may also declare ``TARGETS``, tuples
``(figure, "<=" or ">=", bound, what)``: the summary ends with each target, the figure reached
and whether it is met (figures, not pass/fail tests: these machines are shared and noisy).
``--quick`` is passed to every benchmark (smaller sizes, a smoke run); ``-k NAME``
(repeatable) keeps the benchmarks whose module name contains NAME; arguments after ``--`` are
passed unchanged to every selected benchmark. The figures each
benchmark returns are printed in a final summary and written to ``bench-results.json`` in the
current directory. Every benchmark's header, its figures in the summary and its targets carry
the commit it was measured on (``git rev-parse --short HEAD``, ``-dirty`` when tracked files
differ), read when that benchmark starts. Exit status 1 if a benchmark raised (the others still
run) or if ``-k`` selected nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import pkgutil
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._common import commit_label, environment_line, fmt_num, say, to_jsonable

PACKAGE = __spec__.parent if __spec__ is not None else "tests.benchmarks"
DEFAULT_OUTPUT = "bench-results.json"


def discover() -> list[str]:
    """Names (without package) of the ``bench_*`` modules in this folder, sorted."""
    here = [str(Path(__file__).resolve().parent)]
    return sorted(m.name for m in pkgutil.iter_modules(here) if m.name.startswith("bench_"))


def select(names: Sequence[str], keywords: Sequence[str] | None) -> list[str]:
    """Keep the names containing any of ``keywords`` (all names if none are given)."""
    if not keywords:
        return list(names)
    return [n for n in names if any(k in n for k in keywords)]


def targets(name: str) -> tuple[tuple[str, str, float, str], ...]:
    """The ``TARGETS`` a benchmark module declares (none if it declares none)."""
    return tuple(getattr(importlib.import_module(f"{PACKAGE}.{name}"), "TARGETS", ()))


def check_target(figures: dict[str, Any], key: str, op: str, bound: float) -> bool | None:
    """Whether ``figures[key] op bound`` holds; None when the figure is missing."""
    value = figures.get(key)
    if not isinstance(value, int | float):
        return None
    if op == "<=":
        return value <= bound
    if op == ">=":
        return value >= bound
    raise ValueError(f"unknown comparison {op!r} in a benchmark's TARGETS")


def run_one(name: str, argv: list[str]) -> tuple[dict[str, Any] | None, str | None, float]:
    """Import ``name`` and call its ``main(argv)``; return (figures, error, wall seconds)."""
    t0 = time.perf_counter()
    try:
        module = importlib.import_module(f"{PACKAGE}.{name}")
        main = getattr(module, "main", None)
        if not callable(main):
            raise TypeError(f"{name} has no main(argv=None) function")
        figures = main(argv)
        if figures is None:
            figures = {}
        if not isinstance(figures, dict):
            raise TypeError(f"{name}.main returned {type(figures).__name__}, expected a dict")
    except SystemExit as exc:  # argparse errors in the benchmark's own parser
        if exc.code in (0, None):
            return {}, None, time.perf_counter() - t0
        return None, f"SystemExit({exc.code})", time.perf_counter() - t0
    except Exception as exc:
        traceback.print_exc()
        return None, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0
    return figures, None, time.perf_counter() - t0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks; return the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks", description="Run the bayes_mlr benchmarks."
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    parser.add_argument(
        "-k",
        dest="keywords",
        action="append",
        metavar="NAME",
        help="run only benchmarks whose module name contains NAME (repeatable)",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--output",
        default=DEFAULT_OUTPUT,
        help=f"where to write the figures as JSON (default {DEFAULT_OUTPUT})",
    )
    args = parser.parse_args(argv)

    names = select(discover(), args.keywords)
    if args.list:
        for name in names:
            say(name)
        return 0
    if not names:
        say(f"no benchmark matches -k {args.keywords}; available: {', '.join(discover())}")
        return 1

    bench_argv = (["--quick"] if args.quick else []) + passthrough
    started = dt.datetime.now(dt.UTC)
    results: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for name in names:
        commit = commit_label()
        say("")
        say("=" * 100)
        say(f"{name}  {' '.join(bench_argv)}".rstrip() + f"  (commit {commit})")
        say("=" * 100)
        figures, error, seconds = run_one(name, bench_argv)
        if error is not None:
            errors[name] = error
            say(f"!! {name} failed: {error}")
        results[name] = {
            "commit": commit,
            "figures": figures,
            "error": error,
            "wall_seconds": seconds,
        }

    say("")
    say("=" * 100)
    say("Summary")
    say("=" * 100)
    for name, entry in results.items():
        status = "FAILED: " + entry["error"] if entry["error"] else "ok"
        say(f"{name} (commit {entry['commit']}, {entry['wall_seconds']:.1f} s wall): {status}")
        for key, value in (entry["figures"] or {}).items():
            say(f"    {key:<36} {fmt_num(value, digits=10)}")

    say("")
    quick_note = " (--quick sizes: not the sizes the targets are set for)" if args.quick else ""
    say("Targets" + quick_note)
    for name, entry in results.items():
        for key, op, bound, what in targets(name):
            met = check_target(entry["figures"] or {}, key, op, bound)
            value = (entry["figures"] or {}).get(key)
            verdict = {True: "met", False: "NOT met", None: "not measured"}[met]
            shown = fmt_num(value, digits=4) if value is not None else "-"
            say(
                f"    {what:<52} {shown:>10} {op} {fmt_num(bound, digits=4):<8} {verdict:<12} "
                f"commit {entry['commit']}"
            )
            entry.setdefault("targets", {})[key] = {"op": op, "bound": bound, "met": met}

    payload = {
        "started_utc": started.isoformat(timespec="seconds"),
        "argv": argv + (["--", *passthrough] if passthrough else []),
        "environment": environment_line(),
        "commit_at_end": commit_label(),
        "benchmarks": results,
    }
    out = Path(args.output)
    out.write_text(json.dumps(to_jsonable(payload), indent=2) + "\n")
    say(f"figures written to {out.resolve()}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
