"""Why a job does not run on this machine: the one place such checks live (a skip quotes the
real error, so a report says what would have happened)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bench import envinfo
from bench.plan.variant import Variant

# Why a GPU job did not run when the start probe, which lists the GPUs, failed: a fault to retry
# (status failed), not a fact about the machine (skipped).
GPUS_UNKNOWN = (
    "not run: the start machine probe failed, so which GPUs this machine has is unknown; "
    "`mnist-bench run --resume --retry-failed` probes again and runs it"
)

# How each backend was asked for its GPUs (bench.measure.gpus), quoted when it saw none.
_LISTED_BY = {
    "tensorflow": "TensorFlow (tf.config.list_physical_devices('GPU') is empty)",
    "jax": "JAX (jax.devices('gpu') has none)",
    "torch": "torch (torch.cuda.device_count() is 0)",
}


def not_run(variant: Variant, gpus: Mapping[str, Sequence[str]] | None) -> dict[str, str] | None:
    """A job's status and reason when it does not run here; None when it runs.

    ``gpus`` None: the start probe failed. CPU jobs still run; GPU jobs fail with GPUS_UNKNOWN.
    """
    if gpus is None and variant.device == "gpu":
        return {"status": "failed", "reason": GPUS_UNKNOWN}
    reason = skip_reason(variant, gpus or {})
    return {"status": "skipped", "reason": reason} if reason else None


def skip_reason(variant: Variant, gpus: Mapping[str, Sequence[str]]) -> str | None:
    """Why a variant cannot run on this machine, or None. The one place such checks live.

    ``gpus``: backend → the GPUs it sees (``records.gpus_seen``); a backend absent from it sees none.
    """
    missing = envinfo.missing_backend_modules(variant.backend)
    if missing:
        return (
            f"backend {variant.backend} is not installed here (no module {', '.join(missing)}); "
            f"pip install 'mnist-bench[{variant.backend}]'"
        )
    if variant.backend != "tensorflow":
        reason = _backend_skip_reason(variant)
        if reason:
            return reason
    on_tf = variant.backend == "tensorflow"
    seen = list(gpus.get(variant.backend, []))
    if variant.device == "gpu" and not seen:
        return f"no GPU visible to {_LISTED_BY[variant.backend]} on this machine"
    if variant.device == "gpu" and variant.replicas_in_sync > len(seen):
        return (
            f"{variant.strategy} over {variant.replicas} GPUs needs {variant.replicas}, "
            f"{variant.backend} sees {len(seen)} on this machine"
        )
    # Both seen failing with Keras 3.15 / TensorFlow 2.21; measuring them would only record the error.
    if variant.strategy != "default" and variant.steps_per_execution > 1 and on_tf:
        return (
            "steps_per_execution > 1 under a tf.distribute strategy fails inside Keras' multi-step "
            "loop (InvalidArgumentError: You must feed a value for placeholder tensor "
            "'while/cond/Placeholder')"
        )
    if (
        on_tf
        and variant.strategy != "default"
        and variant.jit_compile is True  # "auto" resolves to no XLA under a strategy
        and variant.device == "cpu"
    ):
        return (
            "XLA cannot compile a strategy's cross-device work on CPU (multi_worker: 'Collectives "
            "are not yet implemented for CPU devices when compiling with XLA'; mirrored over "
            "logical CPUs: variables on another device)"
        )
    return None


def _backend_skip_reason(variant: Variant) -> str | None:
    """Combinations of a non-TensorFlow backend this harness cannot run, and why."""
    name = variant.backend
    if variant.device == "gpu" and variant.strategy != "default":
        return f"{variant.strategy} over GPUs on the {name} backend has not been verified here"
    if variant.strategy == "multi_worker":
        return (
            "multi_worker is tf.distribute.MultiWorkerMirroredStrategy, which only the tensorflow "
            f"backend has (Keras' multi-process distribution on {name} is not wired here)"
        )
    if variant.strategy == "mirrored" and name != "jax":
        return (
            "mirrored is tf.distribute.MirroredStrategy on tensorflow and keras.distribution."
            f"DataParallel on jax; Keras 3.15 has no keras.distribution backend for {name} "
            "(keras/src/backend/ has distribution_lib for jax and tensorflow only)"
        )
    if name == "torch" and variant.steps_per_execution > 1:
        return (
            "the torch backend refuses it (ValueError: `steps_per_execution` must be 1 with the "
            f"PyTorch backend. Received: steps_per_execution={variant.steps_per_execution})"
        )
    return None
