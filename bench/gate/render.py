"""The gate's markdown: the A/B table and the cannot-judge note."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.gate import ab_rule as ab
from bench.gate.verdicts import (
    CAUSES,
    EXIT_PASS,
    EXIT_REGRESSION,
    EXIT_UNMEASURED,
    NOISY,
    NOT_MEASURED,
    exit_code,
)
from bench.report.tables import markdown_table, num

OUTCOMES = {EXIT_PASS: "pass", EXIT_REGRESSION: "REGRESSION", EXIT_UNMEASURED: "cannot judge"}


def _machine_line(machine: Mapping[str, Any]) -> str:
    versions = machine.get("versions") or {}
    return (
        f"{machine.get('cpu_model', '?')}, {machine.get('cpu_cores', '?')} cores; "
        f"tensorflow {versions.get('tensorflow', '?')}, keras {versions.get('keras', '?')}"
    )


def _side_line(side: Mapping[str, Any]) -> str:
    versions = side.get("versions") or {}
    return (
        f"{side.get('label', '?')}: tensorflow {versions.get('tensorflow', '?')}, "
        f"keras {versions.get('keras', '?')}, python {versions.get('python', '?')}"
    )


def _ci_bounds(rounds: Any, level: float) -> str:
    """Which sorted ratios bound the CI, for the number of rounds the meta states."""
    if isinstance(rounds, int) and rounds >= ab.MIN_ROUNDS:
        return ab.ci_text(rounds, level)
    return (
        "the k-th smallest to the k-th largest ratio, k the largest with binomial coverage >= "
        f"{level:.0%}"
    )


def render_ab(rows: Sequence[ab.ABRow], meta: Mapping[str, Any]) -> str:
    """Markdown: one line per variant and metric (A, B, B/A with its CI, verdict), how, and outcome.

    `meta`: "ref" (commit and how it was chosen), "sides" {"A"/"B": {"label", "versions"}},
    "rounds", "machine", optional "env" (REF environment: installer, from_lock, build_s, reused)
    and "elapsed_s".
    """
    level = meta.get("level", ab.LEVEL)
    table = markdown_table(
        {
            "variant": row.variant,
            "metric": ab.METRIC_LABELS.get(row.metric, row.metric),
            "A ms": num(row.a_ms, ".3f"),
            "B ms": num(row.b_ms, ".3f"),
            "change B/A": num(row.change, "+.1%"),
            f"{level:.0%} CI": "–"
            if row.low is None or row.high is None
            else f"{row.low - 1:+.1%} … {row.high - 1:+.1%}",
            "pair spread": num(row.spread, ".1%"),
            "verdict": row.verdict,
        }
        for row in rows
    )
    code = exit_code([row.verdict for row in rows])
    sides = meta.get("sides") or {}
    lines = [
        table,
        "",
        f"A = {meta.get('ref', '?')}; B = this working tree. {meta.get('rounds', '?')} rounds"
        f"{_sizing_text(meta)}, "
        f"{meta.get('mode')}, each side and round a fresh process; "
        "median step = median of the timed steps, wall per step = training wall time after the "
        "warm-up ÷ steps (stalls included, the other side's turns left out; the median "
        f"over {ab.WALL_WINDOW}-step windows).",
        f"change = median over rounds of B/A − 1; CI: distribution-free {level:.0%} CI of that "
        f"median ({_ci_bounds(meta.get('rounds'), level)}). REGRESSION when the "
        f"CI's lower bound is above +{ab.MARGIN:.0%} and the change above +{ab.FLOOR:.0%} (and above "
        f"{ab.NOISE_K:g} × the pair spread when that exceeds {ab.NOISE_LIMIT:.0%}, else too noisy); "
        f"too noisy when the upper bound exceeds +{ab.CEILING:.0%}. Pair spread = 1.4826 · MAD / "
        "median of the rounds' B/A.",
        *(f"side {_side_line(sides[k])}" for k in ("A", "B") if k in sides),
    ]
    lines += _run_facts(meta) + _notes(rows)
    lines.append(f"gate: {OUTCOMES[code]} (exit {code})")
    return "\n".join(lines)


def _sizing_text(meta: Mapping[str, Any]) -> str:
    """How the rounds were sized, where the meta says (older gate documents do not)."""
    sizing = meta.get("sizing")
    if not sizing:
        return ""
    if sizing.get("fixed_rounds"):
        return " (--rounds: exactly that many)"
    runs = (
        f"each run stopped after {sizing['train_s']:g} s of its own training"
        if sizing.get("train_s")
        else "each run its fixed number of steps"
    )
    return (
        f" ({runs}; rounds within a {sizing['budget_s']:g}-s budget, {ab.DEFAULT_ROUNDS} "
        f"unless time ran short, more, up to {ab.MAX_ROUNDS}, only while a row was too noisy)"
    )


def side_words(side: str | None) -> str:
    """Whose side a 'cannot judge' was, in words."""
    return {"A": "REF's side", "B": "the working tree's side"}.get(side or "", "neither side")


def render_cannot_judge(reason: str, side: str | None, cause: str) -> str:
    """Markdown for a gate that could not measure: why, its cause, and whose side failed."""
    who = side_words(side) if side else "the gate"
    return (
        f"The A/B gate could not judge: {who} could not be measured or set up.\n\n"
        f"cause: {cause} ({CAUSES[cause]})\n\n"
        f"reason: {reason}\n\ngate: cannot judge (exit {EXIT_UNMEASURED})"
    )


def _run_facts(meta: Mapping[str, Any]) -> list[str]:
    """How REF's environment was built, the machine and the gate's wall time, where known."""
    lines = []
    env = meta.get("env")
    if env:
        lines.append(
            f"REF environment: {env.get('installer')}, "
            f"{'from its requirements.lock' if env.get('from_lock') else 'from its pyproject ranges'}, "
            + ("reused" if env.get("reused") else f"built in {env.get('build_s', 0):.0f} s")
        )
    if meta.get("machine"):
        lines.append(f"machine: {_machine_line(meta['machine'])}")
    if meta.get("elapsed_s") is not None:
        lines.append(f"gate wall time: {meta['elapsed_s']:.0f} s")
    return lines


def _notes(rows: Sequence[ab.ABRow]) -> list[str]:
    """What a reader must know about verdicts that are not a plain pass or regression."""
    verdicts = {row.verdict for row in rows}
    notes = []
    if NOISY in verdicts:
        notes.append(
            f"note: too noisy: a CI reaches above +{ab.CEILING:.0%} (or the rounds' B/A ratios "
            "scatter too much to call a change), so a regression the gate exists for could pass "
            "unseen; other load on the machine is the usual cause: re-run on a quieter machine or "
            "with more --rounds"
        )
    if NOT_MEASURED in verdicts:
        notes.append("note: a variant was not measured on both sides in every round")
    rounds = max((row.rounds for row in rows), default=0)
    if ab.MIN_ROUNDS <= rounds < ab.DEFAULT_ROUNDS:
        notes.append(
            f"note: only {rounds} rounds fitted the time budget (default {ab.DEFAULT_ROUNDS}): the CI "
            "is the smallest to the largest ratio, so one disturbed round can hide a regression; "
            "a larger --budget buys the default rounds"
        )
    return notes
