"""Test-only stand-in for ``bench.run.worker``: dies the ways real jobs die, in milliseconds.

    python -m tests.fake_worker MODE JOB.json RESULT.json

Standard library only (no TensorFlow), so a test can start it as a job's process. Every mode first
writes the lines TensorFlow writes to stderr on import, which a record's reason must see past.
Modes: ``oom`` holds 64 MiB, then SIGKILLs itself (as the kernel's out-of-memory killer would);
``crash`` ends with a Python traceback and exit 1; ``turns`` speaks the turn protocol of a paired
set's arm (``bench.run.turns``) and, for the job of batch size 200, is SIGKILLed in its first turn;
``cluster`` is a multi_worker process: worker 1 is SIGKILLed, the others wait to be stopped;
``probe`` is the machine probe: SIGKILLed at the 'between' point, else a made-up measurement.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path

# What TensorFlow 2.21 wrote to stderr on import on the dev machine (TF_CPP_MIN_LOG_LEVEL=2).
TF_NOISE = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796178896.280091    6082 port.cc:153] oneDNN custom operations are on. You may "
    "see slightly different numerical results due to floating-point round-off errors.\n"
    "I0000 00:00:1796178896.281253    6082 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.\n"
)
HELD_BYTES = 64 * 2**20
# A machine probe's result (bench.measure.peak.machine_probe's fields), one made-up CPU trial.
PROBE = {
    "gpus": [],
    "gpus_by_backend": {"tensorflow": []},
    "framework": "tensorflow",
    "matmul_n": 1024,
    "matmul_sizes": [1024],
    "trials": [{"device": "cpu", "dtype": "float32", "n": 1024, "flops_per_s": 1.0e10}],
    "peak_flops_per_s": {"cpu": {"float32": 1.0e10}},
}


def _hold_memory() -> bytes:
    block = b"x" * HELD_BYTES  # written, so resident (a zeroed bytearray may not be)
    time.sleep(0.3)  # long enough for the parent to read the peak RSS
    return block


def _die_as_oom() -> None:
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _turns(job: dict, result: Path) -> None:
    held = _hold_memory() if job["variant"]["batch_size"] == 200 else b""
    for where in ("ready", "block", "block", "end"):
        print(json.dumps({"wait": where}), flush=True)
        if sys.stdin.readline().split(" ")[0].strip() != "go":
            return
        if held:
            _die_as_oom()
    result.write_text(json.dumps({"status": "ok", "reason": None}))
    print(json.dumps({"done": "ok"}), flush=True)


def main(mode: str, job_path: str, result_path: str) -> int:
    sys.stderr.write(TF_NOISE)
    job = json.loads(Path(job_path).read_text())
    if mode == "oom":
        _hold_memory()
        _die_as_oom()
    if mode == "crash":
        try:
            raise RuntimeError("injected crash (test)")
        except RuntimeError:
            traceback.print_exc()
        sys.stderr.write(TF_NOISE)  # the noise a dying TensorFlow writes after it
        return 1
    if mode == "turns":
        _turns(job, Path(result_path))
        return 0
    if mode == "probe":
        if job["phase"] == "between":
            _hold_memory()
            _die_as_oom()
        Path(result_path).write_text(json.dumps({"probe": PROBE}))
        return 0
    if mode == "cluster":
        index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
        if index == 1:
            _hold_memory()
            _die_as_oom()
        time.sleep(60)
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
