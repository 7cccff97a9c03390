"""Step time across commits: each commit's paired ratio to a fixed anchor commit, as history. No TF.

A trend point is one A/B gate run (``bench.gate.regress.run_ab_gate``) with the anchor as side A
and the commit as side B: per gate variant and metric, the per-round log ratios log(B/A). The
anchor is stated (``trend.toml``) and stable; when it moves, one *overlap* point measures the new
anchor against the old, so the series chains (docs/trend.md).

Pure functions of the history: a point's ratio to the anchor is the geometric mean of its rounds'
ratios with a 95% t-interval; a chained ratio adds the overlaps' log means, and the interval their
variances (Welch–Satterthwaite degrees of freedom); a commit's change against the previous commit
is the same sum with the previous point's sign reversed, judged by the project's one verdict rule
(``stats.ratio_verdict``: the whole interval beyond the floor).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import outputs, stats
from bench.gate import ab_rule

SCHEMA = "mnist-bench/trend"
SCHEMA_VERSION = 1
KINDS = ("point", "overlap")
# A change between two commits is real only when its whole interval lies beyond ±FLOOR: the A/B
# gate's floor, half the +10% a regression gate exists to catch.
FLOOR = ab_rule.FLOOR
MAX_HISTORY_BYTES = 64 * 2**20


class TrendError(ValueError):
    """A history, an anchor or a request the trend cannot use; the message says how to fix it."""


# --- Records ------------------------------------------------------------------------------------


def point_record(
    kind: str,
    anchor: str,
    commit: Mapping[str, str],
    figures: Sequence[Mapping[str, Mapping[str, Mapping[str, float]]]],
    variants: Sequence[str],
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """One history record from an A/B run's per-round figures (side A the anchor, B the commit).

    `commit`: id, time (ISO 8601) and subject; `context`: created_utc, machine, lock, rounds sizing.
    """
    rows = []
    for name in variants:
        for metric in ab_rule.METRICS:
            logs = [
                math.log(f["B"][name][metric] / f["A"][name][metric])
                for f in figures
                if name in f.get("A", {}) and name in f.get("B", {})
            ]
            rows.append({"variant": name, "metric": metric, "log_ratios": logs})
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "anchor": anchor,
        "commit": dict(commit),
        "variants": list(variants),
        "rows": rows,
        **context,
    }


def _fail(where: str, what: str) -> TrendError:
    return TrendError(
        f"{where}: {what}; a trend history holds only lines `mnist-bench trend run` appended: "
        "restore the file from its copy (the workflow's history branch) or start a new one"
    )


def upgrade(record: Any, where: str) -> dict[str, Any]:
    """A history record checked and brought to SCHEMA_VERSION (version 1 is the first)."""
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        raise _fail(where, f"not a trend record (its schema is not {SCHEMA!r})")
    version = record.get("schema_version")
    if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise _fail(
            where,
            f"schema_version {version!r}: this mnist-bench reads 1..{SCHEMA_VERSION} (a newer one "
            "wrote it? upgrade mnist-bench)",
        )
    if record.get("kind") not in KINDS:
        raise _fail(where, f"kind {record.get('kind')!r}: choose from {list(KINDS)}")
    for key in ("anchor", "variants", "rows", "commit"):
        if key not in record:
            raise _fail(where, f"no {key!r} field")
    commit = record["commit"]
    if not isinstance(commit, dict) or not isinstance(commit.get("id"), str):
        raise _fail(where, "its commit has no id")
    for row in record["rows"]:
        logs = row.get("log_ratios") if isinstance(row, dict) else None
        if not isinstance(logs, list) or not all(
            isinstance(x, int | float) and math.isfinite(x) for x in logs
        ):
            raise _fail(where, "a row without a list of finite log ratios")
    return record


def read_history(path: Path) -> list[dict[str, Any]]:
    """Every record of a history file ([] if it does not exist); TrendError naming the first bad
    line (a truncated last line included) before anything else happens."""
    if not path.exists():
        return []
    try:
        if path.stat().st_size > MAX_HISTORY_BYTES:
            raise _fail(str(path), f"larger than {MAX_HISTORY_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrendError(f"{path}: cannot read it as a trend history ({exc})") from None
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            cut = number == len(text.splitlines()) and not text.endswith("\n")
            what = "cut off (the write that made it never finished)" if cut else "not JSON"
            raise _fail(f"{path} line {number}", what) from None
        out.append(upgrade(record, f"{path} line {number}"))
    return out


def anchors(history: Sequence[Mapping[str, Any]]) -> list[str]:
    """The anchors in the order the history chained them: the first point's, then each overlap's
    new anchor."""
    chain: list[str] = []
    for r in history:
        if not chain:
            chain.append(r["anchor"])
        if r["kind"] == "overlap" and r["commit"]["id"] not in chain:
            chain.append(r["commit"]["id"])
    return chain


def check_append(history: Sequence[Mapping[str, Any]], new: Mapping[str, Any]) -> None:
    """TrendError unless `new` belongs to `history`: the same gate variants, and an anchor the
    history chains to (its current one; an overlap's old anchor must be the current one)."""
    if not history:
        if new["kind"] == "overlap":
            raise TrendError(
                "an overlap chains a history's anchor to a new one: the history is empty"
            )
        return
    if list(history[0]["variants"]) != list(new["variants"]):
        raise TrendError(
            f"the history measures the variants {history[0]['variants']}, this run "
            f"{new['variants']}: give this run another --history file"
        )
    current = anchors(history)[-1]
    if new["anchor"] != current:
        raise TrendError(
            f"the history's anchor is {current[:10]}, this run's {new['anchor'][:10]}: move the "
            "anchor with `mnist-bench trend run --new-anchor COMMIT` (one overlap run that chains "
            "the two), or give this run another --history file"
        )


def append(path: Path, history: Sequence[Mapping[str, Any]], new: Mapping[str, Any]) -> None:
    """Append one record atomically: the whole file is written anew beside it and renamed over
    it, so a killed run leaves the old history or the new one, never half a line."""
    check_append(history, new)
    old = path.read_bytes() if path.exists() else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"
    outputs.write_atomic(path, old + (json.dumps(new, sort_keys=True) + "\n").encode())


# --- Series, chaining and verdicts ----------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One run's rounds in a sum of log means: its sign, which record, its log ratios."""

    sign: int
    source: str  # kind:anchor:commit, so the same overlap in two sums cancels
    logs: tuple[float, ...]


@dataclass(frozen=True)
class Point:
    """One commit's ratio to the history's first anchor, for one variant and metric."""

    commit: Mapping[str, str]
    ratio: stats.Interval
    parts: tuple[Part, ...]  # what the ratio sums: its own rounds, and the overlaps it chains
    change: stats.Interval | None = None  # this point ÷ the previous one
    verdict: str = ""

    @property
    def moved(self) -> bool:
        return stats.is_difference(self.verdict) if self.change is not None else False


def sum_interval(parts: Sequence[Part]) -> stats.Interval:
    """exp(Σ sign·mean(logs)) with its 95% t-interval: the variances of the means add, the degrees
    of freedom are Welch–Satterthwaite's. Every part needs two or more values."""
    if not parts or any(len(p.logs) < 2 for p in parts):
        raise TrendError("a ratio needs two or more rounds in every run it sums")
    mean = sum(p.sign * statistics.fmean(p.logs) for p in parts)
    var = [statistics.variance(p.logs) / len(p.logs) for p in parts]
    total = sum(var)
    if total == 0:
        return stats.Interval(math.exp(mean), math.exp(mean), math.exp(mean))
    df = total**2 / sum(v**2 / (len(p.logs) - 1) for v, p in zip(var, parts, strict=True))
    half = stats.t975(df) * math.sqrt(total)
    return stats.Interval(math.exp(mean), math.exp(mean - half), math.exp(mean + half))


def _part(record: Mapping[str, Any], variant: str, metric: str) -> Part:
    row = next(r for r in record["rows"] if r["variant"] == variant and r["metric"] == metric)
    source = f"{record['kind']}:{record['anchor']}:{record['commit']['id']}"
    return Part(1, source, tuple(row["log_ratios"]))


def series(history: Sequence[Mapping[str, Any]], variant: str, metric: str) -> list[Point]:
    """The commits' points in history order, chained to the first anchor, each judged against the
    point before it."""
    links: dict[str, tuple[Part, ...]] = {}
    points: list[Point] = []
    for r in history:
        anchor = r["anchor"]
        base = links.setdefault(anchor, ()) if not links else links.get(anchor)
        if base is None:
            raise TrendError(f"a point against {anchor[:10]}, an anchor the history never chained")
        parts = (*base, _part(r, variant, metric))
        if r["kind"] == "overlap":
            links[r["commit"]["id"]] = parts
            continue
        points.append(Point(r["commit"], sum_interval(parts), parts))
    return [_judged(prev, p) for prev, p in zip([None, *points], points, strict=False)]


def _judged(prev: Point | None, point: Point) -> Point:
    if prev is None:
        return point
    change = sum_interval(_cancel(point.parts, prev.parts))
    verdict = stats.ratio_verdict(change, FLOOR)
    return Point(point.commit, point.ratio, point.parts, change, verdict)


def _cancel(plus: Sequence[Part], minus: Sequence[Part]) -> list[Part]:
    """plus − minus, where the parts both sums share (the same overlap) cancel instead of adding
    their noise twice."""
    shared = {p.source for p in plus} & {p.source for p in minus}
    return [
        *(p for p in plus if p.source not in shared),
        *(Part(-p.sign, p.source, p.logs) for p in minus if p.source not in shared),
    ]


def keys(history: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(variant, metric) of every series, in the history's order."""
    return [(v, m) for v in history[0]["variants"] for m in ab_rule.METRICS] if history else []


def first_moved(points: Iterable[Point]) -> Point | None:
    """The first point whose change against the one before it is a difference, or None."""
    return next((p for p in points if p.moved), None)
