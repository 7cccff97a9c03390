"""The gate's stable entry point, `python -m bench.gate_probe`: its contract, in a fresh process.

And the test-only injection's arithmetic on a fake clock (no training needed).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import gate_probe
from tests.conftest import CACHE

REPO = Path(__file__).resolve().parent.parent


def _probe(*args: str, stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench.gate_probe", *args],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )


def test_describe_answers_without_tensorflow():
    done = _probe("--describe")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "contract": 1,
        "module": "bench.gate_probe",
        "inject_env": "MNIST_BENCH_GATE_INJECT",
        "interleave": True,
        "train_s": True,
    }
    code = "import sys\nfrom bench import gate_probe\nassert 'tensorflow' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, check=False).returncode == 0


def test_usage_error_is_exit_2():
    done = _probe("--bogus")
    assert done.returncode == 2 and "usage" in done.stderr and done.stdout == ""


@pytest.mark.slow
def test_one_request_one_json_response_with_raw_times(real_mnist):
    request = {
        "contract": 1,
        "runs": [
            {"name": "a", "batch_size": 100, "precision": "float32", "train_images": 2000, "test_images": 100, "epochs": 2},
            {"name": "b", "batch_size": 250, "precision": "float32", "train_images": 3000, "test_images": 100, "epochs": 1},
        ],
        "warmup_steps": 10,
        "threads": 1,
        "data": str(CACHE),
    }  # fmt: skip
    inject = '{"kind": "stall", "extra": 0.1, "every": 5}'
    done = _probe(stdin=json.dumps(request), env={gate_probe.INJECT_ENV: inject})
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 1, "stdout carries the response and nothing else"
    response = json.loads(lines[0])
    assert response["ok"] is True and response["contract"] == 1
    assert response["threads"] == {"intra_op": 1, "inter_op": 1}
    assert response["versions"]["tensorflow"] and response["versions"]["python"]
    assert response["data"]["location"] == str(CACHE)
    assert response["inject"] == {"kind": "stall", "extra": 0.1, "every": 5}
    a, b = response["runs"]
    assert (a["name"], a["steps"], [len(e) for e in a["step_ms"]]) == ("a", 40, [20, 20])
    assert (b["name"], b["steps"], [len(e) for e in b["step_ms"]]) == ("b", 12, [12])
    for run in (a, b):
        ends = run["batch_end_s"]
        assert len(ends) == run["steps"] and all(x < y for x, y in itertools.pairwise(ends))
        assert all(ms > 0 for epoch in run["step_ms"] for ms in epoch)


def test_a_request_of_another_contract_is_refused():
    from bench.measure.ab_runs import run_request

    with pytest.raises(ValueError, match="request contract 2; this side speaks 1"):
        run_request({"contract": 2, "runs": []})
    with pytest.raises(ValueError, match=r"missing \['epochs'\]"):
        run_request({"contract": 1, "runs": [{"name": "x", "batch_size": 1, "precision": "float32", "train_images": 1, "test_images": 1}]})  # fmt: skip


class FakeClock:
    """perf_counter that advances 10 µs per call; sleep advances it and is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def perf_counter(self) -> float:
        self.now += 1e-5
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    from bench.measure import ab_runs as probe

    fake = FakeClock()
    monkeypatch.setattr(probe.time, "perf_counter", fake.perf_counter)
    monkeypatch.setattr(probe.time, "sleep", fake.sleep)
    return fake


class _Model:
    stop_training = False


class _Baton:
    waited_s = 0.0


def test_a_time_sized_run_stops_after_its_own_training_time_waits_left_out(clock):
    # Catches: the other side's turns counted as this side's training (both sides would then stop
    # after different amounts of their own work), warm-up or tracing eating into the time, or
    # stopping before the timed steps a run must keep.
    from bench.measure.ab_runs import StopAfter

    baton = _Baton()
    stop = StopAfter(train_s=0.01, warmup=2, min_timed=2, baton=baton)  # type: ignore[arg-type]
    stop.set_model(_Model())  # type: ignore[arg-type]
    clock.now += 5.0  # step 1 (tracing): long, but warm-up
    stop.on_train_batch_end(0)
    clock.now += 0.001  # step 2: the last warm-up step; the clock starts at its end
    stop.on_train_batch_end(1)
    assert stop.model.stop_training is False
    clock.now += 0.004  # step 3: own time 4 ms
    baton.waited_s += 1.0  # then one second of the other side's turn
    clock.now += 1.0
    stop.on_train_batch_end(2)
    assert stop.model.stop_training is False  # 4 ms of own time, not 1.004 s
    clock.now += 0.008  # step 4: 12 ms of own time, past train_s, and 2 timed steps
    stop.on_train_batch_end(3)
    assert stop.model.stop_training is True
    late = StopAfter(train_s=0.01, warmup=2, min_timed=3)
    late.set_model(_Model())  # type: ignore[arg-type]
    for _ in range(4):
        clock.now += 0.02
        late.on_train_batch_end(0)
    assert late.model.stop_training is False  # 2 timed steps of 20 ms: time enough, steps not


