"""Measuring, inside a job's process: the only code that imports TensorFlow, Keras, JAX or torch (training, backend check, step clock, peak probe, strategies, calibration, gate rounds, overhead)."""
