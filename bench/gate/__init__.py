"""The regression gate: the `regress` flow (regress.py), its pure rule and verdicts, its tables.

Its other pieces sit on the floors below, named for it: ``bench/run/gate_rounds.py``,
``bench/run/gate_ref.py``, ``bench/measure/ab_runs.py``, ``bench/plan/gate_variants.py`` and the
entry point ``bench/gate_probe.py`` (docs/layout.md, "The gate across the floors").
"""