def test_uniform_injection_busy_waits_a_fraction_of_each_steps_own_time(clock):
    from bench.measure.ab_runs import ExtraWork

    work = ExtraWork("uniform", 0.5)
    for own_s in (0.002, 0.004):
        clock.now += 0.3  # between steps: e.g. an interleaved run waiting for its turn
        work.on_train_batch_begin(0)
        clock.now += own_s  # the step itself
        start = clock.now
        work.on_train_batch_end(0)
        waited = clock.now - start
        assert own_s * 0.5 <= waited <= own_s * 0.5 + 1e-4  # + the fake clock's ticks
    assert clock.slept == []  # holds the CPU, like real work


def test_stall_injection_sleeps_every_n_steps_for_extra_times_n_median_steps(clock):
    from bench.measure.ab_runs import ExtraWork

    work = ExtraWork("stall", 0.1, every=4)
    for own_s in (0.001, 0.002, 0.002, 0.003) * 2:
        work.on_train_batch_begin(0)
        clock.now += own_s
        work.on_train_batch_end(0)
    # Median own step of each window ≈ 2 ms (+ clock ticks): 0.1 × 4 × 2 ms = 0.8 ms per stall.
    assert clock.slept == pytest.approx([0.0008, 0.0008], rel=0.05)


def test_the_calibration_waits_in_every_other_chunk_and_prices_each_pair(clock):
    """Bugs: the wait on in every chunk (no step to compare with), or a chunk's steps read across
    the chunk edge, so the calibrated wait would be sized on a mixture."""
    from bench.measure.ab_runs import _EveryOtherChunk, chunk_costs

    work = _EveryOtherChunk(0.5, chunk=4)
    waited = []
    for _ in range(16):
        work.on_train_batch_begin(0)
        clock.now += 0.002
        before = clock.now
        work.on_train_batch_end(0)
        waited.append(clock.now - before > 0.0009)
    assert waited == [False] * 4 + [True] * 4 + [False] * 4 + [True] * 4
    # Steps of 2 ms off and 2.2 ms on, chunk by chunk: each (off, on) pair after warm-up is +10%.
    steps = [0.0022 if i // 5 % 2 else 0.002 for i in range(40)]
    stamps = list(itertools.accumulate([0.0, *steps]))
    assert chunk_costs(stamps, 5) == pytest.approx([math.log(1.1)] * 3)


def test_injection_spec_is_checked():
    from bench.measure.ab_runs import parse_inject

    assert parse_inject(None) is None and parse_inject("") is None
    assert parse_inject('{"kind": "uniform", "extra": 0.1}') == {"kind": "uniform", "extra": 0.1}
    for bad in ('{"kind": "slow", "extra": 0.1}', '{"kind": "uniform", "extra": 0}'):
        with pytest.raises(ValueError, match="not understood"):
            parse_inject(bad)


@pytest.mark.slow
def test_an_interleaved_request_waits_for_its_turns_and_reports_them(real_mnist):
    request = {
        "contract": 1,
        "runs": [{"name": "a", "batch_size": 100, "precision": "float32", "train_images": 2000, "test_images": 100, "epochs": 2}],
        "warmup_steps": 3,
        "threads": 1,
        "data": str(CACHE),
        "interleave": {"every": 7},
    }  # fmt: skip
    with subprocess.Popen(
        [sys.executable, "-m", "bench.gate_probe"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        waits, read_at = [], []
        while "wait" in (message := json.loads(proc.stdout.readline())):
            read_at.append(time.perf_counter())
            waits.append(message["wait"])
            time.sleep(0.03)  # the other side's turn
            proc.stdin.write("go\n")
            proc.stdin.flush()
        assert proc.wait(timeout=60) == 0 and message["ok"] is True
    assert waits == ["train_begin", *["step"] * 5, "train_end"]  # 40 steps: after 7, 14, …, 35
    (run,) = message["runs"]
    assert [after for after, _ in run["pauses"]] == [7, 14, 21, 28, 35]
    # Each pause holds our 30-ms turn, and lies between the message before its wait and the one
    # after its go (causality, not a time limit: a busy machine cannot fail it). Catches a pause
    # measured from the wrong stamps, e.g. the step's own time or the whole run.
    for k, (_, paused) in enumerate(run["pauses"], start=1):  # read_at[0] is train_begin
        assert 0.03 <= paused <= read_at[k + 1] - read_at[k - 1]
    flat = [ms for epoch in run["step_ms"] for ms in epoch]
    assert all(flat[i] >= 30 for i in (7, 14, 21, 28, 35))  # the turn falls into the next step


@pytest.mark.slow  # imports TensorFlow in a fresh process
def test_threads_cannot_be_repinned_once_tensorflow_runs():
    # Catches: a side process whose pools silently keep TensorFlow's default after an op ran, so
    # its threads differ from what the request and the response say.
    code = (
        "from bench.measure import threads\nimport tensorflow as tf\n"
        "threads.pin_threads(1)\ntf.constant(1.0) + 1\n"
        "try:\n    threads.pin_threads(2)\nexcept ValueError as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert "already running" in done.stdout and "fresh process" in done.stdout, done.stderr[-2000:]
