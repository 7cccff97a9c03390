"""The layout's one rule: only bench.measure imports TensorFlow or Keras.

Each check runs in a fresh interpreter, since this test process may have imported TensorFlow already.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import bench

REPO = Path(__file__).resolve().parent.parent
FRAMEWORKS = ("tensorflow", "keras", "jax", "torch")
MEASURING = "bench.measure"


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


def test_the_check_itself_sees_a_framework_import():
    # Guards the test above against passing vacuously (e.g. a broken probe).
    assert "keras" in _frameworks_after("import mnist_models.mlp")
