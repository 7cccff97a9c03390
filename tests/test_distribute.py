"""The strategy axis: MirroredStrategy over logical CPUs, MultiWorkerMirroredStrategy over processes."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from bench import records
from bench.measure import distribute
from bench.plan.settings import RunSettings
from bench.plan.variant import Variant, VariantError
from bench.run import cluster, runner, skips
from tests import hooks


def fail_on_worker_1() -> dict[str, Any]:
    """Hook: worker 1 of a multi_worker job fails before training; worker 0 is left waiting."""
    task = json.loads(os.environ.get(cluster.TF_CONFIG, "{}")).get("task", {})
    if task.get("index") == 1:
        raise RuntimeError("injected failure on worker 1 (test)")
    return hooks.small()


def _run(tmp_path: Path, variants: list[Variant], hook: str, timeout_s: float = 300) -> dict:
    out = tmp_path / "results.jsonl"
    settings = RunSettings(repeats=1, warmup_steps=2, timeout_s=timeout_s)
    ctx = runner.RunContext(run_id="t", profile="t", settings=settings, hook=hook)
    runner.run_plan(ctx, variants, out, measure_peak=False)
    return {r["variant_id"]: r for r in records.variant_records(records.read_records(out))}


def test_ids_checks_and_batch_semantics():
    assert Variant().id == "bs32-per_epoch-float32-cpu"
    assert Variant(strategy="default", replicas=4).id == "bs32-per_epoch-float32-cpu"  # unused
    assert Variant(strategy="default", replicas=4).replicas_in_sync == 1
    v = Variant(batch_size=128, strategy="mirrored", replicas=2, epochs=3)
    assert v.id == "bs128-per_epoch-float32-cpu-mirrored2-e3"
    assert (v.batch_size, v.replicas_in_sync) == (128, 2)
    assert Variant(strategy="multi_worker", replicas=4).id.endswith("-multi_worker4")
    with pytest.raises(VariantError, match=r"strategy='horovod': choose from \['default'"):
        Variant(strategy="horovod")
    with pytest.raises(VariantError, match="replicas=0: must be an integer >= 1"):
        Variant(strategy="mirrored", replicas=0)
    with pytest.raises(VariantError, match=r"batch_size=100 .* not divisible by replicas=3"):
        Variant(batch_size=100, strategy="mirrored", replicas=3)


def test_gpu_strategies_need_enough_gpus():
    two = Variant(device="gpu", strategy="mirrored", replicas=2)
    assert "needs 2, tensorflow sees 1" in str(skips.skip_reason(two, {"tensorflow": ["GPU:0"]}))
    assert skips.skip_reason(two, {"tensorflow": ["GPU:0", "GPU:1"]}) is None
    assert skips.skip_reason(Variant(strategy="multi_worker"), {}) is None  # CPU workers


def test_combinations_known_to_fail_are_skipped_with_the_error():
    spe = Variant(strategy="mirrored", steps_per_execution=4)
    assert "You must feed a value for placeholder" in str(skips.skip_reason(spe, {}))
    xla = Variant(strategy="multi_worker", jit_compile=True)
    assert "not yet implemented for CPU devices" in str(skips.skip_reason(xla, {}))
    assert skips.skip_reason(Variant(steps_per_execution=4, jit_compile=True), {}) is None
    gpu_xla = Variant(device="gpu", strategy="mirrored", jit_compile=True)
    assert (
        skips.skip_reason(gpu_xla, {"tensorflow": ["GPU:0", "GPU:1"]}) is None
    )  # XLA collectives exist on GPU


def test_tf_config_names_loopback_workers_only(monkeypatch):
    ports = cluster.free_ports(3)
    assert len(set(ports)) == 3
    config = json.loads(cluster.tf_config(ports, 2))
    assert config["cluster"]["worker"] == [f"127.0.0.1:{p}" for p in ports]
    assert config["task"] == {"type": "worker", "index": 2}
    assert "CUDA_VISIBLE_DEVICES" not in cluster.worker_env(ports, 1, "cpu")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    env = cluster.worker_env(ports, 1, "gpu")
    assert json.loads(env["TF_CONFIG"])["task"]["index"] == 1
    assert env["CUDA_VISIBLE_DEVICES"] == "1"  # one GPU per worker
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    assert cluster.worker_env(ports, 1, "gpu")["CUDA_VISIBLE_DEVICES"] == "5"


def test_mirrored_without_logical_devices_says_how_to_get_them():
    # This test process has one CPU device; only a fresh process can split it.
    with pytest.raises(distribute.StrategyError, match=r"TensorFlow sees 1 .*split_cpu"):
        distribute.make_strategy(Variant(strategy="mirrored", replicas=2))


@pytest.mark.slow
def test_mirrored_over_two_logical_cpus_runs_to_completion(tmp_path):
    variants = [
        Variant(batch_size=100, epochs=2, strategy="mirrored"),
        Variant(batch_size=100, strategy="mirrored", precision="mixed_float16"),
    ]
    got = _run(tmp_path, variants, "tests.hooks:small")
    rec = got["bs100-per_epoch-float32-cpu-mirrored2-e2"]
    assert rec["status"] == "ok", rec["reason"]
    dist = rec["distribution"]
    assert dist["tf_strategy"] == "MirroredStrategy"
    assert (dist["replicas"], dist["global_batch"], dist["per_replica_batch"]) == (2, 100, 50)
    assert [d.rsplit("/", 1)[-1] for d in dist["local_devices"]] == ["device:CPU:0", "device:CPU:1"]
    assert rec["timing"]["steps_per_epoch"] == 20  # 2,000 images / global batch 100
    assert len(rec["timing"]["step_ms_raw"][1]) == 20
    assert all(a is not None for a in rec["accuracy"]["val_accuracy"])  # validation ran
    assert rec["accuracy"]["test_accuracy"] > 0.5
    mixed = got["bs100-per_epoch-mixed_float16-cpu-mirrored2"]
    assert mixed["status"] == "ok", mixed["reason"]
    assert mixed["distribution"]["replicas"] == 2
    assert mixed["model"]["optimizer"] == "LossScaleOptimizer"
    assert mixed["model"]["compute_dtypes"][1:3] == ["float16", "float16"]
    assert mixed["model"]["param_dtypes"] == ["float32"]


@pytest.mark.slow
def test_multi_worker_runs_two_processes_to_completion(tmp_path):
    variant = Variant(batch_size=100, validation="split", epochs=2, strategy="multi_worker")
    rec = _run(tmp_path, [variant], "tests.hooks:small")[variant.id]
    assert rec["status"] == "ok", rec["reason"]
    dist = rec["distribution"]
    assert (dist["replicas"], dist["workers"], dist["per_replica_batch"]) == (2, 2, 50)
    assert dist["task"] == {"type": "worker", "index": 0}  # the chief's record
    assert [w["index"] for w in rec["worker_processes"]] == [0, 1]
    assert all(w["status"] == "ok" and w["exit_code"] == 0 for w in rec["worker_processes"])
    assert rec["timing"]["steps_per_epoch"] == 18  # 1,800 training images / global batch 100
    assert len(rec["timing"]["step_ms_raw"][0]) == 18
    assert all(a is not None for a in rec["accuracy"]["val_accuracy"])
    assert rec["accuracy"]["test_accuracy"] > 0.5


@pytest.mark.slow
def test_one_failing_worker_stops_the_others_and_is_named(tmp_path):
    variant = Variant(batch_size=100, strategy="multi_worker")
    rec = _run(tmp_path, [variant], "tests.test_distribute:fail_on_worker_1", 240)[variant.id]
    assert rec["status"] == "failed"
    assert "worker 1" in rec["reason"] and "injected failure on worker 1" in rec["reason"]
    # Worker 0 did not wait for the time limit (that would be a 'timeout' record): the runner
    # killed it, or it failed in the collective first, which it sometimes does under load.
    zero = rec["worker_processes"][0]
    assert zero["exit_code"] == -signal.SIGKILL or zero["status"] == "failed", zero


@pytest.mark.slow
def test_hanging_workers_become_one_timeout_record(tmp_path):
    variant = Variant(batch_size=100, strategy="multi_worker")
    rec = _run(tmp_path, [variant], "tests.hooks:hang", timeout_s=15)[variant.id]
    assert rec["status"] == "timeout" and "15 s limit" in rec["reason"]
    assert [w["exit_code"] for w in rec["worker_processes"]] == [-9, -9]
