"""The GitHub Actions workflows pass actionlint, and actionlint does fail a broken workflow.

actionlint comes from the test extra (pyproject.toml); the test only runs the `actionlint` command.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
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


def test_both_workflows_exist():
    assert {p.name for p in WORKFLOWS} == {"ci.yml", "bench-matrix.yml"}


def test_workflows_pass_actionlint():
    done = _lint(*map(str, WORKFLOWS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_fails_a_broken_workflow():
    done = _lint("-", stdin=BROKEN)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no-such-job" in done.stdout  # an unknown job in needs
    assert "matrix" in done.stdout  # a matrix context where there is no matrix
    assert "github.event.pull_request.title" in done.stdout  # script injection
