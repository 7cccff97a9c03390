"""The GPUs each installed Keras backend can see: listed, nothing run on them.

A GPU variant runs only on a backend that sees a GPU (``bench.run.skips.skip_reason``), so a
machine where only TensorFlow lacks CUDA still measures JAX or torch there, and none runs on CPU
by accident. Each backend is imported here only if installed; the probe runs in its own process.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable


def _tensorflow() -> list[str]:
    import tensorflow as tf

    return [
        tf.config.experimental.get_device_details(d).get("device_name", d.name)
        for d in tf.config.list_physical_devices("GPU")
    ]


def _jax() -> list[str]:
    import jax

    try:
        return [d.device_kind for d in jax.devices("gpu")]
    except RuntimeError:  # "Unknown backend: 'gpu'" where jaxlib has no CUDA plugin or sees no GPU
        return []


def _torch() -> list[str]:
    import torch

    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


LISTERS: dict[str, Callable[[], list[str]]] = {
    "tensorflow": _tensorflow,
    "jax": _jax,
    "torch": _torch,
}


def visible_gpus() -> dict[str, list[str]]:
    """Backend → names of the GPUs it sees, for every installed backend."""
    # Listing initialises JAX's GPU client, which would otherwise reserve most of the card.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    return {
        name: lister()
        for name, lister in LISTERS.items()
        if importlib.util.find_spec(name) is not None
    }
