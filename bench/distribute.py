"""The strategy axis: TensorFlow's own tf.distribute strategies, set up for one job.

The parent (runner) uses only the TF-free helpers here (ports, TF_CONFIG, per-worker env); the child
(worker, measure) imports TensorFlow inside the functions that need it, so importing this module
never starts TensorFlow.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from typing import Any

from bench.variant import Variant

LOOPBACK = "127.0.0.1"
TF_CONFIG = "TF_CONFIG"


class StrategyError(RuntimeError):
    """A strategy cannot be set up as the variant asks; the message says why."""


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports free on the loopback interface right now."""
    sockets = []
    try:
        for _ in range(count):  # all held open together, so the kernel hands out distinct ports
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports: Sequence[int], index: int) -> str:
    """TF_CONFIG for worker `index` of a cluster of loopback workers (worker 0 is the chief)."""
    return json.dumps(
        {
            "cluster": {"worker": [f"{LOOPBACK}:{port}" for port in ports]},
            "task": {"type": "worker", "index": index},
        }
    )


def worker_env(ports: Sequence[int], index: int, device: str) -> dict[str, str]:
    """Environment additions for one multi_worker process: its TF_CONFIG, and its own GPU."""
    env = {TF_CONFIG: tf_config(ports, index)}
    if device == "gpu":
        # One GPU per worker, counted within whatever this process was already allowed to see.
        visible = [g for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
        env["CUDA_VISIBLE_DEVICES"] = visible[index] if visible else str(index)
    return env


def split_cpu(count: int) -> None:
    """Expose the CPU as `count` logical devices; must run before TensorFlow initialises."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    )


def make_strategy(variant: Variant) -> Any:
    """The tf.distribute strategy a variant asks for, or None for the default (one device).

    Create it before any other TensorFlow work: MultiWorkerMirroredStrategy configures the
    process' collective ops, which TensorFlow only allows at startup.
    """
    if variant.strategy == "default":
        return None
    import tensorflow as tf

    if variant.strategy == "multi_worker":
        if TF_CONFIG not in os.environ:
            raise StrategyError("multi_worker needs TF_CONFIG; the runner sets it per worker")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        kind = variant.device.upper()
        devices = tf.config.list_logical_devices(kind)
        if len(devices) < variant.replicas:
            hint = (
                " (split the CPU with distribute.split_cpu before TensorFlow initialises; "
                "bench.worker does this for every mirrored CPU job)"
                if kind == "CPU"
                else ""
            )
            raise StrategyError(
                f"mirrored over {variant.replicas} {kind} devices, but TensorFlow sees "
                f"{len(devices)}{hint}"
            )
        strategy = tf.distribute.MirroredStrategy([d.name for d in devices[: variant.replicas]])
    if strategy.num_replicas_in_sync != variant.replicas:
        raise StrategyError(
            f"{type(strategy).__name__} has {strategy.num_replicas_in_sync} replicas in sync, "
            f"the variant asks for replicas={variant.replicas}"
        )
    return strategy


def describe(variant: Variant, strategy: Any, device_name: str) -> dict[str, Any]:
    """The record's 'distribution' section: what ran where, and both batch sizes."""
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    info: dict[str, Any] = {
        "strategy": variant.strategy,
        "tf_strategy": type(strategy).__name__ if strategy is not None else None,
        "replicas": replicas,
        "global_batch": variant.batch_size,
        "per_replica_batch": variant.batch_size // replicas,
        "local_devices": list(strategy.extended.worker_devices) if strategy else [device_name],
        "workers": 1,
        "task": None,
    }
    if variant.strategy == "multi_worker":
        resolver = strategy.cluster_resolver
        info["workers"] = len(resolver.cluster_spec().as_dict().get("worker", []))
        info["task"] = {"type": resolver.task_type, "index": resolver.task_id}
    return info


def patch_keras_multi_worker(model: Any, strategy: Any) -> None:
    """Work around two Keras 3 bugs that stop model.fit under MultiWorkerMirroredStrategy.

    keras-team/keras#20585 (open; still in Keras 3.15): before training, Keras all-reduces the whole
    first batch — a nested (x, y) structure — only to read its shapes, and the collective reduce
    rejects nested values. We build from this worker's own first batch instead.
    tensorflow/tensorflow#72388: the per-step logs (scalar loss and metrics) are all-reduced with
    axis=0, which a 0-d value does not have. We reduce scalars with axis=None (a plain cross-replica
    mean, as the single-worker path does); everything else takes Keras' own path.
    Both only change how Keras prepares inputs and reports logs; gradients and variables are
    synchronised by TensorFlow as usual. The process is one job, so the module patch dies with it.
    """
    import tensorflow as tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as tf_trainer

    def first_local(value: Any, strategy: Any = strategy) -> Any:
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    build = model._maybe_symbolic_build

    def build_from_local_batch(iterator: Any = None, data_batch: Any = None) -> Any:
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tree.map_structure(first_local, next(it))
                break
        return build(data_batch=data_batch)

    model._maybe_symbolic_build = build_from_local_batch

    reduce_per_replica = tf_trainer.reduce_per_replica
    if getattr(reduce_per_replica, "_mnist_bench_patched", False):
        return

    def reduce_scalars_safely(values: Any, strategy: Any, reduction: str = "auto") -> Any:
        def one(value: Any) -> Any:
            if reduction in ("auto", "mean") and first_local(value, strategy).shape.rank == 0:
                return strategy.reduce("MEAN", value, axis=None)
            return reduce_per_replica(value, strategy, reduction)

        return tree.map_structure(one, values)

    reduce_scalars_safely._mnist_bench_patched = True  # type: ignore[attr-defined]
    tf_trainer.reduce_per_replica = reduce_scalars_safely
