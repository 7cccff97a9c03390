"""`.ci/gate`, the gate step both CI scripts call: what each outcome of `regress` means for CI.

A stand-in `nox` (first on PYTHONPATH) plays `nox -s regress`: it writes the gate record the test
gives it and exits as nox does (1 for any failure), so only the script's reading is tested.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_gate_regress import _copy_tree, _git

REPO = Path(__file__).resolve().parent.parent

FAKE_NOX = """
import json, os, sys
args = sys.argv[1:]
out = args[args.index("--json") + 1]
with open(os.environ["CALLS"], "a") as calls:
    calls.write(json.dumps(args) + "\\n")
doc = json.loads(os.environ["RECORD"])
if doc is not None:
    with open(out, "w") as fh:
        json.dump(doc, fh)
sys.exit(0 if doc and doc["exit_code"] == 0 else 1)
"""


def _gate(tmp_path: Path, record: dict | None, *args: str) -> subprocess.CompletedProcess:
    fake = tmp_path / "fake" / "nox"
    fake.mkdir(parents=True, exist_ok=True)
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text(FAKE_NOX)
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path / "fake"),
        "RECORD": json.dumps(record),
        "CALLS": str(tmp_path / "calls.jsonl"),
    }
    return subprocess.run(
        ["bash", str(REPO / ".ci/gate"), str(tmp_path / "out"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def _record(code: int, side: str | None = None, reason: str = "", cause: str | None = None) -> dict:
    doc: dict = {"schema": "mnist-bench/gate-result", "schema_version": 2, "exit_code": code}
    if code == 2:
        doc["cannot_judge"] = {"side": side, "reason": reason}
        if cause is not None:
            doc["cannot_judge"]["cause"] = cause
    return doc


def _v1(side: str | None, reason: str) -> dict:
    """A gate record of version 1: cannot_judge without a cause."""
    return _record(2, side, reason) | {"schema_version": 1}


def _stored(code: int) -> dict:
    """A record of the retired stored-baseline gate (docs/records.md, "Gate records"), trimmed."""
    verdict = {0: "pass", 1: "REGRESSION", 2: "too noisy"}[code]
    row = {"variant": "bs32-float32", "baseline_ratio": 1.0, "current_ratio": 1.0, "change": 0.0,
           "threshold": 0.15, "verdict": verdict}  # fmt: skip
    return {
        "schema": "mnist-bench/gate-result", "schema_version": 2, "mode": "stored-baseline",
        "exit_code": code, "created_utc": "2026-12-01T00:00:00+00:00",
        "baseline": "reports/baseline/gate.json", "updated": False, "machine": {}, "rows": [row],
        "measured": {"rounds": 9, "variants": {}},
    }  # fmt: skip


DATA_FAILED = (
    "REF could not be measured: A (REF 1234abcd): probe failed: MnistDataError: MNIST could not "
    "be loaded. Tried: cache .cache/mnist.npz: not present"
)


@pytest.mark.parametrize(
    ("record", "expected", "said"),
    [
        (_record(0), 0, "ci: step-time gate passed"),
        (_record(1), 1, "found a REGRESSION"),
        (_record(2, "B", "probe exited 1", "probe"), 1, "could not judge (cause probe, B side)"),
        (_record(2, "A", "its environment could not be built", "ref-build"), 0, "not failing CI"),
        (_record(2, "A", "predates the entry point", "ref-entry-point"), 0, "not failing CI"),
        (_record(2, "A", DATA_FAILED, "data"), 1, "could not judge (cause data, A side)"),
        (_record(2, "A", "probe killed after 900 s", "probe"), 1, "cause probe, A side"),
        (_record(2, None, "no REF: git fetch --unshallow", "no-ref"), 1, "git fetch --unshallow"),
        (_record(2, None, "MNIST could not be loaded", "data"), 1, "cause data, neither side"),
        (_record(2, None, "KeyError: 'x'", "harness"), 1, "cause harness"),
        (_record(2, None, "too noisy", "noisy"), 0, "could not judge (cause noisy, neither side)"),
        (_record(2, "B", "not measured on both sides: w", "missing"), 1, "cause missing, B side"),
        (_v1("A", "REF 12 (HEAD~1) predates the A/B gate's entry point"), 0, "ref-entry-point"),
        (_v1("A", DATA_FAILED), 1, "could not judge (cause data, A side)"),
        (_v1(None, "something new"), 1, "cause harness"),
        (_stored(0), 0, "ci: step-time gate passed"),
        (_stored(1), 1, "found a REGRESSION"),
        (_stored(2), 1, "cause harness, neither side"),
        (None, 1, "the step-time gate did not run"),
    ],
    ids=[
        "pass", "regression", "working-tree-probe-failed", "ref-build-failed", "ref-too-old",
        "ref-data-failed", "ref-probe-failed", "no-ref", "data", "harness", "noisy", "missing",
        "v1-ref-too-old", "v1-ref-data-failed", "v1-unknown", "stored-pass", "stored-regression",
        "stored-noisy", "no-record",
    ],
)  # fmt: skip
def test_each_outcome_means_one_thing_for_ci(tmp_path, record, expected, said):
    # Catches: CI going green on a cannot-judge that is no fault of REF's (the fresh clone whose
    # REF process found no MNIST passed CI unjudged), or a cause in REF itself turning CI red; and
    # a record of the retired stored-baseline gate no longer read (its noisy exit 2 has no cause:
    # never a pass).
    done = _gate(tmp_path, record, "--against", "origin/main")
    assert done.returncode == expected, done.stdout + done.stderr
    assert said in done.stdout
    (call,) = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert call[:4] == ["-s", "regress", "--", "--against"]
    assert call[-5:] == ["--json", str(tmp_path / "out/gate.json"), "--markdown",
                         str(tmp_path / "out/gate.md"), "--force"]  # fmt: skip


def test_it_runs_twice_in_one_checkout_and_never_reads_an_old_record(tmp_path):
    # Catches: a second run refused for the first run's outputs, or judged by its stale record.
    assert _gate(tmp_path, _record(0)).returncode == 0
    (tmp_path / "out/gate.md").write_text("an earlier table")
    assert _gate(tmp_path, _record(0)).returncode == 0
    assert _gate(tmp_path, None).returncode == 1  # the first runs' gate.json is not reused


def test_both_ci_scripts_call_it():
    assert "bash .ci/gate reports/gate" in (REPO / ".ci/run").read_text()
    assert 'bash .ci/gate gate "${against[@]}"' in (REPO / ".github/workflows/ci.yml").read_text()


def test_a_shallow_clone_fails_ci_and_says_to_fetch_the_history(tmp_path):
    # The real gate in a one-commit shallow clone (CI's default checkout), its record fed to
    # .ci/gate. Catches: no REF to compare against ending as a green "could not judge".
    root = tmp_path / "repo"
    root.mkdir()
    _copy_tree(root)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "one")
    (root / "README.md").write_text("two\n")
    _git(root, "commit", "-qam", "two")
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", "--depth", "1", root.as_uri(), str(clone))
    done = subprocess.run(
        [sys.executable, "-m", "bench", "regress", "--json", "gate.json"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(clone)},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    record = json.loads((clone / "gate.json").read_text())
    assert record["cannot_judge"]["cause"] == "no-ref"
    ci = _gate(tmp_path, record)
    assert ci.returncode == 1, ci.stdout + ci.stderr
    assert "shallow clone" in ci.stdout and "git fetch --unshallow" in ci.stdout
