"""The layout's rules: imports run one way, down the floors, without cycles; only bench.measure
imports TensorFlow or Keras.

The framework checks run in a fresh interpreter, since this test process may have imported
TensorFlow already. The direction checks read every import statement (function-level ones too)
from the source with ``ast``, so they need no framework and see imports that only run late.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

import bench

REPO = Path(__file__).resolve().parent.parent
FRAMEWORKS = ("tensorflow", "keras", "jax", "torch")
MEASURING = "bench.measure"

# The floors, lowest first: a module may import its own package and any package on a lower floor,
# never one on its own floor or above. docs/layout.md draws the same picture.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("mnist_models",),  # data and the reference model
    (
        "bench.stats",
        "bench.outputs",
        "bench.envinfo",
    ),  # pure statistics, file writing, machine facts
    ("bench.plan",),  # what to measure: variants, profiles, settings, gate variants
    ("bench.measure",),  # inside one job's process: the only framework code
    ("bench.records",),  # the record format
    ("bench.run",),  # processes: jobs, paired sets, turns, the gate's rounds and REF environment
    ("bench.report",),  # reports from records
    ("bench.gate",),  # the regression gates: rules, tables, the `regress` flow
    ("bench.cli", "bench.gate_probe", "bench"),  # entry points: the CLI, the gate's probe
    ("bench.__main__",),  # `python -m bench` runs the CLI
)


# Narrower than the floors: what a package may import besides itself (the rule for measure:
# it returns plain data and never writes, so not even the base floor's outputs).
ONLY: dict[str, set[str]] = {
    "bench.measure": {"mnist_models", "bench.plan", "bench.stats", "bench.envinfo"},
}


def package_of(module: str) -> str:
    """The FLOORS entry that `module` belongs to (the longest matching prefix)."""
    names = [name for floor in FLOORS for name in floor]
    matches = [n for n in names if module == n or module.startswith(n + ".")]
    if not matches:
        raise KeyError(f"{module} is on no floor: add it to FLOORS (and docs/layout.md)")
    return max(matches, key=len)


def floor_of(module: str) -> int:
    package = package_of(module)
    return next(i for i, floor in enumerate(FLOORS) if package in floor)


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the nodes under ``if TYPE_CHECKING:``: annotations only, never run."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skipped


def imports_of(source: str, module: str, known: set[str], is_package: bool = False) -> set[str]:
    """Every module of `known` that `source` imports at run time, at any depth of the code.

    ``from bench.x import y`` is the module bench.x.y when that is one, else bench.x.
    """
    tree = ast.parse(source)
    skipped = _type_checking_only(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, module, is_package)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in found if m in known and m != module}


def project_graph(root: Path = REPO) -> dict[str, set[str]]:
    """{module: project modules it imports} for every module of bench/ and mnist_models/."""
    files = {
        _module_name(p, root): p
        for package in ("bench", "mnist_models")
        for p in sorted((root / package).rglob("*.py"))
    }
    known = set(files)
    return {
        module: imports_of(
            path.read_text(encoding="utf-8"), module, known, path.name == "__init__.py"
        )
        for module, path in files.items()
    }


def upward_imports(graph: Mapping[str, set[str]]) -> list[str]:
    """'a -> b' for each import of a module on the same floor (another package) or a higher one,
    or of a package its ONLY entry leaves out."""
    bad = []
    for module, targets in graph.items():
        for target in sorted(targets):
            if package_of(target) == package_of(module) or target == "bench":
                continue
            allowed = ONLY.get(package_of(module))
            if floor_of(target) >= floor_of(module) or (
                allowed is not None and package_of(target) not in allowed
            ):
                bad.append(f"{module} -> {target}")
    return bad


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Every import cycle, each as the modules on it (found by depth-first search)."""
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_every_module_sits_on_a_floor():
    for module in project_graph():
        package_of(module)  # raises naming the module that is on none


def test_imports_run_down_the_floors():
    assert upward_imports(project_graph()) == []


