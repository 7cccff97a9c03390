"""The walkthrough the project began from, side by side with a measured run of its configuration.

The walkthrough's figures are data here, typed from its printout (`model.summary()` and the epoch-1
line); this run's are means over seeds with 95% t-intervals. A verdict says "matches" exactly when
the walkthrough's figure lies inside the interval (an exact figure, such as a parameter count,
must be equal), otherwise "differs".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench import stats
from bench.report.seeds import SeedRun

# Its configuration: what a run's baseline must be for the table to compare like with like.
CONFIG = {
    "batch_size": 32,
    "validation": "per_epoch",
    "precision": "float32",
    "device": "cpu",
    "backend": "tensorflow",
    "learning_rate": 0.01,
    "epochs": 30,
}
# Its printout: model.summary() and the line Keras printed for epoch 1
# ("1875/1875 6s 2ms/step accuracy 0.8821 loss 0.3846 val_accuracy 0.9488 val_loss 0.1873").
PRINTED = {
    "dense params": 100_480,
    "dense_1 params": 16_512,
    "dense_2 params": 1_290,
    "total params": 118_282,
    "parameter memory KB": 462.04,
    "steps per epoch": 1875,
    "epoch 1 accuracy": 0.8821,
    "epoch 1 loss": 0.3846,
    "epoch 1 val_accuracy": 0.9488,
    "epoch 1 val_loss": 0.1873,
    "epoch 1 seconds": 6,
    "epoch 1 ms per step": 2,
}
MACHINE_DEPENDENT = " (machine-dependent; the walkthrough's machine is unknown)"


def is_walkthrough(variant: dict[str, Any]) -> bool:
    """Whether a variant is the walkthrough's configuration (its A/A control excluded)."""
    return not variant.get("control") and all(variant.get(k) == v for k, v in CONFIG.items())


@dataclass(frozen=True)
class Row:
    figure: str
    printed: float | None
    measured: stats.Interval | None
    exact: bool = False  # the same in every seed (a count, not a sample)


def verdict(printed: float | None, measured: stats.Interval | None) -> str:
    """'matches' exactly when the printed figure lies inside the interval; '–' with nothing to hold."""
    if printed is None or measured is None:
        return "–"
    return "matches" if measured.lo <= printed <= measured.hi else "differs"


def _exact(value: float) -> stats.Interval:
    return stats.Interval(value, value, value)


def _over(runs: Sequence[SeedRun], of: Callable[[SeedRun], float]) -> stats.Interval | None:
    return stats.mean_interval([of(r) for r in runs])


def rows(runs: Sequence[SeedRun], model: dict[str, Any]) -> list[Row]:
    """Every row of the table: model facts, epoch 1, seconds, the last epoch."""
    dense = [layer for layer in model["layers"] if layer["params"]]
    out = [
        Row(
            f"{layer['layer']} params",
            PRINTED.get(f"{layer['layer']} params"),
            _exact(layer["params"]),
            True,
        )
        for layer in dense
    ]
    out += [
        Row("total params", PRINTED["total params"], _exact(model["params"]), True),
        Row(
            "parameter memory KB",
            PRINTED["parameter memory KB"],
            _exact(round(model["param_bytes"] / 1024, 2)),
            True,
        ),
        Row("steps per epoch", PRINTED["steps per epoch"], _exact(runs[0].steps_per_epoch), True),
    ]
    for key in ("accuracy", "loss", "val_accuracy", "val_loss"):
        out.append(
            Row(
                f"epoch 1 {key}",
                PRINTED[f"epoch 1 {key}"],
                _over(runs, lambda r, k=key: r.curves[k][0]),
            )
        )
    out += [
        Row(
            "epoch 1 seconds" + MACHINE_DEPENDENT,
            PRINTED["epoch 1 seconds"],
            _over(runs, lambda r: r.train_s[0] + r.val_s[0]),
        ),
        Row(
            "epoch 1 ms per step" + MACHINE_DEPENDENT,
            PRINTED["epoch 1 ms per step"],
            _over(runs, lambda r: 1000 * r.train_s[0] / r.steps_per_epoch),
        ),
    ]
    last = runs[0].epochs
    for key in ("accuracy", "loss", "val_accuracy", "val_loss"):
        out.append(Row(f"epoch {last} {key}", None, _over(runs, lambda r, k=key: r.curves[k][-1])))
    out.append(
        Row(
            f"seconds per epoch, mean of {last}, stalls left out" + MACHINE_DEPENDENT,
            None,
            _over(runs, lambda r: r.per_epoch_total_s() / r.epochs),
        )
    )
    return out


def _number(x: float) -> str:
    if float(x).is_integer() and abs(x) >= 100:
        return f"{int(x):,}"
    return f"{x:.4f}" if abs(x) < 10 else f"{x:.2f}"


def _printed(x: float | None) -> str:
    """The walkthrough's figure as it printed it: '118,282', '0.8821', '6'."""
    if x is None:
        return "–"
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


def measured_cell(row: Row) -> str:
    """'0.9214 [0.9190, 0.9238]', or the exact figure alone."""
    m = row.measured
    if m is None:
        return "–"
    if row.exact:
        return f"{_number(m.point)} (every seed)"
    return f"{_number(m.point)} [{_number(m.lo)}, {_number(m.hi)}]"


def table(runs: Sequence[SeedRun], model: dict[str, Any]) -> list[dict[str, str]]:
    """The side-by-side table as rows of cells."""
    return [
        {
            "figure": r.figure,
            "walkthrough": _printed(r.printed),
            f"this run: mean of {len(runs)} seeds [95% CI]": measured_cell(r),
            "verdict": verdict(r.printed, r.measured),
        }
        for r in rows(runs, model)
    ]
