"""The strategy axis, set up inside one job's process.

On the tensorflow backend: TensorFlow's own tf.distribute strategies. On the jax backend, `mirrored`
is Keras' own data parallelism, ``keras.distribution.DataParallel``, over `replicas` JAX devices (on a
CPU, host devices split by XLA_FLAGS, which bench.run.worker sets). bench.run.runner skips every other
combination. TensorFlow is imported only for the tensorflow backend.

The parent's side (ports, TF_CONFIG, starting the worker processes) is ``bench.run.cluster``.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from bench.plan.variant import Variant

TF_CONFIG = "TF_CONFIG"  # TensorFlow's variable; bench.run.cluster sets it per multi_worker process


class StrategyError(RuntimeError):
    """A strategy cannot be set up as the variant asks; the message says why."""


def split_cpu(count: int) -> None:
    """Expose the CPU as `count` logical devices; must run before TensorFlow initialises."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    )


def make_strategy(variant: Variant) -> Any:
    """The strategy a variant asks for, or None for the default (one device).

    A tf.distribute strategy on the tensorflow backend, a keras.distribution.DataParallel on jax.
    Create it before any other TensorFlow work: MultiWorkerMirroredStrategy configures the
    process' collective ops, which TensorFlow only allows at startup.
    """
    if variant.strategy == "default":
        return None
    if variant.backend == "jax" and variant.strategy == "mirrored":
        return _jax_data_parallel(variant)
    if variant.backend != "tensorflow":
        raise StrategyError(
            f"strategy {variant.strategy!r} is not available on the {variant.backend} backend "
            "(bench.run.skips.skip_reason skips it)"
        )
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
                "bench.run.worker does this for every mirrored CPU job)"
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


def _jax_data_parallel(variant: Variant) -> Any:
    """keras.distribution.DataParallel over `replicas` JAX devices, set for the whole process."""
    import keras

    kind = variant.device
    devices = keras.distribution.list_devices(kind)
    if len(devices) < variant.replicas:
        hint = (
            " (bench.run.worker sets XLA_FLAGS=--xla_force_host_platform_device_count for CPU jobs)"
            if kind == "cpu"
            else ""
        )
        raise StrategyError(
            f"DataParallel over {variant.replicas} {kind} devices, but JAX sees {len(devices)}{hint}"
        )
    distribution = keras.distribution.DataParallel(devices=devices[: variant.replicas])
    keras.distribution.set_distribution(distribution)
    return distribution


def device_name(variant: Variant) -> str:
    """The one device a default-strategy job runs on, as the record names it."""
    if variant.backend == "tensorflow":
        return "/GPU:0" if variant.device == "gpu" else "/CPU:0"
    return f"{variant.device}:0"


def scope(variant: Variant, strategy: Any) -> contextlib.AbstractContextManager[Any]:
    """Where the model is built and trained.

    Under a tf.distribute strategy its scope, so the model's, optimizer's and metrics' variables
    are mirrored and fit splits each global batch over the replicas; else tf.device on TensorFlow.
    JAX's DataParallel is process-wide once set; jax and torch see only the CPU in CPU jobs.
    """
    if variant.backend != "tensorflow":
        return contextlib.nullcontext()
    if strategy is not None:
        return strategy.scope()
    import tensorflow as tf

    return tf.device(device_name(variant))


def describe(variant: Variant, strategy: Any) -> dict[str, Any]:
    """The record's 'distribution' section: what ran where, and both batch sizes."""
    tf_strategy = strategy is not None and variant.backend == "tensorflow"
    if strategy is None:
        replicas, devices = 1, [device_name(variant)]
    elif tf_strategy:
        replicas, devices = strategy.num_replicas_in_sync, list(strategy.extended.worker_devices)
    else:
        devices = [str(d) for d in strategy.device_mesh.devices.flatten()]
        replicas = len(devices)
    info: dict[str, Any] = {
        "strategy": variant.strategy,
        "tf_strategy": type(strategy).__name__ if tf_strategy else None,
        "keras_distribution": type(strategy).__name__ if strategy and not tf_strategy else None,
        "replicas": replicas,
        "global_batch": variant.batch_size,
        "per_replica_batch": variant.batch_size // replicas,
        "local_devices": devices,
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