def test_there_is_no_import_cycle():
    assert cycles(project_graph()) == []


def test_no_two_modules_share_a_name():
    # Two `ab.py` (a pure rule and a process driver) once read as one thing; names say the role.
    names = [p.name for p in (REPO / "bench").rglob("*.py") if p.name != "__init__.py"]
    assert sorted({n for n in names if names.count(n) > 1}) == []


MAX_FUNCTION_LINES = 60


def test_no_function_runs_over_60_lines():
    # A newcomer reads a function in one screen; past that, it is several steps without names.
    long = []
    for path in [*(REPO / "bench").rglob("*.py"), *(REPO / "scripts").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.name} ({lines} lines)")
    assert long == []


def test_docs_layout_names_every_module():
    # docs/layout.md once left out measure/memory.py and measure/gpus.py.
    text = (REPO / "docs/layout.md").read_text(encoding="utf-8")
    paths = [*(REPO / "bench").rglob("*.py"), *(REPO / "mnist_models").glob("*.py")]
    missing = [
        str(p.relative_to(REPO))
        for p in paths
        if p.name != "__init__.py" and f"`{p.name}`" not in text and f"`bench/{p.name}`" not in text
    ]
    assert missing == []


def test_the_direction_check_sees_an_upward_import_and_a_cycle(tmp_path):
    # Guards the two tests above against passing vacuously: a copy of the tree with one upward
    # import (measure -> run) that also closes a cycle (run.worker already imports measure.train).
    for package in ("bench", "mnist_models"):
        for path in (REPO / package).rglob("*.py"):
            dst = tmp_path / path.relative_to(REPO)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    train = tmp_path / "bench/measure/train.py"
    train.write_text(train.read_text() + "\nfrom bench.run import worker  # upward\n")
    graph = project_graph(tmp_path)
    assert upward_imports(graph) == ["bench.measure.train -> bench.run.worker"]
    assert any("bench.run.worker" in c and "bench.measure.train" in c for c in cycles(graph))


def _modules_outside_measure() -> list[str]:
    names = [
        m.name
        for m in pkgutil.walk_packages(bench.__path__, prefix="bench.")
        # bench.__main__ runs the CLI; the CLI tests below cover it.
        if not (m.name.startswith(MEASURING) or m.name == "bench.__main__")
    ]
    return [*sorted(names), "mnist_models", "mnist_models.data", "mnist_models.spec"]


def _frameworks_after(code: str) -> list[str]:
    """Framework packages in sys.modules after running `code` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_subpackages_follow_the_pipeline():
    packages = {m.name for m in pkgutil.iter_modules(bench.__path__) if m.ispkg}
    assert packages == {"plan", "run", "measure", "report", "gate"}


@pytest.mark.parametrize("module", _modules_outside_measure())
def test_no_framework_is_imported_outside_measure(module):
    assert _frameworks_after(f"import {module}") == [], f"{module} imports a framework"


@pytest.mark.parametrize(
    "argv",
    [
        ["profiles"],
        ["run", "--profile", "quick", "--list"],
        ["report", "tests/fixtures/records.jsonl", "--out", "{tmp}", "--format", "csv"],
        ["compare", "tests/fixtures/records.jsonl", "tests/fixtures/records.jsonl"],
        [
            "merge",
            "tests/fixtures/records.jsonl",
            "-o",
            "{tmp}/merged.jsonl",
        ],
    ],
    ids=lambda argv: argv[0],
)
def test_cli_commands_that_only_read_start_without_a_framework(argv, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code = (
        "import contextlib, io\nfrom bench.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n    assert main({args!r}) == 0"
    )
    assert _frameworks_after(code) == []


@pytest.mark.slow  # its child imports Keras and TensorFlow
def test_the_check_itself_sees_a_framework_import():
    # Guards the test above against passing vacuously (e.g. a broken probe).
    assert "keras" in _frameworks_after("import mnist_models.mlp")
