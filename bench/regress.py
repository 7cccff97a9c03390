"""Step-time regression gate: baseline file, thresholds, verdicts, markdown table. No TensorFlow.

The measured statistic (``bench.gate``): per round, r = harness step ms / calibration step ms
(each run's fastest timed step), measured back to back in one process; per variant, R = median of
the rounds' r. The calibration runs the same arithmetic without Keras, so a machine that is
uniformly slower moves A and B alike and leaves R alone, while a slower harness step raises R.

Decision, per variant, with n rounds:

    spread s = 1.4826 · MAD(r) / median(r)          robust relative std. dev. of one round
    error  e = 1.2533 · s / √n                      std. error of the median (normal approx.)
    noise  σ = √(e_now² + e_baseline²)              of the change below
    change c = R_now / R_baseline − 1
    threshold t = max(FLOOR, K · σ)
    REGRESSION if c > t; faster if c < −t; too noisy if t > CEILING; else pass

A variant missing on either side, or measured another way (batch, data, epochs, warm-up, TF
threads), cannot be judged. Exit code: 1 if any variant regressed, else 2 if any cannot be judged.

The floor absorbs what one run's spread cannot see: a different process, day or CPU model.
The ceiling is where this run could no longer resolve the regressions the gate exists for, so it
says so (exit 2) instead of passing.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import stats

SCHEMA = "mnist-bench/gate-baseline"
SCHEMA_VERSION = 1
MIN_ROUNDS = 3
DEFAULT_ROUNDS = 9
FLOOR = 0.15
K = 3.0
CEILING = 0.25
MAD_TO_SIGMA = 1.4826  # MAD → standard deviation for normally distributed data
MEDIAN_SE = 1.2533  # √(π/2): std. error of a median over that of a mean
EXIT_PASS, EXIT_REGRESSION, EXIT_UNMEASURED = 0, 1, 2
# Per-round lists of a variant: the gate reads the first three, the rest are for people.
REQUIRED_LISTS = ("ratios", "harness_ms", "calibration_ms")
ROUND_LISTS = (
    *REQUIRED_LISTS,
    "harness_median_ms",
    "calibration_median_ms",
    "harness_mean_ms",
    "calibration_mean_ms",
)

PASS, REGRESSION, FASTER, NOISY, NO_BASELINE, NOT_MEASURED, CHANGED = (
    "pass",
    "REGRESSION",
    "faster",
    "too noisy",
    "no baseline",
    "not measured",
    "setup changed",
)
# What a round measures; ratios compare only when these match (and the TF thread settings do).
SETUP_KEYS = ("batch_size", "precision", "train_images", "epochs", "timed_steps")
UPDATE_HINT = (
    "create it with `mnist-bench regress --update-baseline` (on the CI machine) and commit it"
)


class GateError(ValueError):
    """The gate cannot judge: the message says what is wrong and how to fix it."""


def relative_spread(ratios: Sequence[float]) -> float:
    """1.4826 · MAD / median: a robust relative standard deviation of one round's ratio."""
    return MAD_TO_SIGMA * stats.mad(ratios) / stats.median(ratios)


def median_error(ratios: Sequence[float]) -> float:
    """Relative standard error of the median of `ratios`: 1.2533 · spread / √n."""
    return MEDIAN_SE * relative_spread(ratios) / math.sqrt(len(ratios))


def threshold(
    current: Sequence[float], baseline: Sequence[float], *, floor: float = FLOOR, k: float = K
) -> float:
    """max(floor, k · √(e_now² + e_baseline²)): the relative change the gate calls a regression."""
    return max(floor, k * math.hypot(median_error(current), median_error(baseline)))


@dataclass(frozen=True)
class Row:
    """One variant's comparison; numbers are None where a side is missing."""

    variant: str
    verdict: str
    baseline_ratio: float | None = None
    current_ratio: float | None = None
    change: float | None = None
    threshold: float | None = None
    baseline_spread: float | None = None
    current_spread: float | None = None
    baseline_harness_ms: float | None = None
    current_harness_ms: float | None = None


def _check_entry(entry: Any, where: str) -> None:
    if not isinstance(entry, dict):
        raise GateError(f"{where}: expected an object, got {type(entry).__name__}")
    lengths = set()
    for key in ROUND_LISTS:
        values = entry.get(key)
        if values is None and key not in REQUIRED_LISTS:
            continue
        if not isinstance(values, list):
            raise GateError(f"{where}: '{key}' must be a list of numbers")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise GateError(f"{where}: '{key}' holds {v!r}, not a finite number")
            if v <= 0:
                raise GateError(f"{where}: '{key}' holds {v!r}, not a positive number")
        lengths.add(len(values))
    if len(lengths) != 1:
        raise GateError(f"{where}: the per-round lists differ in length")
    if len(entry["ratios"]) < MIN_ROUNDS:
        raise GateError(f"{where}: {len(entry['ratios'])} rounds, the gate needs {MIN_ROUNDS}")


