"""Pure renderers of records: aggregation, per-axis comparisons, findings, compare, tables, markdown and plots."""
