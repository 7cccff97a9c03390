"""The runs an A/B gate probe measures: gate variants through the harness, raw times out. Imports TF.

``python -m bench.gate_probe`` (the stable entry point, which documents the contract) calls
``run_request`` and writes what it returns; this module is free to move with the code as long as
that entry point keeps calling it.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras

from bench.envinfo import PACKAGES, package_version
from bench.measure.baton import Baton
from bench.measure.threads import pin_threads, thread_settings
from bench.measure.train import run_variant
from bench.plan.gate_variants import INJECT_ENV
from bench.plan.variant import Variant
from mnist_models.data import load_mnist

RUN_FIELDS = ("name", "batch_size", "precision", "train_images", "test_images", "epochs")
INJECT_KINDS = ("uniform", "stall")


class BatchEnds(keras.callbacks.Callback):
    """perf_counter() at every training batch end, in seconds from the start of fit."""

    def __init__(self) -> None:
        super().__init__()
        self.start = 0.0
        self.stamps: list[float] = []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.stamps.append(time.perf_counter() - self.start)


class ExtraWork(keras.callbacks.Callback):
    """Test-only: make each step `extra` × its own time longer, or stall every `every` steps.

    ``uniform``: after every step, busy-wait (holding the CPU, like real work) for `extra` × that
    step's own time, so every step costs 1 + extra times as much. ``stall``: every `every` steps,
    sleep `extra` × `every` × the median own time of the last `every` steps, which adds about `extra`
    to the wall time per step and leaves the median step where it was (think logging or a checkpoint).
    A step's own time runs from its batch begin to its batch end: no callback work between steps,
    this one's or an interleaved run's wait for its turn, is in it.
    """

    def __init__(self, kind: str, extra: float, every: int = 25) -> None:
        super().__init__()
        if kind not in INJECT_KINDS or not extra > 0 or every < 1:
            raise ValueError(f"inject {kind!r}, extra {extra}, every {every}: not understood")
        self.kind, self.extra, self.every = kind, float(extra), int(every)
        self._begin = 0.0
        self._own: list[float] = []

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._begin = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.perf_counter()
        own = now - self._begin
        self._own.append(own)
        if self.kind == "uniform":
            until = now + self.extra * own
            while time.perf_counter() < until:
                pass
        elif len(self._own) % self.every == 0:
            time.sleep(self.extra * self.every * statistics.median(self._own[-self.every :]))


class StopAfter(keras.callbacks.Callback):
    """End training once this run has trained `train_s` seconds of its own after the warm-up,
    and at least `min_timed` steps after it.

    Own time: wall time from the end of the last warm-up step, less every wait of the `baton`
    (the other side's turns), so both sides of an interleaved round train for the same time of
    their own, and neither tracing nor warm-up eats into it.
    """

    def __init__(
        self, train_s: float, warmup: int, min_timed: int, baton: Baton | None = None
    ) -> None:
        super().__init__()
        self.train_s, self.warmup, self.min_timed = float(train_s), int(warmup), int(min_timed)
        self.baton = baton
        self._start = 0.0
        self._waited0 = 0.0
        self.steps = 0

    def _waited(self) -> float:
        return self.baton.waited_s if self.baton is not None else 0.0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._start, self._waited0 = time.perf_counter(), self._waited()  # no warm-up: from here

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.steps += 1
        now = time.perf_counter()
        if self.steps == self.warmup:  # the clock starts as the first timed step begins
            self._start, self._waited0 = now, self._waited()
            return
        own = now - self._start - (self._waited() - self._waited0)
        if self.steps >= self.warmup + self.min_timed and own >= self.train_s:
            self.model.stop_training = True


def parse_inject(text: str | None) -> dict[str, Any] | None:
    """The injection asked for in MNIST_BENCH_GATE_INJECT (JSON), checked; None when unset."""
    if not text:
        return None
    spec = json.loads(text)
    ExtraWork(**spec)  # raises on anything it would not do exactly
    return dict(spec)


def inject_callbacks(spec: Mapping[str, Any] | None) -> list[keras.callbacks.Callback]:
    """Fresh callbacks for one run under the test-only injection `spec` (none when None)."""
    return [ExtraWork(**spec)] if spec else []


def _check_run(run: Mapping[str, Any]) -> dict[str, Any]:
    missing = [k for k in RUN_FIELDS if k not in run]
    if missing:
        raise ValueError(f"run {run.get('name')!r}: missing {missing}")
    return {k: run[k] for k in RUN_FIELDS}


def _callbacks(
    request: Mapping[str, Any], wait: Callable[[str], float | None] | None, inject: Any
) -> tuple[BatchEnds, Baton | None, list[keras.callbacks.Callback]]:
    """A run's batch-end stamps, its baton (interleaved requests) and every callback, in order."""
    every = (request.get("interleave") or {}).get("every")
    ends = BatchEnds()
    baton = Baton(wait, every=int(every)) if every is not None and wait is not None else None
    callbacks: list[keras.callbacks.Callback] = [ends, *inject_callbacks(inject)]
    if baton is not None:
        callbacks.append(baton)
    if request.get("train_s") is not None:
        warmup, min_timed = int(request["warmup_steps"]), int(request.get("min_timed_steps", 0))
        callbacks.append(StopAfter(float(request["train_s"]), warmup, min_timed, baton))
    return ends, baton, callbacks


def _measure_run(
    run: Mapping[str, Any],
    data: Any,
    request: Mapping[str, Any],
    wait: Callable[[str], float | None] | None,
    inject: Any,
) -> dict[str, Any]:
    """One run of the request through the harness: its raw step times, batch ends and pauses."""
    variant = Variant(
        batch_size=run["batch_size"],
        validation="end_only",
        precision=run["precision"],
        epochs=run["epochs"],
    )
    piece = data.head(run["train_images"], run["test_images"])
    ends, baton, callbacks = _callbacks(request, wait, inject)
    timing = run_variant(variant, piece, callbacks=callbacks)["timing"]
    return {
        "name": run["name"],
        "steps": len(ends.stamps),
        "step_ms": timing["step_ms_raw"],
        "batch_end_s": [round(s, 7) for s in ends.stamps],
        **({"pauses": baton.pauses} if baton is not None else {}),
    }


def run_request(
    request: Mapping[str, Any], wait: Callable[[str], float | None] | None = None
) -> dict[str, Any]:
    """Measure every run of a contract-1 request in this process; the response's fields but 'ok'.

    With ``"interleave": {"every": N}`` in the request, ``wait`` is the baton's (``bench.measure.baton``);
    with ``"train_s": T``, each run stops after T seconds of its own timed training (``StopAfter``).
    """
    if request.get("contract") != 1:
        raise ValueError(f"request contract {request.get('contract')!r}; this side speaks 1")
    runs: Sequence[dict[str, Any]] = [_check_run(r) for r in request["runs"]]
    if (request.get("interleave") or {}).get("every") is not None and wait is None:
        raise ValueError("an interleaved request needs a driver to wait for")
    inject = parse_inject(os.environ.get(INJECT_ENV))
    start = time.perf_counter()
    pin_threads(int(request.get("threads", 1)))
    path = request.get("data")
    data = load_mnist(path, sources=("path",) if path else ("path", "cache"))
    out = [_measure_run(run, data, request, wait, inject) for run in runs]
    return {
        "elapsed_s": time.perf_counter() - start,
        "threads": thread_settings(),
        "versions": {
            **{p: package_version(p) for p in PACKAGES},
            "python": platform.python_version(),
        },
        "data": data.provenance(),
        "inject": inject,
        "runs": out,
    }


class _EveryOtherChunk(ExtraWork):
    """ExtraWork 'uniform' after the steps of every other chunk of `chunk` steps."""

    def __init__(self, extra: float, chunk: int) -> None:
        super().__init__("uniform", extra)
        self.chunk, self.steps = chunk, 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.steps += 1
        if (self.steps - 1) // self.chunk % 2:
            super().on_train_batch_end(batch, logs)


def injection_cost(variant: Variant, extra: float) -> list[float]:
    """What ExtraWork('uniform', extra) costs a step, measured apart from the paired matrix: one
    process trains `variant` with the wait on in every other chunk of steps (``chunk_costs``). A
    wait also slows the step after it, so the cost is not `extra` itself: scripts/prove_matrix.py
    sizes the wait by this measure."""
    data = load_mnist()
    steps = variant.steps_per_epoch(len(data.x_train)) * variant.epochs
    chunk = max(4, min(50, steps // 10))  # short runs: a tenth of the run, so some pairs remain
    ends = BatchEnds()  # first, so its stamp comes before the wait
    run_variant(variant, data, callbacks=[ends, _EveryOtherChunk(extra, chunk)])
    return chunk_costs(ends.stamps, chunk)


def chunk_costs(stamps: Sequence[float], chunk: int) -> list[float]:
    """Per (off, on) pair of chunks of steps, log(median step on ÷ median step off), from the batch
    ends' stamps; chunks 0 and 1 are warm-up. Step i, stamps[i] to stamps[i + 1], holds the wait
    after batch i and the next batch, which that wait slows: its chunk is batch i's."""
    steps = [b - a for a, b in itertools.pairwise(stamps)]
    medians = [
        statistics.median(steps[k * chunk + 1 : (k + 1) * chunk - 1])
        for k in range(len(steps) // chunk)
    ]
    return [math.log(medians[k + 1] / medians[k]) for k in range(2, len(medians) - 1, 2)]