def check_baseline(doc: Any, where: str) -> None:
    """Raise GateError naming the first thing wrong with a baseline document."""
    if not isinstance(doc, dict):
        raise GateError(f"{where}: expected a JSON object, got {type(doc).__name__}")
    if doc.get("schema") != SCHEMA:
        raise GateError(f"{where}: 'schema' is {doc.get('schema')!r}, expected {SCHEMA!r}")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise GateError(
            f"{where}: schema_version {doc.get('schema_version')!r} is not supported "
            f"(this mnist-bench reads {SCHEMA_VERSION}); {UPDATE_HINT}"
        )
    for key in ("machine", "variants"):
        if not isinstance(doc.get(key), dict) or not doc[key]:
            raise GateError(f"{where}: '{key}' must be a non-empty object")
    for name, entry in doc["variants"].items():
        _check_entry(entry, f"{where}: variant {name!r}")


def read_baseline(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load and validate a baseline file; any problem is one GateError saying what and how to fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GateError(f"baseline {path} does not exist; {UPDATE_HINT}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GateError(f"baseline {path} cannot be read ({exc}); {UPDATE_HINT}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GateError(
            f"baseline {path} is not valid JSON ({exc.msg} at line {exc.lineno}, column "
            f"{exc.colno}); {UPDATE_HINT}"
        ) from None
    check_baseline(doc, f"baseline {path}")
    return doc


def make_baseline(
    measured: Mapping[str, Any],
    machine: Mapping[str, Any],
    commit: Mapping[str, Any],
    created_utc: str,
) -> dict[str, Any]:
    """A baseline document from one gate measurement (bench.gate.measure) and who measured it."""
    variants = {}
    for name, entry in measured["variants"].items():
        _check_entry(entry, f"measurement: variant {name!r}")
        ratios = entry["ratios"]
        variants[name] = {
            **entry,
            # For people reading the file; the gate recomputes both from the raw lists.
            "median_ratio": stats.median(ratios),
            "relative_spread": relative_spread(ratios),
        }
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created_utc": created_utc,
        "machine": dict(machine),
        "commit": dict(commit),
        "settings": {k: measured[k] for k in ("rounds", "warmup_steps", "threads", "data")},
        "elapsed_s": measured.get("elapsed_s"),
        "variants": variants,
    }


def write_baseline(path: str | os.PathLike[str], doc: Mapping[str, Any]) -> None:
    """Validate and write atomically (a crash never leaves half a baseline)."""
    check_baseline(doc, "new baseline")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def judge(
    name: str,
    current: Mapping[str, Any] | None,
    baseline: Mapping[str, Any] | None,
    *,
    floor: float = FLOOR,
    k: float = K,
    ceiling: float = CEILING,
) -> Row:
    """The verdict for one variant from its current and baseline entries (either may be None)."""
    if current is None:
        return Row(name, NOT_MEASURED)
    now = current["ratios"]
    now_fields = {
        "current_ratio": stats.median(now),
        "current_spread": relative_spread(now),
        "current_harness_ms": stats.median(current["harness_ms"]),
    }
    if baseline is None:
        return Row(name, NO_BASELINE, **now_fields)
    if any(k in current and k in baseline and current[k] != baseline[k] for k in SETUP_KEYS):
        return Row(name, CHANGED, **now_fields)
    base = baseline["ratios"]
    change = now_fields["current_ratio"] / stats.median(base) - 1
    limit = threshold(now, base, floor=floor, k=k)
    if change > limit:
        verdict = REGRESSION  # even when noisy: the change is beyond what the noise explains
    elif change < -limit:
        verdict = FASTER
    elif limit > ceiling:
        verdict = NOISY
    else:
        verdict = PASS
    return Row(
        name,
        verdict,
        baseline_ratio=stats.median(base),
        change=change,
        threshold=limit,
        baseline_spread=relative_spread(base),
        baseline_harness_ms=stats.median(baseline["harness_ms"]),
        **now_fields,
    )


def compare(
    baseline: Mapping[str, Any],
    measured: Mapping[str, Any],
    *,
    floor: float = FLOOR,
    k: float = K,
    ceiling: float = CEILING,
) -> list[Row]:
    """One Row per variant in either the baseline or the measurement, baseline order first."""
    if not 0 < floor <= ceiling:
        raise GateError(f"floor={floor}, ceiling={ceiling}: need 0 < floor <= ceiling")
    base, now = baseline["variants"], measured["variants"]
    for name, entry in now.items():
        _check_entry(entry, f"measurement: variant {name!r}")
    names = list(base) + [n for n in now if n not in base]
    rows = [
        judge(name, now.get(name), base.get(name), floor=floor, k=k, ceiling=ceiling)
        for name in names
    ]
    threads = (baseline.get("settings") or {}).get("threads"), measured.get("threads")
    if None not in threads and threads[0] != threads[1]:
        rows = [
            dataclasses.replace(row, verdict=CHANGED) if row.baseline_ratio is not None else row
            for row in rows
        ]
    return rows


def exit_code(rows: Sequence[Row]) -> int:
    """1 if any variant regressed; else 2 if any could not be judged; else 0."""
    verdicts = {row.verdict for row in rows}
    if REGRESSION in verdicts:
        return EXIT_REGRESSION
    if verdicts - {PASS, FASTER} or not rows:
        return EXIT_UNMEASURED
    return EXIT_PASS


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _machine_line(machine: Mapping[str, Any]) -> str:
    versions = machine.get("versions") or {}
    return (
        f"{machine.get('cpu_model', '?')}, {machine.get('cpu_cores', '?')} cores; "
        f"tensorflow {versions.get('tensorflow', '?')}, keras {versions.get('keras', '?')}"
    )


def render_table(
    rows: Sequence[Row], baseline: Mapping[str, Any], machine: Mapping[str, Any]
) -> str:
    """Markdown: one line per variant, the formula, both machines and the overall verdict."""
    lines = [
        "| variant | baseline ratio | current ratio | change | threshold | spread base / now "
        "| fastest harness step ms base → now | verdict |",
        "|---|--:|--:|--:|--:|--:|--:|---|",
    ]
    for row in rows:
        spreads = f"{_num(row.baseline_spread, '.1%')} / {_num(row.current_spread, '.1%')}"
        harness = f"{_num(row.baseline_harness_ms, '.3f')} → {_num(row.current_harness_ms, '.3f')}"
        lines.append(
            f"| {row.variant} | {_num(row.baseline_ratio, '.3f')} | "
            f"{_num(row.current_ratio, '.3f')} | {_num(row.change, '+.1%')} | "
            f"{_num(row.threshold, '.1%')} | {spreads} | {harness} | {row.verdict} |"
        )
    code = exit_code(rows)
    outcome = {EXIT_PASS: "pass", EXIT_REGRESSION: "REGRESSION", EXIT_UNMEASURED: "cannot judge"}
    notes = {
        NO_BASELINE: f"no baseline for a measured variant: {UPDATE_HINT}",
        NOT_MEASURED: "a baseline variant was not measured: the gate's variants changed; "
        + UPDATE_HINT,
        NOISY: f"too noisy: this run's threshold is above {CEILING:.0%}, so a regression of that "
        "size could pass unseen; re-run on a quieter machine or with more --rounds",
        FASTER: "faster than the baseline: if that is expected, refresh it with --update-baseline",
        CHANGED: "the gate's setup (batch, data, epochs, warm-up or TF threads) differs from the "
        f"baseline's, so the ratios do not compare: {UPDATE_HINT}",
    }
    verdicts = {row.verdict for row in rows}
    lines += [
        "",
        "ratio = median over rounds of (fastest harness step / fastest calibration step); "
        f"threshold = max({FLOOR:.0%}, {K:g} · √(e_now² + e_base²)), "
        "e = 1.2533 · spread / √rounds, spread = 1.4826 · MAD / median of the rounds' ratios.",
        f"baseline: {baseline.get('created_utc', '?')} on {_machine_line(baseline['machine'])}",
        f"this run: {_machine_line(machine)}",
        *(f"note: {text}" for verdict, text in notes.items() if verdict in verdicts),
        f"gate: {outcome[code]} (exit {code})",
    ]
    return "\n".join(lines)


def render_baseline(doc: Mapping[str, Any]) -> str:
    """Markdown summary of a baseline document."""
    lines = [
        "| variant | median ratio | spread | fastest step ms harness / calibration | rounds |",
        "|---|--:|--:|--:|--:|",
    ]
    for name, entry in doc["variants"].items():
        lines.append(
            f"| {name} | {stats.median(entry['ratios']):.3f} | "
            f"{relative_spread(entry['ratios']):.1%} | {stats.median(entry['harness_ms']):.3f} / "
            f"{stats.median(entry['calibration_ms']):.3f} | {len(entry['ratios'])} |"
        )
    lines.append(f"machine: {_machine_line(doc['machine'])}")
    return "\n".join(lines)
