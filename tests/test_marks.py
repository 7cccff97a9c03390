"""The `slow` mark's guard (tests/conftest.py): a test without the mark cannot train a model."""

from __future__ import annotations

import keras  # imported before the guard runs, as in any run that collects tests/test_model.py
import numpy as np
import pytest

from mnist_models import mlp


def test_a_test_without_the_slow_mark_cannot_fit_the_model():
    # Bug caught: the guard not installed, or patched where the reference MLP does not inherit
    # `fit` from; then a training test could lose its mark and slow the fast loop unnoticed.
    model = mlp.build_mlp("float32")
    assert isinstance(model, keras.Model)
    with pytest.raises(pytest.fail.Exception, match=r"trains a model: mark it @pytest\.mark\.slow"):
        model.fit(np.zeros((2, 28, 28)), np.zeros(2), verbose=0)
