"""The harness-overhead self-check's table (``mnist-bench overhead``), from its measurement."""

from __future__ import annotations

from typing import Any

from bench.report.tables import markdown_table


def render_overhead(result: dict[str, Any]) -> str:
    """Markdown: each round's figures, then the median ratios and their range."""
    table = markdown_table(
        {
            "round": str(i),
            "harness median ms": f"{p['harness']['step_ms_median']:.3f}",
            "bare median ms": f"{p['bare']['step_ms_median']:.3f}",
            "harness wall ms/step": f"{p['harness']['wall_step_ms']:.3f}",
            "bare wall ms/step": f"{p['bare']['wall_step_ms']:.3f}",
        }
        for i, p in enumerate(result["rounds"], start=1)
    )
    lines = [table, ""]
    for key, label in (("step_ms_median", "median step"), ("wall_step_ms", "wall time per step")):
        lo, hi = result["ratio_range"][key]
        lines.append(
            f"harness/bare {label}: median {result['median_ratio'][key]:.3f}x "
            f"(rounds {lo:.3f}-{hi:.3f}), {len(result['rounds'])} interleaved rounds of {result['variant']}"
        )
    return "\n".join(lines) + "\n"
