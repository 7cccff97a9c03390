"""Ctrl-C during a matrix keeps every finished record, and the printed hint, followed
literally, continues from there."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.records import read_records, variant_records
from tests.conftest import CACHE, REPO

pytestmark = pytest.mark.slow


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench", "run", "--profile", "quick", "--set", "batch_size=2048",
            "--set", "validation=end_only", "--set", "repeats=3", "--no-report", *args]  # fmt: skip


def test_ctrl_c_keeps_records_and_the_printed_hint_finishes_the_rest(tmp_path: Path):
    out = tmp_path / "my run"  # a space: the hint must quote it
    env = os.environ | {"MNIST_BENCH_CACHE": str(CACHE.parent), "PYTHONPATH": str(REPO)}
    # A shell that starts a job in the background (`cmd &`) leaves SIGINT ignored, and Python keeps
    # an ignored SIGINT ignored: give the CLI the default disposition, as a terminal would.
    proc = subprocess.Popen(_cli("--out", str(out)), cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    results = out / "results.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # wait for the first variant record, then interrupt
        if results.exists() and '"kind": "variant"' in results.read_text():
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "interrupted: everything finished so far is in" in output
    kept = variant_records(read_records(results))
    assert 1 <= len(kept) < 3

    hint = output.split("continue with: ", 1)[1].strip()
    argv = shlex.split(hint)
    assert argv[:3] == ["python", "-m", "bench"]  # started as python -m bench
    assert argv[3:] == _cli("--out", str(out), "--resume")[3:]
    done = subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, env=env, text=True,
                          capture_output=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    final = variant_records(read_records(results))
    assert sorted(r["repeat"] for r in final) == [0, 1, 2]
    assert final[: len(kept)] == kept  # the interrupted run's records are untouched
