"""The gate's stable entry point: ``python -m bench.gate_probe`` (JSON in on stdin, JSON out on stdout).

`mnist-bench regress --against REF` runs this module on both sides of an A/B comparison: in the
working tree's environment (side B) and in REF's own checkout and environment (side A), one fresh
side process per side and round. Whatever else moves between commits, this module's path and the
contract below stay put, so any later driver can measure any commit that has it: that is why it
keeps the name ``gate_probe`` although the project calls what it starts a *side process* (a
*probe* is the matmul machine probe). A commit without it, or whose ``--describe`` does not list
``"interleave"``, predates the gate the driver runs; the driver then cannot judge (exit 2) and
says so.

Contract version 1 (``CONTRACT``). The request, one JSON object on stdin::

    {"contract": 1,
     "runs": [{"name": "bs32-float32", "batch_size": 32, "precision": "float32",
               "train_images": 19200, "test_images": 256, "epochs": 1}, ...],
     "warmup_steps": 10,       # steps of epoch 1 the driver will leave out (informative here)
     "threads": 1,             # TensorFlow intra- and inter-op threads (0 = TensorFlow picks)
     "data": "/abs/mnist.npz"} # a Keras mnist.npz or IDX folder; null = the usual cache

Each run trains the reference MLP through the harness (validation only at the end, CPU, shuffled,
seed 0) on the first ``train_images`` training images, in order. The response, one JSON object on
stdout (nothing else is written there; TensorFlow's own output goes to stderr)::

    {"contract": 1, "ok": true, "elapsed_s": 9.1, "threads": {"intra_op": 1, "inter_op": 1},
     "versions": {"tensorflow": ..., "keras": ..., "python": ..., "mnist-bench": ...},
     "data": {...provenance...}, "inject": null,
     "runs": [{"name": ..., "steps": 600,
               "step_ms": [[...], ...],     # the harness's raw per-step ms, one list per epoch
               "batch_end_s": [...]}]}       # seconds from fit start at every batch end, all epochs

Raw times only: the driver derives every statistic (median step, wall time per step) the same way
for both sides. On failure: ``{"contract": 1, "ok": false, "error": "..."}`` and exit status 1.
The process imports TensorFlow before it reads stdin, so a driver may start it ahead of time and
write the request when the measurement should begin. ``python -m bench.gate_probe --describe``
prints ``{"contract": 1, ...}`` without importing TensorFlow.

Interleaving (``--describe`` lists ``"interleave"``; optional in contract 1, but today's driver
drives nothing else). The request is one line; with ``"interleave": {"every": N}`` in it, the driver
keeps stdin open and the process hands the CPU back at every baton point: at the start of each run's
training, after every N training steps, and at the end of each run's training, it writes
``{"wait": "<where>"}`` as one line on stdout and blocks until it reads the line ``go``. A driver can so let
two processes take turns every few tens of milliseconds: both then see the same machine, whatever
other tenants do. Each run of the response also carries ``"pauses": [[steps, seconds], ...]``: after
how many training steps (counted over all epochs) each mid-training wait came, and how long it
lasted. The step after a pause and the pause itself are the driver's to leave out.

Sized by time (optional; ``--describe`` lists ``"train_s"`` when the entry point has it). With
``"train_s": T`` and ``"min_timed_steps": M`` in the request, each run stops training once it has
trained T seconds of its own (waits for the other side's turns left out) and at least
``warmup_steps`` + M steps, or at its ``train_images`` and ``epochs``, whichever comes first. A
driver sends it only when both sides list it, so both sides of a round are sized alike.

Test-only: ``MNIST_BENCH_GATE_INJECT`` (see ``bench.measure.ab_runs.inject_callbacks``) adds work to
every training step or a stall every N steps, so the gate's proof can slow one side without a second
source tree. It is for experiments, never set by the product; the response echoes it in ``inject``.

This module imports no TensorFlow itself (``bench.measure.ab_runs`` does the measuring).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from bench.plan.gate_variants import CONTRACT, INJECT_ENV


def describe() -> dict[str, Any]:
    """What this side supports, without TensorFlow: the driver checks it before any measuring."""
    return {
        "contract": CONTRACT,
        "module": "bench.gate_probe",
        "inject_env": INJECT_ENV,
        "interleave": True,
        "train_s": True,
    }


def main(argv: list[str] | None = None) -> int:
    """Read one request on stdin, measure, write one response on stdout; 0 ok, 1 failed, 2 usage."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--describe"]:
        print(json.dumps(describe()))
        return 0
    if args:
        print("usage: python -m bench.gate_probe [--describe] < REQUEST.json", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the gate measures the CPU
    from bench.run.turns import pipe_baton, stdout_to_stderr

    with stdout_to_stderr() as out:
        try:
            # TensorFlow first, the request after: a driver may start this process early and
            # write the request when it wants the measurement to begin.
            from bench.measure.ab_runs import run_request

            request = json.loads(sys.stdin.readline())
            response = {"contract": CONTRACT, "ok": True, **run_request(request, pipe_baton(out))}
            code = 0
        except Exception as exc:  # the driver reads the reason; a crash without JSON is worse
            response = {"contract": CONTRACT, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
            code = 1
        out.write(json.dumps(response) + "\n")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
