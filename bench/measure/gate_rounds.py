"""The step-time regression gate's measurement: harness vs calibration, interleaved. Imports TF.

Per round and gate variant: A = the harness's step time (``bench.measure.train.run_variant``, one epoch on
a fixed slice of real MNIST, warm-up excluded, timed by ``bench.measure.clock.StepClock``), then B = the
step time of ``bench.measure.calibration.CalibrationStep`` (the same step without Keras) at the same batch
size and precision. Rounds go A B A B …, so drift of the machine's speed hits both sides of every
ratio A/B alike. The comparison against the baseline is ``bench.gate`` (pure).

The step time compared is each run's fastest timed step, not its median: other processes only ever
add time to a step, and on the shared 2-core machine busy neighbours moved the median-based ratio
several times more than the fastest-step ratio (README, "Regression gate"). Medians and means are
recorded too, for people.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from bench import outputs, stats
from bench.gate import baseline as gate_baseline
from bench.gate import judge, render
from bench.gate.baseline import GateError
from bench.gate.variants import GATE_VARIANTS, TEST_IMAGES, GateVariant
from bench.measure import calibration
from bench.measure.train import run_variant
from bench.plan.settings import DEFAULT_WARMUP_STEPS
from bench.records import utc_now
from bench.run import envinfo
from mnist_models import mlp
from mnist_models.data import Mnist

DEFAULT_ROUNDS = judge.DEFAULT_ROUNDS
WARMUP_STEPS = DEFAULT_WARMUP_STEPS
# One thread per TF pool for both workloads: with TF's default (one per core) on the shared 2-core
# machine the ratio's run-to-run spread was several times larger, and CI machines' core counts differ.
GATE_THREADS = 1


CallbackFactory = Callable[[], Sequence[keras.callbacks.Callback]]


def data_slice(data: Mnist, train_images: int) -> Mnist:
    """The first `train_images` training and TEST_IMAGES test images; same provenance."""
    if len(data.x_train) < train_images:
        raise GateError(
            f"the gate needs {train_images} training images, the data set has {len(data.x_train)}"
        )
    return data.head(train_images, TEST_IMAGES)


def thread_settings() -> dict[str, int]:
    """TensorFlow's CPU thread pools as configured (0 = TensorFlow picks)."""
    return {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
    }


def pin_threads(threads: int = GATE_THREADS) -> None:
    """Give TF's intra- and inter-op pools `threads` each; possible only before TF runs an op."""
    if thread_settings() == {"intra_op": threads, "inter_op": threads}:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as exc:
        raise GateError(
            f"cannot set TensorFlow to {threads} thread(s) per pool, it is already running "
            f"({exc}); measure the gate in a fresh process"
        ) from None


