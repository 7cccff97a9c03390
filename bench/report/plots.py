"""PNG plots beside the report (matplotlib, Agg backend), drawn from the run summary alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench import outputs

WIDTH_IN = 9.0  # ~900 px at 100 dpi: GitHub's content width
DPI = 100


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    outputs.write_atomic(
        path, lambda fh: fig.savefig(fh, format="png", dpi=DPI, metadata={"Software": None})
    )
    plt.close(fig)
    return path


def step_time_vs_batch(rows: list[dict[str, Any]], validation: str, path: Path) -> Path | None:
    """Step time and samples/s vs batch size with 95% CI bars, a line per (backend, precision, device)."""
    ok = [r for r in rows if r["status"] == "ok" and r["validation"] == validation]
    if not ok:
        return None
    fig, (ax_step, ax_rate) = plt.subplots(1, 2, figsize=(WIDTH_IN, 3.6))
    several_backends = len({r["backend"] for r in ok}) > 1
    for key in sorted({(r["backend"], r["precision"], r["device"]) for r in ok}):
        line = sorted(
            (r for r in ok if (r["backend"], r["precision"], r["device"]) == key),
            key=lambda r: r["batch_size"],
        )
        batches = [r["batch_size"] for r in line]
        label = ", ".join(key if several_backends else key[1:])
        step = [r["step_ms"] for r in line]
        # 95% CI as error bars; none with a single repeat.
        lo = [r["step_ms"] - (r["step_ms_ci_lo"] or r["step_ms"]) for r in line]
        hi = [(r["step_ms_ci_hi"] or r["step_ms"]) - r["step_ms"] for r in line]
        ax_step.errorbar(batches, step, yerr=[lo, hi], marker="o", capsize=3, label=label)
        rate = [r["samples_per_s"] for r in line]
        rate_lo = [
            s - 1000 * r["batch_size"] / (r["step_ms_ci_hi"] or r["step_ms"])
            for s, r in zip(rate, line, strict=True)
        ]
        rate_hi = [
            1000 * r["batch_size"] / (r["step_ms_ci_lo"] or r["step_ms"]) - s
            for s, r in zip(rate, line, strict=True)
        ]
        ax_rate.errorbar(batches, rate, yerr=[rate_lo, rate_hi], marker="o", capsize=3, label=label)
    ticks = sorted({r["batch_size"] for r in ok})
    for ax, ylabel in (
        (ax_step, "median step time (ms), 95% CI"),
        (ax_rate, "throughput (samples/s)"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("batch size (log scale)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    ax_step.set_title(f"Step time ({validation} validation)")
    ax_rate.set_title("Training throughput")
    ax_rate.legend(fontsize="small")
    return _save(fig, path)


def val_accuracy_curves(curves: dict[str, dict[str, Any]], path: Path) -> Path | None:
    """Validation accuracy per epoch, first successful repeat of each variant (RunSummary.curves)."""
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 4.0))
    drawn = False
    for variant_id, c in curves.items():
        points = [(i + 1, a) for i, a in enumerate(c["val_accuracy"]) if a is not None]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=variant_id)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    target = next(iter(curves.values()))["target_accuracy"]
    ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target:g}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Validation accuracy per epoch (first repeat)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="x-small", ncol=2)
    return _save(fig, path)


def time_to_target(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Training seconds to the target accuracy per variant; bars absent where never reached."""
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        return None
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 0.35 * len(ok) + 1.2))
    names = [r["variant_id"] for r in ok]
    values = [r["time_to_target_s"] or 0.0 for r in ok]
    ax.barh(names, values, color="tab:blue")
    for i, r in enumerate(ok):
        if r["time_to_target_s"] is None:
            why = "n/a: no per-epoch validation" if r["validation"] == "end_only" else "not reached"
            ax.text(0, i, f" {why}", va="center", fontsize="small", color="grey")
    ax.invert_yaxis()
    ax.set_xlabel(
        f"training time to {ok[0]['target_accuracy']:g} validation accuracy (s, validation excluded)"
    )
    ax.set_title("Time to accuracy target")
    ax.grid(True, axis="x", alpha=0.3)
    return _save(fig, path)


def train_vs_validation(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Training vs validation seconds over the whole run, one bar per variant (stacked)."""
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        return None
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 0.35 * len(ok) + 1.2))
    names = [r["variant_id"] for r in ok]
    train = [r["train_s_per_epoch"] * r["epochs"] for r in ok]
    # end_only validates once after training; the others inside fit, every (N-th) epoch.
    val = [
        r["final_eval_s"] if r["validation"] == "end_only" else r["val_s_per_epoch"] * r["epochs"]
        for r in ok
    ]
    ax.barh(names, train, label="training")
    ax.barh(names, val, left=train, label="validation")
    ax.invert_yaxis()
    ax.set_xlabel("seconds per run (median over repeats)")
    ax.set_title("Training vs validation time")
    ax.legend(fontsize="small")
    ax.grid(True, axis="x", alpha=0.3)
    return _save(fig, path)


def curves_over_seeds(
    bands: dict[str, list[Any]], label: str, best_epoch: int | None, path: Path
) -> Path | None:
    """Training and validation accuracy and loss per epoch: the mean over seeds, 95% band shaded."""
    if not bands or not bands["accuracy"]:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH_IN, 3.6))
    for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
        for key, name in ((metric, "training"), (f"val_{metric}", "validation")):
            points = [(e + 1, b) for e, b in enumerate(bands[key]) if b is not None]
            if not points:
                continue
            epochs = [e for e, _ in points]
            ax.plot(epochs, [b.point for _, b in points], label=name)
            ax.fill_between(epochs, [b.lo for _, b in points], [b.hi for _, b in points], alpha=0.3)
        if best_epoch is not None:
            ax.axvline(
                best_epoch, color="grey", linestyle="--", linewidth=1, label="lowest val_loss"
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small")
    fig.suptitle(f"{label}: mean over seeds, 95% band", fontsize="medium")
    return _save(fig, path)
