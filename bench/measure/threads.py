"""TensorFlow's CPU thread pools: what they are set to, and pinning them before the first op. Imports TF."""

from __future__ import annotations

import tensorflow as tf


def thread_settings() -> dict[str, int]:
    """TensorFlow's CPU thread pools as configured (0 = TensorFlow picks)."""
    return {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
    }


def pin_threads(threads: int) -> None:
    """Give TF's intra- and inter-op pools `threads` each; possible only before TF runs an op."""
    if thread_settings() == {"intra_op": threads, "inter_op": threads}:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as exc:
        raise ValueError(
            f"cannot set TensorFlow to {threads} thread(s) per pool, it is already running "
            f"({exc}); measure the gate in a fresh process"
        ) from None
