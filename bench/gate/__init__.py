"""The regression gate's decision, pure: baseline files, thresholds and verdicts, and their table."""
