"""The GitHub Actions workflows pass actionlint, test every supported Python and run .ci/run's steps.

The supported Pythons are pyproject.toml's classifiers (the noxfile reads the same list); CI's
matrix, requires-python and the lock must follow them. actionlint comes from the test extra
(pyproject.toml); the test only runs the `actionlint` command.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (pyproject.toml's dependencies)
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
CLASSIFIER = "Programming Language :: Python :: "
# Oldest first, as nox.project.python_versions reads them for noxfile.py.
SUPPORTED = sorted(
    (
        c.removeprefix(CLASSIFIER)
        for c in PYPROJECT["project"]["classifiers"]
        if c.startswith(CLASSIFIER + "3.")
    ),
    key=lambda version: tuple(map(int, version.split("."))),
)
STEP = re.compile(r"nox -s (\w+)|\.ci/gate")
BROKEN = """
on: pull_request
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v5
      - run: echo "${{ github.event.pull_request.title }}"
      - run: nox -s tests
        if: ${{ matrix.shard == 1 }}
    needs: [no-such-job]
"""


def _actionlint() -> str:
    # The env's bin folder first: under nox it is not always on PATH.
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which(
        "actionlint"
    )
    if found is None:
        pytest.fail("actionlint is not installed: pip install -e '.[test]'")
    return found


def _lint(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_actionlint(), "-no-color", *args],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _workflow(name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / ".github" / "workflows" / name).read_text(encoding="utf-8"))


def _steps(commands: list[str]) -> list[str]:
    """The nox sessions and the gate that shell commands run, in order: ['lint', 'tests', 'gate']."""
    return [m.group(1) or "gate" for text in commands for m in STEP.finditer(text)]


def _ci_run_steps() -> list[str]:
    lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    return _steps([line for line in lines if not line.lstrip().startswith("#")])


def _job_steps(job: dict[str, Any]) -> list[str]:
    return _steps([step["run"] for step in job["steps"] if "run" in step])


def _matrix_job(jobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    found = [job for job in jobs.values() if "python" in job.get("strategy", {}).get("matrix", {})]
    assert len(found) == 1, "ci.yml needs one job with a `python` matrix"
    return found[0]


def test_supported_pythons_are_declared_once_and_followed():
    """Bug caught: 3.10 added to the classifiers while requires-python, the lock or the README stays
    at 3.11 (pip refuses the package, or the lock has no pins for 3.10's numpy/keras/jax)."""
    assert PYPROJECT["project"]["requires-python"] == f">={SUPPORTED[0]}"
    header = (REPO / "requirements.lock").read_text(encoding="utf-8")[:400]
    assert "--universal" in header and f"--python-version {SUPPORTED[0]} " in header, (
        "requirements.lock is not compiled for every supported Python: run `nox -s lock`"
    )
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"Python {SUPPORTED[0]}–{SUPPORTED[-1]}" in readme, "README states other Pythons"


def test_lint_runs_a_ruff_the_lock_pins():
    """Bug caught: the lock compiled without the lint extra, so `nox -s lint` has no pinned ruff and
    a new ruff release can turn CI red with no change here."""
    lock = (REPO / "requirements.lock").read_text(encoding="utf-8")
    assert re.search(r"^ruff==\d", lock, re.MULTILINE), (
        "requirements.lock pins no ruff: `nox -s lock`"
    )
    assert any(
        dep.startswith("ruff") for dep in PYPROJECT["project"]["optional-dependencies"]["lint"]
    )


def test_ci_tests_every_supported_python_with_that_python():
    """Bug caught: a version dropped from (or never added to) the matrix, or setup-python left at a
    fixed version, so all four jobs would test one Python."""
    job = _matrix_job(_workflow("ci.yml")["jobs"])
    assert [str(v) for v in job["strategy"]["matrix"]["python"]] == SUPPORTED
    setups = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/setup-python")]
    assert [s["with"]["python-version"] for s in setups] == ["${{ matrix.python }}"]
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert any('nox -s tests -- -m "not slow"' in run for run in runs), runs
    assert any(".nox/mnist-bench/bin/python" in run for run in runs), (
        "nothing checks the env's Python"
    )


def test_every_fixed_python_in_the_workflows_is_supported():
    """Bug caught: a job left on a Python the classifiers no longer list (or not yet listed)."""
    for path in WORKFLOWS:
        jobs = yaml.safe_load(path.read_text(encoding="utf-8"))["jobs"]
        for name, job in jobs.items():
            for step in job["steps"]:
                version = step.get("with", {}).get("python-version", "${{")
                assert version.startswith("${{") or version in SUPPORTED, (path.name, name, version)


def test_ci_full_job_runs_what_ci_run_runs():
    """Bug caught: lint (or the gate) run on GitHub and not by .ci/run, or the other way round, so a
    clean-clone CI run and GitHub's judge different things."""
    jobs = _workflow("ci.yml")["jobs"]
    full = [job for job in jobs.values() if "gate" in _job_steps(job)]
    assert len(full) == 1, "ci.yml needs one job that runs the gate"
    assert _ci_run_steps() == ["lint", "tests", "gate"]
    assert _job_steps(full[0]) == _ci_run_steps()


def test_step_reader_sees_a_dropped_step():
    """Bug caught: a reader that finds no steps would make the comparison above pass vacuously."""
    assert _steps(["python3 -m nox -s tests", "bash .ci/gate reports/gate"]) == ["tests", "gate"]
    assert _steps(["nox -s lint\nnox -s tests -- -q", "echo done"]) == ["lint", "tests"]


def test_workflows_pass_actionlint():
    done = _lint(*map(str, WORKFLOWS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_fails_a_broken_workflow():
    done = _lint("-", stdin=BROKEN)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no-such-job" in done.stdout  # an unknown job in needs
    assert "matrix" in done.stdout  # a matrix context where there is no matrix
    assert "github.event.pull_request.title" in done.stdout  # script injection
