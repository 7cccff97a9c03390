"""One job in a fresh interpreter: the worker's command line and environment, crash and hang handling.

Device visibility and dtype policies are process-global in TensorFlow, so every job gets its own
process; the parent only ever reads the JSON result the worker writes (or its absence).

Nothing outlives the parent, however it ends. Each worker asks the kernel to SIGKILL it when its
parent dies (``bench.run.worker.die_with_parent``; the parent's pid travels in ``PARENT_PID_ENV``).
Each job's temp dir (``job_dir``) is removed by the parent on every exit Python sees, and, for the
ones it does not (SIGKILL, a crash of the interpreter), by a tiny janitor process that waits for
end-of-file on a pipe only the parent holds: the kernel closes it whenever the parent dies.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.records import REASON_CHARS
from bench.run.worker import PARENT_PID_ENV

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMP_PREFIX = "mnist-bench-"
# Blocks until the parent closes the pipe or dies, then removes the directory (argv[1]).
_JANITOR = "import shutil, sys; sys.stdin.buffer.read(); shutil.rmtree(sys.argv[1], True)"


@contextlib.contextmanager
def job_dir() -> Iterator[Path]:
    """A fresh temp dir for one job's files, removed however this process ends (see above)."""
    tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    janitor = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _JANITOR, str(tmp)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C in the terminal must not stop it before the parent
    )
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        assert janitor.stdin is not None
        janitor.stdin.close()
        try:
            janitor.wait(timeout=10)
        except subprocess.TimeoutExpired:
            janitor.kill()


def worker_command(job_path: Path, result_path: Path) -> list[str]:
    """The command that runs one job description and writes its result."""
    return [sys.executable, "-m", "bench.run.worker", str(job_path), str(result_path)]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env[PARENT_PID_ENV] = str(os.getpid())  # the worker dies with this process
    return env


def run_child(job: dict[str, Any], timeout_s: float) -> tuple[dict[str, Any], float]:
    """Run one job in a fresh interpreter; a crash or hang becomes a failed/timeout result.

    While it runs, its peak RSS is read about once a second (``peak_rss_bytes``), so a job the
    kernel kills for memory is recorded with how much it held (``exit_reason``).
    """
    with job_dir() as tmp:
        job_path, result_path = tmp / "job.json", tmp / "result.json"
        job_path.write_text(json.dumps(job))
        start = time.perf_counter()
        proc = subprocess.Popen(
            worker_command(job_path, result_path),
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            stdout, stderr, rss = _watch(proc, start, timeout_s)
        except subprocess.TimeoutExpired:
            elapsed = time.perf_counter() - start
            return {
                "status": "timeout",
                "reason": f"killed after the {timeout_s:g} s limit",
            }, elapsed
        finally:  # also on Ctrl-C: never leave the worker running in a removed temp dir
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        elapsed = time.perf_counter() - start
        if result_path.exists():
            return json.loads(result_path.read_text()), elapsed
        reason = exit_reason(proc.returncode, stderr or stdout, elapsed, rss)
        return {"status": "failed", "reason": reason}, elapsed


def _watch(
    proc: subprocess.Popen[str], start: float, timeout_s: float
) -> tuple[str, str, int | None]:
    """Wait for the process to end: (stdout, stderr, its peak RSS as last read, or None).

    Reads its peak RSS every ``RSS_SAMPLE_S`` meanwhile; TimeoutExpired once ``timeout_s`` is over.
    """
    rss = None
    while True:
        left = timeout_s - (time.perf_counter() - start)
        try:  # retrying communicate after a timeout loses no output
            stdout, stderr = proc.communicate(timeout=max(0.0, min(RSS_SAMPLE_S, left)))
            return stdout, stderr, rss
        except subprocess.TimeoutExpired:
            rss = peak_rss_bytes(proc.pid) or rss
            if left <= RSS_SAMPLE_S:
                raise


# --- Why a process ended without a result -------------------------------------------------------

RSS_SAMPLE_S = 1.0  # how often the parent reads a running job's peak RSS
# Signals a job can die of, and what usually sends them.
SIGNAL_CAUSES = {
    signal.SIGKILL: "often the kernel's out-of-memory killer",
    signal.SIGSEGV: "a crash in native code (a framework or driver bug)",
    signal.SIGBUS: "a crash in native code (a framework or driver bug)",
    signal.SIGABRT: "native code aborted (a failed check in the framework: see below)",
    signal.SIGTERM: "stopped by another process (a scheduler, the system shutting down)",
    signal.SIGINT: "interrupted (Ctrl-C)",
}
OOM_ADVICE = "`dmesg` or `journalctl -k` says 'Out of memory: Killed process' if it was"
# Lines frameworks log to stderr that never say why a process ended: absl's preamble, glog-style
# lines of TensorFlow's C++ (I0000 00:00:1796… 6082 port.cc:153] …; E and F lines are kept), and
# the dated INFO/WARNING lines of older TensorFlow.
_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IW]\d{4} \d\d:\d\d:[\d.]+\s+\d+ \S+:\d+\]"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] "
    r"|To enable the following instructions: .* rebuild TensorFlow"
)


