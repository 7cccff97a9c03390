"""The stored gate's measurement (bench.measure.stored_rounds) end to end on a small real slice, in a fresh process (it pins TF threads)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

CHILD = """
import json, sys
from bench.measure import stored_rounds, threads
from bench.plan.gate_variants import GateVariant
from mnist_models.data import load_mnist
from tests.conftest import CACHE

import time
import keras

calls = []
busy_steps = []
EXTRA_S = 0.005  # busy work added to every harness step, never to the calibration step


def busy(batch, logs):
    busy_steps.append(batch)
    end = time.perf_counter() + EXTRA_S
    while time.perf_counter() < end:
        pass


def callbacks():
    calls.append(1)
    return [keras.callbacks.LambdaCallback(on_train_batch_end=busy)]

tiny = (GateVariant("tiny", 100, "float32", 3000),)
data = load_mnist(cache_path=CACHE, sources=("cache",))
measured = stored_rounds.measure(data, variants=tiny, rounds=3, callbacks=callbacks)
try:
    threads.pin_threads(2)
    late = None
except ValueError as exc:
    late = str(exc)
out = {"measured": measured, "factory_calls": len(calls), "busy_steps": len(busy_steps), "late": late}
json.dump(out, sys.stdout)
"""


@pytest.mark.slow
def test_measure_interleaves_rounds_and_passes_callbacks_through(real_mnist):
    done = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    measured, entry = out["measured"], out["measured"]["variants"]["tiny"]
    assert measured["rounds"] == 3 and measured["threads"] == {"intra_op": 1, "inter_op": 1}
    assert entry["timed_steps"] == 30 - 10  # 3,000 images / batch 100, warm-up excluded
    assert out["factory_calls"] == 3  # fresh callbacks for every harness run
    for key in ("ratios", "harness_ms", "calibration_ms", "harness_median_ms"):
        assert len(entry[key]) == 3 and all(v > 0 for v in entry[key])
    for ratio, a, b in zip(
        entry["ratios"], entry["harness_ms"], entry["calibration_ms"], strict=True
    ):
        assert ratio == pytest.approx(a / b)
    # The injected 5 ms reach the harness's clock (even its fastest step: a busy-wait is a lower
    # bound on any machine) ...
    assert all(h >= 5.0 for h in entry["harness_ms"])
    # ... and only the harness runs them: one call per harness step (3 rounds x 30 steps), none
    # for the calibration's steps. Counted, not timed (a timed upper bound failed on a busy machine).
    assert out["busy_steps"] == 3 * 30
    assert "already running" in out["late"] and "fresh process" in out["late"]
