"""mnist-bench: variants → runner → JSON Lines records → reports and regression gates.

Modules that only read records (records, stats, aggregate, report, compare, regress) never import
TensorFlow; only the code that measures does (measure, clock, worker, peak).
"""

__version__ = "0.1.0"
