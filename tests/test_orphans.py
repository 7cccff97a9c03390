"""Nothing outlives a runner killed with SIGKILL: no worker, no multi_worker process, no temp dir."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _processes() -> dict[int, tuple[int, str]]:
    """pid → (parent pid, command line) of every process we can see."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":  # a zombie has exited already
            found[int(entry)] = (int(fields[1]), cmdline)
    return found


def _workers_of(parent: int) -> dict[int, str]:
    return {
        pid: cmd
        for pid, (ppid, cmd) in _processes().items()
        if ppid == parent and "bench.run.worker" in cmd
    }


def _job_dir(cmdline: str) -> Path:
    (job,) = [arg for arg in cmdline.split() if arg.endswith("job.json")]
    return Path(job).parent


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(("strategy", "workers"), [("default", 1), ("multi_worker", 2)])
def test_sigkill_of_the_runner_leaves_no_worker_and_no_temp_dir(tmp_path, strategy, workers):
    env = os.environ | {"PYTHONPATH": str(REPO)}
    runner = subprocess.Popen(
        [sys.executable, "-m", "tests.hang_run", str(tmp_path / "r.jsonl"), strategy],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 60
        while len(started) < workers and time.monotonic() < deadline:
            started = _workers_of(runner.pid)
            time.sleep(0.1)
        assert len(started) == workers, "the workers did not start"
        time.sleep(2)  # well into the job (the worker is importing TensorFlow or hanging)
        job_dir = _job_dir(next(iter(started.values())))
        assert job_dir.is_dir()
        runner.send_signal(signal.SIGKILL)
        runner.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = {p: c for p, (_, c) in _processes().items() if str(job_dir) in c}
            if not left and not job_dir.exists():
                break
            time.sleep(0.1)
        assert not left, f"still running after the runner was killed: {left}"
        assert not job_dir.exists(), f"{job_dir} was left behind"
    finally:
        if runner.poll() is None:
            runner.kill()
        alive = _processes()
        for pid, cmd in started.items():  # only the workers this test started, if any survived
            if alive.get(pid, (0, ""))[1] == cmd:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
