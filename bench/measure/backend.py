"""The Keras backend a job runs on: checked against the variant, described in its record.

KERAS_BACKEND is read once, when Keras is first imported, so ``bench.run.worker`` sets it in each
job's fresh process; this module only checks the result and says what ``jit_compile`` resolved to
and what that means on this backend. Imports Keras (and so the backend), nothing else.
"""

from __future__ import annotations

import importlib
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import keras

# What model.jit_compile (as resolved by Keras at compile time) means for a training step.
# Sources, Keras 3.15: trainers/trainer.py (_resolve_auto_jit_compile, the jit_compile setter),
# backend/jax/trainer.py (jax.jit only if jit_compile), backend/torch/trainer.py (torch.compile only
# if jit_compile), backend/tensorflow/trainer.py (tf.function always; jit_compile=True adds XLA).
EXECUTION = {
    ("tensorflow", False): "tf.function graph, no XLA",
    ("tensorflow", True): "tf.function graph compiled by XLA",
    ("jax", False): "eager, op by op (no jax.jit)",
    ("jax", True): "jax.jit: the whole step compiled by XLA",
    ("torch", False): "eager PyTorch (no torch.compile)",
    ("torch", True): "torch.compile (dynamo + inductor)",
}
# Warnings a record keeps (first lines, de-duplicated): enough to see e.g. torch.compile falling back.
MAX_WARNINGS = 10
WARNING_CHARS = 300
# torch._dynamo reports e.g. its recompile limit through logging, on loggers that do not propagate.
_LOGGER_ROOTS = ("torch", "jax")


class BackendMismatch(RuntimeError):
    """Keras runs on another backend than the variant asks for."""


def check_backend(requested: str) -> None:
    """Raise BackendMismatch unless keras.backend.backend() is the requested backend."""
    actual = keras.backend.backend()
    if actual != requested:
        raise BackendMismatch(
            f"the variant asks for backend {requested!r} but Keras runs on {actual!r} "
            f"(KERAS_BACKEND={os.environ.get('KERAS_BACKEND')!r}); the backend is fixed when Keras "
            "is first imported, so only a fresh process (bench.run.worker) can choose it"
        )


class WrongDevice(RuntimeError):
    """The model's variables are not on the device the variant asks for."""


def variable_device(model: keras.Model) -> str | None:
    """Where the model's first variable lives, as its backend names it (None if it cannot say)."""
    value = model.weights[0].value
    try:
        if keras.backend.backend() == "jax":
            return ",".join(sorted(str(d) for d in value.devices()))
        return str(value.device) or None  # torch: cuda:0 / cpu; TensorFlow: .../device:GPU:0
    except (AttributeError, ValueError, RuntimeError):  # e.g. a distributed TensorFlow variable
        return None


def check_device(model: keras.Model, device: str) -> None:
    """Refuse to measure a GPU variant whose variables ended up on the CPU (never silently CPU).

    TensorFlow places by tf.device scopes (bench.measure.distribute) and only runs where it lists a
    GPU; JAX and torch place by default, so their placement is checked here.
    """
    if device != "gpu" or keras.backend.backend() == "tensorflow":
        return
    where = variable_device(model)
    if where is None:
        return
    if not any(word in where.lower() for word in ("cuda", "gpu")):
        raise WrongDevice(
            f"the variant asks for the GPU but {keras.backend.backend()} put the model's variables on {where}"
        )


def version(name: str) -> str:
    """The running backend's own __version__ (already imported by Keras, so no extra cost)."""
    return str(importlib.import_module(name).__version__)


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(f"{record.name}: {record.getMessage()}")


@contextmanager
def captured_warnings() -> Iterator[list[str]]:
    """Collect Python warnings and the backends' logged warnings raised inside the block.

    The warning filters in force stay as they are (pytest's included); only where a warning goes
    changes. The list is filled when the block exits: each warning's first two lines, de-duplicated,
    at most MAX_WARNINGS.
    """
    lines: list[str] = []
    handler = _Collect(lines)
    loggers = _backend_loggers()
    for logger in loggers:
        logger.addHandler(handler)
    out: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            yield out
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        lines[:0] = [f"{w.category.__name__}: {w.message}" for w in caught]
        for line in lines:
            head = " — ".join(x.strip() for x in line.strip().splitlines()[:2])[:WARNING_CHARS]
            if head and head not in out and len(out) < MAX_WARNINGS:
                out.append(head)


def _backend_loggers() -> list[logging.Logger]:
    """The backends' root loggers, and every logger under them that does not propagate to those."""
    names = [
        name
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
        and name.split(".")[0] in _LOGGER_ROOTS
        and not logger.propagate
    ]
    return [logging.getLogger(n) for n in sorted({*_LOGGER_ROOTS, *names})]


def describe(model: keras.Model, requested_jit: bool | str, caught: list[str]) -> dict[str, Any]:
    """The record's 'backend' section: which backend, its version, how the step was executed."""
    name = keras.backend.backend()
    resolved = bool(model.jit_compile)
    return {
        "name": name,
        "version": version(name),
        "jit_compile": {"requested": requested_jit, "resolved": resolved},
        "execution": EXECUTION[(name, resolved)],
        "device": variable_device(model),
        "warnings": caught,
    }
