"""Ctrl-C during a matrix keeps every finished record, and the printed hint, followed
literally, continues from there."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.records import read_records, variant_records
from tests.conftest import CACHE, REPO

pytestmark = pytest.mark.slow


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench", "run", "--profile", "quick", "--set", "batch_size=2048",
            "--set", "validation=end_only", "--set", "repeats=3", "--no-report", *args]  # fmt: skip


# Loaded by the CLI's interpreter at start-up (a sitecustomize on its PYTHONPATH): the moment the
# run's first variant record is on disk, the CLI sends itself SIGINT, as a Ctrl-C would. The
# variable is popped, so the workers it starts (and the resumed run) are never interrupted.
INTERRUPT_AFTER_FIRST_RECORD = """
import os

if os.environ.pop("MNIST_BENCH_TEST_INTERRUPT", None):
    import signal

    from bench import records

    original = records.append_records

    def append_then_interrupt(path, batch):
        original(path, batch)
        if any(record["kind"] == "variant" for record in batch):
            records.append_records = original
            os.kill(os.getpid(), signal.SIGINT)

    records.append_records = append_then_interrupt
"""


def test_ctrl_c_keeps_records_and_the_printed_hint_finishes_the_rest(tmp_path: Path):
    # Catches a Ctrl-C that loses or rewrites the record finished just before it, and a hint whose
    # --resume reruns that job or skips one: interrupted right after the first record, exactly
    # one is kept, and the resumed run adds exactly the other two (no timing race on the count).
    out = tmp_path / "my run"  # a space: the hint must quote it
    env = os.environ | {"MNIST_BENCH_CACHE": str(CACHE.parent), "PYTHONPATH": str(REPO)}
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(INTERRUPT_AFTER_FIRST_RECORD)
    first_env = env | {"PYTHONPATH": f"{site}{os.pathsep}{REPO}", "MNIST_BENCH_TEST_INTERRUPT": "1"}
    # A shell that starts a job in the background (`cmd &`) leaves SIGINT ignored, and Python keeps
    # an ignored SIGINT ignored: give the CLI the default disposition, as a terminal would.
    proc = subprocess.run(_cli("--out", str(out)), cwd=tmp_path, env=first_env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                          check=False)  # fmt: skip
    output = proc.stdout
    assert proc.returncode == 130, output
    assert "interrupted: everything finished so far is in" in output
    results = out / "results.jsonl"
    kept = variant_records(read_records(results))
    assert [r["repeat"] for r in kept] == [0]

    hint = output.split("continue with: ", 1)[1].strip()
    argv = shlex.split(hint)
    assert argv[:3] == ["python", "-m", "bench"]  # started as python -m bench
    assert argv[3:] == _cli("--out", str(out), "--resume")[3:]
    done = subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, env=env, text=True,
                          capture_output=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    final = variant_records(read_records(results))
    assert sorted(r["repeat"] for r in final) == [0, 1, 2]
    assert final[:1] == kept  # the interrupted run's record is untouched
