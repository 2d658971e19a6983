"""The package's layout: layers by subpackage, no import circles, a light ``import bayes_mlr``.

Imports are read from the source (``ast``), function-level (lazy) imports included, so a circle
that only closes at call time is caught too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bayes_mlr"
LAYERS = ("core", "frequentist", "bayes", "workflow")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere in its source)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bayes_mlr"):
                assert node.level == 0, f"{name}: relative import"
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    found.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("bayes_mlr")}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt, [*stack, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_no_import_circles():
    cycle = _cycle(_imports(_modules()))
    assert cycle is None, " -> ".join(cycle)


def test_every_module_lives_in_a_layer_or_the_top_level_kernel():
    # A layer may hold one level of subpackages (core/components, core/mixing), no deeper.
    for name in _modules():
        parts = name.split(".")
        assert len(parts) <= 4, name
        if len(parts) >= 3:
            assert parts[1] in LAYERS, name


def test_numpy_layers_never_import_the_pymc_modules_at_import_time():
    """Top level, core and frequentist may reach the Bayesian layer only inside functions."""
    modules = _modules()
    for name, path in modules.items():
        if name.split(".")[1:2] in (["bayes"], ["workflow"]):
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(("bayes_mlr.bayes", "bayes_mlr.workflow")), (
                    name,
                    node.module,
                )


def test_import_is_light():
    code = (
        "import sys, bayes_mlr, bayes_mlr.core, bayes_mlr.frequentist, bayes_mlr.bayes, "
        "bayes_mlr.bayes.priors, bayes_mlr.bayes.starts; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pymc', 'pytensor', 'arviz', 'xarray', 'matplotlib', 'sklearn', 'numba')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
