"""The regression gates: the `regress` flow (regress.py), the pure rules and verdicts, the stored baseline, the tables."""
