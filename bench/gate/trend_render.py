"""`mnist-bench trend report HISTORY`: the trend as markdown tables and a PNG. No TF."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import outputs
from bench.gate import trend
from bench.gate.ab_rule import METRIC_LABELS
from bench.report.tables import markdown_table

PLOT = "trend.png"


def _ratio(ci: Any) -> str:
    return "–" if ci is None else f"{ci.point:.3f}× [{ci.lo:.3f}–{ci.hi:.3f}]"


def _commit(c: Mapping[str, str]) -> str:
    subject = c.get("subject", "")
    return f"`{c['id'][:10]}` {subject[:50]}{'…' if len(subject) > 50 else ''}"


def table(points: Sequence[trend.Point]) -> str:
    rows = [
        {
            "commit": _commit(p.commit),
            "date": p.commit.get("time", "")[:10],
            "ratio to anchor [95% CI]": _ratio(p.ratio),
            "÷ previous commit [95% CI]": _ratio(p.change),
            "verdict vs previous": (f"**{p.verdict}**" if p.moved else p.verdict) or "–",
        }
        for p in points
    ]
    return markdown_table(rows)


def render(history: Sequence[Mapping[str, Any]]) -> str:
    """The whole trend page: what it is against, then a table per gate variant and metric."""
    if not history:
        raise trend.TrendError("the history is empty: run `mnist-bench trend run` first")
    chain = trend.anchors(history)
    machines = sorted({_machine(r) for r in history})
    head = [
        "# Step time across commits",
        "",
        f"Each commit's step time ÷ the anchor `{chain[0][:10]}`'s, both measured in one A/B run on "
        "one machine, taking turns (the ratio, unlike an absolute time, does not move with the "
        "runner). Ratios are geometric means over the run's rounds with 95% t-intervals; a "
        f"change against the previous commit is called only when its whole interval lies beyond "
        f"±{100 * trend.FLOOR:g}% (docs/trend.md).",
        "",
        f"- **Anchors:** {' → '.join(f'`{a[:10]}`' for a in chain)}"
        + (
            " (each move chained by one overlap run, whose uncertainty the later ratios carry)"
            if len(chain) > 1
            else ""
        ),
        f"- **Machines:** {'; '.join(machines)}",
        f"- **Points:** {sum(r['kind'] == 'point' for r in history)} commits",
        "",
        f"![Ratio to the anchor per commit]({PLOT})",
    ]
    body = []
    for variant, metric in trend.keys(history):
        points = trend.series(history, variant, metric)
        moved = [p for p in points if p.moved]
        said = (
            "moved at " + ", ".join(f"`{p.commit['id'][:10]}` ({p.verdict})" for p in moved)
            if moved
            else "no commit moved it"
        )
        body += ["", f"## {variant}, {METRIC_LABELS[metric]}: {said}", "", table(points)]
    return "\n".join(head + body) + "\n"


def _machine(record: Mapping[str, Any]) -> str:
    m = record.get("machine") or {}
    v = m.get("versions") or {}
    return (
        f"{m.get('cpu_model', '?')} x{m.get('cpu_cores', '?')} ({m.get('hostname', '?')}; Python "
        f"{m.get('python', '?')}, TensorFlow {v.get('tensorflow', '?')}, Keras {v.get('keras', '?')})"
    )


def plot(history: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Ratio to the anchor per commit with 95% error bars, one panel per variant and metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {k: trend.series(history, *k) for k in trend.keys(history)}
    fig, axes = plt.subplots(len(series), 1, figsize=(9.0, 2.4 * len(series)), squeeze=False)
    for ax, ((variant, metric), points) in zip(axes[:, 0], series.items(), strict=True):
        x = list(range(len(points)))
        y = [p.ratio.point for p in points]
        err = [
            [p.ratio.point - p.ratio.lo for p in points],
            [p.ratio.hi - p.ratio.point for p in points],
        ]
        ax.errorbar(x, y, yerr=err, fmt="o-", capsize=3)
        for i, p in enumerate(points):
            if p.moved:
                ax.annotate(
                    p.verdict,
                    (i, p.ratio.hi),
                    fontsize="x-small",
                    color="tab:red",
                    ha="center",
                    va="bottom",
                )
        ax.axhline(1.0, color="grey", linewidth=1, linestyle="--")
        ax.set_xticks(x, [p.commit["id"][:7] for p in points], fontsize="x-small", rotation=30)
        ax.set_ylabel("÷ anchor")
        ax.set_title(f"{variant}, {METRIC_LABELS[metric]}", fontsize="small")
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    outputs.write_atomic(
        path, lambda fh: fig.savefig(fh, format="png", dpi=100, metadata={"Software": None})
    )
    plt.close(fig)
    return path


def write_report(history_path: Path, out_dir: Path, *, force: bool = False) -> Path:
    """REPORT.md and trend.png from a history file alone."""
    md, png = out_dir / "REPORT.md", out_dir / PLOT
    for p in (md, png):
        outputs.check_output(p, inputs=[history_path], force=force)
    history = trend.read_history(history_path)
    text = render(history)
    plot(history, png)
    outputs.write_atomic(md, text)
    return md
