"""Synthetic records with known raw measurements, for tests of everything that reads records."""

from __future__ import annotations

from typing import Any

import numpy as np

from bench import records
from bench.plan.variant import Variant

MACHINE = {
    "cpu_model": "Test CPU",
    "cpu_cores": 2,
    "memory_bytes": 2**30,
    "system": "Linux",
    "machine": "x86_64",
    "python": "3.11.7",
    "hostname": "test",
    "versions": {"tensorflow": "2.21.0", "keras": "3.15.1"},
}
RUN = {"id": "synthetic", "profile": "synthetic", "baseline": None, "shard": "1/1"}


def variant_record(
    variant: Variant, repeat: int, step_ms: list[float], *, accuracy: float = 0.95
) -> dict[str, Any]:
    """An ok record whose one epoch took exactly these per-step times (ms)."""
    train_s = sum(step_ms) / 1000
    return {
        **records.envelope("variant", RUN, MACHINE, {"id": None, "dirty": False}),
        "variant": variant.to_dict(),
        "variant_id": variant.id,
        "repeat": repeat,
        "seed": repeat,
        "status": "ok",
        "reason": None,
        "settings": {
            "warmup_steps": 1,
            "target_accuracy": 0.97,
            "timeout_s": 60.0,
            "target_halfwidth": 0.03,
        },
        "job_s": 1.0,
        "data": {"source": "cache", "location": "x", "sha256_verified": True, "attempts": []},
        "timing": {
            "steps_per_epoch": len(step_ms),
            "step_ms_raw": [list(step_ms)],
            "train_s_per_epoch": [train_s],
            "val_s_per_epoch": [0.1],
            "fit_s": train_s + 0.1,
            "final_eval_s": 0.1,
        },
        "accuracy": {
            "loss": [0.3],
            "accuracy": [accuracy],
            "val_loss": [0.3],
            "val_accuracy": [accuracy],
            "test_loss": 0.3,
            "test_accuracy": accuracy,
            "train_images": 60000,
        },
        "model": {
            "layers": [],
            "params": 118282,
            "param_bytes": 473128,
            "param_dtypes": ["float32"],
            "compute_dtypes": ["float32"],
            "optimizer": "Adam",
            "optimizer_bytes": 946264,
            "activation_bytes_per_batch_est": 1000,
            "flops_per_step": 10**7,
        },
        "memory": {"peak_rss_bytes": 2**30, "peak_rss_source": "VmHWM", "gpu_peak_bytes": None},
        "backend": {
            "name": variant.backend,
            "version": MACHINE["versions"]["tensorflow"],
            "jit_compile": {"requested": variant.jit_compile, "resolved": False},
            "execution": "tf.function graph, no XLA",
        },
    }


def probe_record(phase: str, float32_gflops: list[float]) -> dict[str, Any]:
    trials = [
        {"device": "cpu", "dtype": "float32", "n": n, "flops_per_s": g * 1e9}
        for n, g in zip((1024, 2048), float32_gflops, strict=False)
    ]
    return {
        **records.envelope("probe", RUN, MACHINE, {"id": None, "dirty": False}),
        "probe": {
            "gpus": [],
            "matmul_n": 1024,
            "trials": trials,
            "peak_flops_per_s": {"cpu": {"float32": max(float32_gflops) * 1e9}},
            "phase": phase,
        },
    }


def arm_records(
    variant: Variant, typical_ms: list[float], *, steps: int = 200, seed: int = 0
) -> list[dict[str, Any]]:
    """One record per repeat, its steps scattered 5% around that repeat's typical step."""
    rng = np.random.default_rng(seed)
    return [
        variant_record(variant, r, [float(x) for x in t * rng.lognormal(0, 0.05, steps)])
        for r, t in enumerate(typical_ms)
    ]


def paired_run(
    arms_ms: dict[Variant, float],
    *,
    run_id: str,
    sets: int = 6,
    rounds: int = 8,
    block_steps: int = 20,
    machine: dict[str, Any] | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Records of a paired run: every arm (first: the baseline) in each of `sets` sets.

    In each set every arm's process has its own speed (2% CV), every round a machine speed all
    arms share (10% CV: paired ratios cancel it) and every step 3% of its own; an arm's true step
    is its `arms_ms` value. Rounds are separated by pauses, as an interleaved run's are.
    """
    rng = np.random.default_rng(seed)
    ids = [v.id for v in arms_ms]
    run = {**RUN, "id": run_id, "baseline": ids[0]}
    out = []
    for s in range(sets):
        machine_speed = rng.lognormal(0, 0.10, rounds)
        for v, true_ms in arms_ms.items():
            process = true_ms * rng.lognormal(0, 0.02)
            steps = [
                float(x)
                for r in range(rounds)
                for x in process * machine_speed[r] * rng.lognormal(0, 0.03, block_steps)
            ]
            rec = variant_record(v, s, steps)
            rec["run"], rec["machine"] = run, machine or MACHINE
            rec["timing"]["pauses"] = [[r * block_steps, 0.5] for r in range(1, rounds)]
            role = "baseline" if v.id == ids[0] else "control" if v.control else "arm"
            rec["pairing"] = {
                "set": f"g0-r{s}", "group": 0, "round": s, "extra": False, "role": role,
                "arms": ids, "block_s": 0.1, "rounds": rounds, "turns": [0] * rounds,
                "startup_s": 3.0, "set_s": 60.0,
            }  # fmt: skip
            out.append(rec)
    return out
