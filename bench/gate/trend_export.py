"""The trend's latest point in the formats existing dashboards ingest. No TF.

- github-action-benchmark, tool ``customSmallerIsBetter``: a JSON array of
  ``{name, unit, value, range?, extra?}`` with ``range`` and ``extra`` strings (its
  ``src/extract.ts``, ``BenchmarkResult``).
- Bencher Metric Format: ``{benchmark: {measure: {value, lower_value?, upper_value?}}}`` (its
  ``bmf.json`` schema); the interval is carried as lower and upper values.

Both carry the ratio to the anchor, not an absolute time: the dashboard then plots what does not
move with the runner (docs/trend.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.gate import trend
from bench.gate.ab_rule import METRIC_LABELS

UNIT = "× anchor"
MEASURE = "ratio-to-anchor"  # Bencher measure slug (kebab case, at most 64 characters)
FORMATS = ("github-action-benchmark", "bencher")


def _latest(history: Sequence[Mapping[str, Any]]) -> list[tuple[str, trend.Point]]:
    """(benchmark name, the latest point) of every series."""
    out = []
    for variant, metric in trend.keys(history):
        points = trend.series(history, variant, metric)
        if points:
            out.append((f"{variant} {METRIC_LABELS[metric]}", points[-1]))
    return out


def github_action_benchmark(history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """customSmallerIsBetter entries for the latest commit (a ratio above 1 is slower)."""
    anchor = trend.anchors(history)[0][:10] if history else ""
    out = []
    for name, p in _latest(history):
        entry = {
            "name": name,
            "unit": UNIT,
            "value": round(p.ratio.point, 6),
            "range": f"{p.ratio.lo:.4f}–{p.ratio.hi:.4f} (95% CI)",
            "extra": f"commit {p.commit['id'][:10]} ÷ anchor {anchor}"
            + (f"\nvs previous commit: {p.verdict}" if p.change is not None else ""),
        }
        out.append(entry)
    return out


def bencher(history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Bencher Metric Format for the latest commit, the interval as lower and upper values."""
    return {
        name: {
            MEASURE: {
                "value": p.ratio.point,
                "lower_value": p.ratio.lo,
                "upper_value": p.ratio.hi,
            }
        }
        for name, p in _latest(history)
    }


def export(history: Sequence[Mapping[str, Any]], fmt: str) -> Any:
    if fmt not in FORMATS:
        raise trend.TrendError(f"--format {fmt!r}: choose from {list(FORMATS)}")
    if not history:
        raise trend.TrendError("the history is empty: nothing to export")
    return github_action_benchmark(history) if fmt == FORMATS[0] else bencher(history)