def measure(
    data: Mnist,
    *,
    variants: Sequence[GateVariant] = GATE_VARIANTS,
    rounds: int = DEFAULT_ROUNDS,
    warmup_steps: int = WARMUP_STEPS,
    callbacks: CallbackFactory | None = None,
    on_round: Callable[[str, int, float, float], None] | None = None,
) -> dict[str, Any]:
    """Interleaved A/B rounds; per variant, lists (one entry a round) named in ROUND_LISTS.

    ``callbacks`` makes fresh Keras callbacks for each harness run (passed to run_variant); it is
    how an experiment adds work to the harness's step. ``on_round(name, round, a_ms, b_ms)``
    reports progress with each side's fastest step.
    """
    if rounds < gate_baseline.MIN_ROUNDS:
        raise GateError(f"rounds={rounds}: need at least {gate_baseline.MIN_ROUNDS}")
    pin_threads()
    start = time.perf_counter()
    slices = {gv.name: data_slice(data, gv.train_images) for gv in variants}
    steps: dict[str, calibration.CalibrationStep] = {}
    timed: dict[str, int] = {}
    for gv in variants:
        piece = slices[gv.name]
        x = mlp.scale_images(piece.x_train[: gv.batch_size])
        steps[gv.name] = calibration.CalibrationStep(
            x, piece.y_train[: gv.batch_size], precision=gv.precision
        )
        timed[gv.name] = gv.timed_steps(warmup_steps)
        if timed[gv.name] < 20:
            raise GateError(f"{gv.name}: only {timed[gv.name]} timed steps; use more data")
    out: dict[str, dict[str, Any]] = {
        gv.name: {
            "batch_size": gv.batch_size,
            "precision": gv.precision,
            "train_images": gv.train_images,
            "epochs": gv.epochs,
            "timed_steps": timed[gv.name],
            **{key: [] for key in gate_baseline.ROUND_LISTS},
        }
        for gv in variants
    }
    for r in range(rounds):
        for gv in variants:
            extra = list(callbacks()) if callbacks else []
            raw = run_variant(gv.variant(), slices[gv.name], callbacks=extra)["timing"]
            a: dict[str, Any] = stats.summarize(
                stats.timed_steps(raw["step_ms_raw"], warmup_steps)[1]
            )
            b: dict[str, Any] = stats.summarize(
                calibration.time_steps(steps[gv.name], timed[gv.name], warmup_steps)
            )
            row = out[gv.name]
            row["ratios"].append(a["min"] / b["min"])
            for key, source in (("harness", a), ("calibration", b)):
                row[f"{key}_ms"].append(float(source["min"]))
                row[f"{key}_median_ms"].append(float(source["median"]))
                row[f"{key}_mean_ms"].append(float(source["mean"]))
            if on_round:
                on_round(gv.name, r, a["min"], b["min"])
    return {
        "rounds": rounds,
        "warmup_steps": warmup_steps,
        "threads": thread_settings(),
        "data": data.provenance(),
        "elapsed_s": time.perf_counter() - start,
        "variants": out,
    }


def run_gate(
    baseline_path: Path,
    data: Mnist,
    *,
    update: bool = False,
    rounds: int = DEFAULT_ROUNDS,
    callbacks: CallbackFactory | None = None,
    json_out: Path | None = None,
    markdown_out: Path | None = None,
    note: str | None = None,
    echo: Callable[[str], None] = print,
) -> int:
    """Measure, compare with (or rewrite) the baseline, print the table; returns the exit code.

    0 pass, 1 regression, 2 could not judge (bad baseline, failed or too noisy measurement).
    ``json_out`` also writes the raw measurement and the verdicts there (e.g. a CI artifact),
    ``markdown_out`` the table (e.g. a job summary), after ``note`` (why this mode ran) if given.
    """
    baseline = (
        None if update else gate_baseline.read_baseline(baseline_path)
    )  # before a minute of work
    echo(f"gate: {rounds} rounds x {len(GATE_VARIANTS)} variants, harness vs calibration")
    measured = measure(
        data,
        rounds=rounds,
        callbacks=callbacks,
        on_round=lambda name, r, a, b: echo(
            f"  round {r + 1}/{rounds} {name}: fastest step harness {a:.3f} ms, "
            f"calibration {b:.3f} ms, ratio {a / b:.3f}"
        ),
    )
    echo(f"measured in {measured['elapsed_s']:.0f} s")
    machine = envinfo.machine_info()
    rows: list[judge.Row] = []
    if update:
        doc = gate_baseline.make_baseline(measured, machine, envinfo.git_commit(), utc_now())
        gate_baseline.write_baseline(baseline_path, doc)
        echo(render.render_baseline(doc))
        echo(f"baseline written: {baseline_path}")
        code = judge.EXIT_PASS
    else:
        assert baseline is not None
        rows = judge.compare(baseline, measured)
        table = render.render_table(rows, baseline, machine)
        echo(table)
        code = judge.exit_code(rows)
        if markdown_out is not None:
            markdown_out.parent.mkdir(parents=True, exist_ok=True)
            preface = f"{note}\n\n" if note else ""
            markdown_out.write_text(
                "## Step-time gate (stored baseline)\n\n" + preface + table + "\n",
                encoding="utf-8",
            )
    if json_out is not None:
        result = {
            "mode": "stored-baseline",
            "note": note,
            "exit_code": code,
            "baseline": str(baseline_path),
            "updated": update,
            "created_utc": utc_now(),
            "machine": machine,
            "rows": [dataclasses.asdict(row) for row in rows],
            "measured": measured,
        }
        outputs.write_atomic(json_out, json.dumps(result, indent=2) + "\n")
    return code
