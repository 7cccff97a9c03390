"""`.ci/gate`, the gate step both CI scripts call: what each outcome of `regress` means for CI.

A stand-in `nox` (first on PYTHONPATH) plays `nox -s regress`: it writes the gate record the test
gives it and exits as nox does (1 for any failure), so only the script's reading is tested.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

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


def _record(code: int, side: str | None = None, reason: str = "") -> dict:
    doc: dict = {"schema": "mnist-bench/gate-result", "schema_version": 1, "exit_code": code}
    if code == 2:
        doc["cannot_judge"] = {"side": side, "reason": reason}
    return doc


@pytest.mark.parametrize(
    ("record", "expected", "said"),
    [
        (_record(0), 0, "ci: step-time gate passed"),
        (_record(1), 1, "found a REGRESSION"),
        (_record(2, "B", "probe exited 1"), 1, "the working tree's own gate probe failed"),
        (_record(2, "A", "REF's environment could not be built"), 0, "not failing CI for it"),
        (_record(2, None, "too noisy"), 0, "could not judge (neither side): too noisy"),
        (None, 1, "the step-time gate did not run"),
    ],
    ids=["pass", "regression", "working-tree-probe-failed", "ref-failed", "noisy", "no-record"],
)
def test_each_outcome_means_one_thing_for_ci(tmp_path, record, expected, said):
    # Catches: an exit 2 from the working tree's own probe passing CI (it is the change's to fix),
    # or a REF-side failure turning CI red (the old .ci/run and ci.yml disagreed on exactly this).
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