def peak_rss_bytes(pid: int) -> int | None:
    """A live process's peak resident memory so far (Linux VmHWM); None where it cannot be read."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def meaningful_lines(output: str) -> list[str]:
    """The lines of a process's output that can say what happened: no blanks, no framework noise."""
    return [line for line in output.splitlines() if line.strip() and not _NOISE.match(line)]


def last_meaningful_line(output: str) -> str | None:
    """What a dead process last said: the exception of its last traceback, else its last line that
    is not framework noise (else its last line at all)."""
    lines = meaningful_lines(output)
    if "Traceback (most recent call last):" in lines:
        after = lines[len(lines) - 1 - lines[::-1].index("Traceback (most recent call last):") :]
        exception = [line for line in after[1:] if not line.startswith((" ", "\t"))]
        if exception:
            return exception[0].strip()
    if lines:
        return lines[-1].strip()
    rest = [line for line in output.splitlines() if line.strip()]
    return rest[-1].strip() if rest else None


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def exit_reason(
    code: int | None,
    output: str,
    elapsed_s: float | None = None,
    rss_bytes: int | None = None,
    who: str = "",
) -> str:
    """A record's reason for a process that ended without a result, within REASON_CHARS.

    Its first line (what tables show) says how it ended: the signal's name and its likely cause
    (SIGKILL: the out-of-memory killer, with the last peak RSS read), or the exit code and the
    last meaningful line of its output (a traceback's exception rather than framework log noise).
    The lines after it are the end of that output, noise left out. Every path that starts a job
    process builds its reason here: a plain job, an arm of a paired set, a multi_worker worker.
    """
    after = f" after {elapsed_s:.1f} s" if elapsed_s is not None else ""
    said = last_meaningful_line(output)
    if code is not None and code < 0:
        try:
            sig = signal.Signals(-code)
            name, cause = sig.name, SIGNAL_CAUSES.get(sig, "")
        except ValueError:
            name, cause = "an unknown signal", ""
        head = f"killed by {name} (signal {-code}){after}"
        head += f": {cause}" if cause else ""
        if rss_bytes:
            head += f"; peak RSS {_gib(rss_bytes)} when last read"
        if code == -signal.SIGKILL:
            head += f"\n{OOM_ADVICE}"
    else:
        head = f"exited with code {code}{after} without a result: {said or 'no output'}"
    if who:
        head = f"{who} {head}"
    tail = "\n".join(meaningful_lines(output))
    room = REASON_CHARS - len(head) - 1
    if not tail or room <= 0:
        return head[:REASON_CHARS]
    return f"{head}\n{tail[-room:]}"
