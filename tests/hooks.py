"""Hooks the runner's child processes call (RunContext.hook = 'tests.hooks:NAME').

They go through the public API to make a variant small, diverge, fail or hang; no product flag
exists for any of this.
"""

from __future__ import annotations

import time
from typing import Any

from mnist_models.data import load_mnist
from tests.conftest import CACHE


def small() -> dict[str, Any]:
    """Train on 2,000 real images, validate on 500."""
    return {"data": load_mnist(cache_path=CACHE, sources=("cache",)).head(2000, 500)}


def diverge() -> dict[str, Any]:
    """A learning rate no model survives: the loss goes non-finite."""
    return small() | {"learning_rate": 1e30}


def fail() -> dict[str, Any]:
    raise RuntimeError("injected failure (test)")


def hang() -> dict[str, Any]:
    time.sleep(3600)
    return {}
