"""Running jobs: each (variant, repeat) in a fresh worker process, multi-worker clusters, progress and machine facts; no TensorFlow in the parent."""
