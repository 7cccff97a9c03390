"""mnist-bench: plan (variants) → run (jobs) → measure (TensorFlow) → records → report / gate.

Only ``bench.measure`` imports TensorFlow or Keras; every other module reads plans or records and
starts without it (tests/test_layout.py checks this).
"""

__version__ = "0.1.0"
