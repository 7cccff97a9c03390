"""Child-process entry: runs one job (a variant repeat, or the machine probe) and writes its result.

Device visibility and dtype policies are process-global in TensorFlow, and the Keras backend is fixed
when Keras is first imported, so each job gets a fresh process; the parent only ever sees the JSON
this writes (or the lack of it, after a crash).
Usage: python -m bench.run.worker JOB.json RESULT.json
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.records import REASON_CHARS

PARENT_PID_ENV = "MNIST_BENCH_PARENT_PID"  # set by bench.run.child.child_env
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent() -> None:
    """Make sure this process does not outlive the runner that started it.

    Linux: prctl(PR_SET_PDEATHSIG, SIGKILL), so the kernel kills it the moment its parent dies,
    however it dies. (It fires when the parent *thread* that started it exits: the runner starts
    jobs from its main thread.) Elsewhere, a daemon thread polls the parent pid. Either way, if
    the parent died before this ran, exit at once.
    """
    expected = int(os.environ.get(PARENT_PID_ENV) or 0)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl failed")
    except (OSError, AttributeError):  # not Linux: watch the parent instead
        threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    if expected and os.getppid() != expected:
        os._exit(1)  # the parent is already gone; nobody would read our result


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _configure_devices(
    device: str, strategy: str = "default", replicas: int = 1, backend: str = "tensorflow"
) -> None:
    # Must happen before any framework is imported: a CPU variant must not touch a GPU that exists.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    if device == "cpu" and backend == "jax":
        os.environ["JAX_PLATFORMS"] = "cpu"  # no probing for accelerator plugins
    if device == "cpu" and strategy == "mirrored" and backend == "tensorflow":
        # Logical devices can only be declared before TensorFlow initialises, i.e. here.
        from bench.measure.distribute import split_cpu

        split_cpu(replicas)
    if device == "cpu" and strategy == "mirrored" and backend == "jax":
        # JAX's host platform shows as many CPU devices as this flag asks, read at JAX's startup.
        flag = f"--xla_force_host_platform_device_count={replicas}"
        os.environ["XLA_FLAGS"] = " ".join(filter(None, [os.environ.get("XLA_FLAGS"), flag]))


def choose_backend(backend: str) -> None:
    """Set KERAS_BACKEND; Keras reads it once, at its first import, which must not have happened.

    A JAX or torch job also hides TensorFlow (installed with this package): keras.utils.
    set_random_seed imports it whenever it is importable, which would add TensorFlow's memory and
    threads to the other backend's job. With sys.modules["tensorflow"] = None, importing it raises
    ImportError and importlib.util.find_spec finds nothing, so Keras and torch treat it as absent.
    """
    if "keras" in sys.modules:
        raise RuntimeError(
            f"Keras was imported before the backend ({backend}) was chosen; "
            "KERAS_BACKEND would be ignored"
        )
    os.environ["KERAS_BACKEND"] = backend  # also overrides ~/.keras/keras.json
    if backend != "tensorflow":
        if "tensorflow" in sys.modules:
            raise RuntimeError(f"TensorFlow was imported before the {backend} job started")
        sys.modules["tensorflow"] = None  # type: ignore[assignment]


def _load_hook(spec: str | None) -> dict[str, Any]:
    """'module:function' → kwargs for run_variant (and optionally 'data': a Mnist to use instead).

    For experiments and tests through the API (a forced divergence, injected per-step work, a small
    slice of the data); the CLI never sets it.
    """
    if not spec:
        return {}
    module, _, name = spec.partition(":")
    return dict(getattr(importlib.import_module(module), name)())


def run_job(
    job: dict[str, Any], wait: Callable[[str], float | None] | None = None
) -> dict[str, Any]:
    """Execute a job description; returns the fields the parent puts in the record.

    A job with ``interleave`` ({"block_s": seconds}) trains in blocks, calling `wait` between them
    (``bench.run.turns``: the arm of a paired set).
    """
    if job["kind"] == "probe":
        _configure_devices("any")
        from bench.measure.peak import machine_probe

        return {"probe": machine_probe(measure_peak=job.get("measure_peak", True))}

    variant_data = job["variant"]
    backend = variant_data.get("backend", "tensorflow")
    choose_backend(backend)
    _configure_devices(
        variant_data["device"],
        variant_data.get("strategy", "default"),
        variant_data.get("replicas", 1),
        backend,
    )
    from bench.measure.train import Diverged, Interleave, run_variant
    from bench.plan.variant import Variant
    from mnist_models.data import load_mnist

    variant = Variant.from_dict(variant_data)
    extra = _load_hook(job.get("hook"))
    if job.get("interleave"):
        if wait is None:
            raise RuntimeError("an interleaved job needs a driver to wait for")
        extra["interleave"] = Interleave(float(job["interleave"]["block_s"]), wait)
    # The parent fetched and verified the data already; a child only reads the path or cache.
    data = extra.pop("data", None) or load_mnist(job.get("data_path"), sources=("path", "cache"))
    try:
        measured = run_variant(variant, data, **extra)
    except Diverged as exc:
        return {"status": "diverged", "reason": str(exc)[:REASON_CHARS], "data": data.provenance()}
    return {"status": "ok", "reason": None, "data": data.provenance(), **measured}


def _run_safely(job: dict[str, Any], wait: Callable[[str], float | None] | None) -> dict[str, Any]:
    try:
        return run_job(job, wait)
    except Exception as exc:  # any failure becomes a record, never a lost matrix
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        tail = traceback.format_exc()[-REASON_CHARS:]
        return {"status": "failed", "reason": text[:REASON_CHARS], "traceback": tail}


def main(argv: list[str]) -> int:
    """Run the job in argv[0], write its result to argv[1].

    An interleaved job speaks the turn protocol on stdin/stdout (``bench.run.turns``): its waits,
    then, once the result is on disk, ``{"done": status}`` as its last line.
    """
    die_with_parent()
    job_path, result_path = Path(argv[0]), Path(argv[1])
    job = json.loads(job_path.read_text())
    if not job.get("interleave"):
        result_path.write_text(json.dumps(_run_safely(job, None)))
        return 0
    from bench.run.turns import pipe_baton, stdout_to_stderr

    with stdout_to_stderr() as out:
        result = _run_safely(job, pipe_baton(out))
        result_path.write_text(json.dumps(result))
        out.write(json.dumps({"done": result["status"]}) + "\n")
    return 0


def exit_now(code: int) -> None:
    """Leave without the interpreter's teardown: the result is on disk, and unwinding TensorFlow's
    modules and thread pools took 0.6-2.1 s, paid by every job of a matrix (2-core dev machine)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main(sys.argv[1:]))
