"""Measuring, inside a job's process: the only code that imports TensorFlow or Keras (training, step clock, peak probe, strategies, calibration, gate rounds, overhead)."""
