"""Nothing outlives a runner killed with SIGKILL: no worker, no multi_worker process, no temp dir."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


# Only so that a broken build fails instead of hanging CI: no assertion is about how long
# anything takes. Each wait ends on an event (a file appears, a process exits).
HANG_GUARD_S = 600


def _wait_for(condition: Callable[[], Any], what: str) -> Any:
    """Poll `condition` until it holds; fail (never hang) after HANG_GUARD_S."""
    end = time.monotonic() + HANG_GUARD_S
    while not (found := condition()):
        assert time.monotonic() < end, f"{what}: not after {HANG_GUARD_S} s"
        time.sleep(0.1)
    return found


def _wait_exit(pid: int, cmdline: str) -> None:
    """Block until process `pid` exits (a pidfd becomes readable then); fail after the guard."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # gone already
    try:
        ready, _, _ = select.select([fd], [], [], HANG_GUARD_S)
        assert ready, f"still running after the runner was killed: {pid} {cmdline}"
    finally:
        os.close(fd)


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="waits on pidfds (Linux 5.3+)")
@pytest.mark.parametrize(("strategy", "workers"), [("default", 1), ("multi_worker", 2)])
def test_sigkill_of_the_runner_leaves_no_worker_and_no_temp_dir(tmp_path, strategy, workers):
    """Bugs: a worker that does not ask to die with its parent (or asks too late), a multi_worker
    process left out of that, or a job's temp dir whose janitor does not outlive the runner."""
    temp = tmp_path / "tmp"  # the runner's job dirs land here, so this test finds its own
    temp.mkdir()
    env = os.environ | {"PYTHONPATH": str(REPO), "TMPDIR": str(temp)}
    runner = subprocess.Popen(
        [sys.executable, "-m", "tests.hang_run", str(tmp_path / "r.jsonl"), strategy],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ours: dict[int, str] = {}
    try:
        # Each worker marks the hook it hangs in: it has imported the framework and is training.
        markers = _wait_for(
            lambda: len(found := list(temp.glob("*/hanging-*"))) == workers and found,
            f"{workers} worker(s) reaching the hanging hook",
        )
        (job_dir,) = {m.parent for m in markers}
        ours = {pid: cmd for pid, (_, cmd) in _processes().items() if str(job_dir) in cmd}
        hanging = {int(m.name.removeprefix("hanging-")) for m in markers}
        assert hanging <= set(ours) and len(ours) > workers  # the workers and the janitor
        runner.send_signal(signal.SIGKILL)
        runner.wait()
        for pid, cmd in ours.items():  # the janitor removes the dir before it exits
            _wait_exit(pid, cmd)
        assert not job_dir.exists(), f"{job_dir} was left behind"
    finally:
        if runner.poll() is None:
            runner.kill()
        alive = _processes()
        for pid, cmd in ours.items():  # only the processes this test started, if any survived
            if alive.get(pid, (0, ""))[1] == cmd:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
