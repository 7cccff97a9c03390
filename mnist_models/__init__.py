"""Real MNIST and the reference MLP; nothing here knows about benchmarking.

The model lives in ``mnist_models.mlp`` (imports Keras); the loader in ``mnist_models.data``
(imports Keras only for its own download source).
"""

from mnist_models.data import Mnist, MnistDataError, load_mnist

__all__ = ["Mnist", "MnistDataError", "load_mnist"]
