"""The step-time trend (bench.gate.trend*): history records, chaining, verdicts, exports, bad input,
and `trend run` over synthetic git histories whose entry points answer with made-up step times.

No TensorFlow: each synthetic commit's bench/gate_probe.py is a stand-in that answers the A/B
contract at once, every step 1 ms × (1 + its injected extra) × a small deterministic wobble.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bench import cli, outputs
from bench.gate import regress, trend, trend_export, trend_render, trend_run

# The stand-in entry point. `inject` mirrors bench.measure.ab_runs' test-only injection: a commit
# that sets it to {'kind': 'uniform', 'extra': 0.10} makes every step 10% longer.
PROBE = """
import json, os, sys
inject = None
request = json.loads(sys.stdin.readline())
log = os.path.join(os.path.dirname(__file__), "..", ".rounds")
done = len(open(log).readlines()) if os.path.exists(log) else 0
with open(log, "a") as fh:
    fh.write("x\\n")
wobble = 1 + 0.02 * (((done * 7919) % 11) - 5) / 5
extra = inject["extra"] if inject else 0.0
runs = []
for r in request["runs"]:
    ms = [1.0 * (1 + extra) * wobble] * 120
    ends = [sum(ms[: i + 1]) / 1000 for i in range(len(ms))]
    runs.append({"name": r["name"], "steps": len(ms), "step_ms": [ms], "batch_end_s": ends})
print(json.dumps({"contract": 1, "ok": True, "versions": {}, "runs": runs}), flush=True)
"""
SLOW = "inject = {'kind': 'uniform', 'extra': 0.10}"


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def history_repo(root: Path, slow_at: int | None) -> list[str]:
    """Six commits; the one at index `slow_at` (if any) injects the 10% per-step cost, which the
    commits after it keep. Returns the commit ids, oldest first."""
    (root / "bench").mkdir(parents=True)
    (root / "bench" / "__init__.py").write_text("")
    (root / ".gitignore").write_text(".rounds\n")
    _git(root, "init", "-q", "-b", "main")
    ids = []
    for i in range(6):
        probe = (
            PROBE.replace("inject = None", SLOW) if slow_at is not None and i >= slow_at else PROBE
        )
        (root / "bench" / "gate_probe.py").write_text(probe)
        (root / f"change-{i}.txt").write_text(str(i))
        _git(root, "add", "-A")
        _git(root, "commit", "-q", "-m", f"commit {i}")
        ids.append(_git(root, "rev-parse", "HEAD"))
    return ids


def _measure(root: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> Path:
    monkeypatch.chdir(root)
    monkeypatch.setattr(regress, "_data_path", lambda data, scratch, echo: "unused")
    history = root.parent / f"{root.name}.jsonl"
    request = trend_run.Request(history=history, python=sys.executable, rounds=6, **kw)
    assert trend_run.run(request, echo=lambda _: None) == 0
    return history


def _moved(history: list[dict[str, Any]]) -> set[str]:
    return {
        p.commit["id"]
        for key in trend.keys(history)
        for p in trend.series(history, *key)
        if p.moved
    }


def test_the_trend_flags_exactly_the_commit_that_added_a_10_percent_step_cost(
    tmp_path, monkeypatch
):
    """Catches: a trend of ratios that cannot see a 10% step (verdicts against the anchor only,
    not the previous commit), a later unchanged commit flagged because it is still slow, or the
    slow commit's neighbours flagged."""
    ids = history_repo(tmp_path / "slow", slow_at=3)
    path = _measure(tmp_path / "slow", monkeypatch, anchor=ids[0], commits=tuple(ids[1:]))
    history = trend.read_history(path)
    assert [r["commit"]["id"] for r in history] == ids[1:]
    assert _moved(history) == {ids[3]}
    points = trend.series(history, "bs32-float32", "median_ms")
    assert points[2].verdict == "slower" and 1.07 < points[2].change.point < 1.13
    assert all(p.ratio.point < 1.05 for p in points[:2]) and all(
        p.ratio.point > 1.05 for p in points[2:]
    )


def test_between_names_the_slow_commit_from_its_two_neighbours(tmp_path, monkeypatch, capsys):
    """Catches: --between skipping the commits in between, or naming the last one that differs
    from A instead of the first that moved."""
    ids = history_repo(tmp_path / "slow", slow_at=3)
    monkeypatch.chdir(tmp_path / "slow")
    monkeypatch.setattr(regress, "_data_path", lambda data, scratch, echo: "unused")
    request = trend_run.Request(
        history=tmp_path / "h.jsonl", anchor=ids[0], python=sys.executable, rounds=6,
        between=(ids[2], ids[4]),
    )  # fmt: skip
    said: list[str] = []
    assert trend_run.run(request, echo=said.append) == 0
    measured = [r["commit"]["id"] for r in trend.read_history(tmp_path / "h.jsonl")]
    assert measured == ids[2:5]
    firsts = [line for line in said if line.startswith("trend --between")]
    assert len(firsts) == 4 and all(f"first moved at {ids[3][:10]}" in line for line in firsts)


def test_a_history_without_a_slow_commit_flags_nothing(tmp_path, monkeypatch):
    """Catches: verdicts that fire on the wobble of unchanged code (a floor or interval too
    narrow)."""
    ids = history_repo(tmp_path / "same", slow_at=None)
    path = _measure(tmp_path / "same", monkeypatch, anchor=ids[0], commits=tuple(ids[1:]))
    assert _moved(trend.read_history(path)) == set()


# --- Records, chaining, bad input ---------------------------------------------------------------


def _record(commit: str, logs: list[float], *, anchor: str = "a" * 40, kind: str = "point") -> dict:
    figures = [
        {
            "A": {v: {m: 1.0 for m in ("median_ms", "wall_ms")} for v in ("v",)},
            "B": {v: {m: math.exp(x) for m in ("median_ms", "wall_ms")} for v in ("v",)},
        }
        for x in logs
    ]
    return trend.point_record(kind, anchor, {"id": commit, "time": "2026-12-05T00:00:00+00:00",
                              "subject": commit}, figures, ["v"], {"machine": {}})  # fmt: skip


def test_a_chained_ratio_carries_the_overlaps_uncertainty(tmp_path):
    """Catches: chaining that multiplies the points but drops the overlap's spread (too narrow an
    interval), or a change across the move judged against the wrong anchor."""
    new = "b" * 40
    history = [
        _record("c1", [0.0, 0.01, -0.01]),
        _record(new, [0.10, 0.12, 0.08], kind="overlap"),
        _record("c2", [0.0, 0.01, -0.01], anchor=new),
    ]
    points = trend.series(history, "v", "median_ms")
    assert [p.commit["id"] for p in points] == ["c1", "c2"]
    assert points[1].ratio.point == pytest.approx(math.exp(0.10))
    alone = trend.sum_interval([trend.Part(1, "c2", (0.0, 0.01, -0.01))])
    chained = math.log(points[1].ratio.hi / points[1].ratio.lo)
    assert chained > 1.5 * math.log(alone.hi / alone.lo)  # the overlap's spread is carried
    assert points[1].verdict == "slower"  # +10.5% [..] beyond the 5% floor
    assert trend.anchors(history) == ["a" * 40, new]


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ('{"schema": "mnist-bench/trend", "schema_version": 1, "kind": "po', "cut off"),
        ('{"schema": "other"}', "not a trend record"),
        ('{"schema": "mnist-bench/trend", "schema_version": 9}', "schema_version 9"),
    ],
)
def test_a_bad_history_line_is_one_error_naming_the_line_and_the_file_stays(tmp_path, line, needle):
    """Catches: a truncated or foreign line read as data, or the file rewritten on the way out."""
    path = tmp_path / "h.jsonl"
    good = json.dumps(_record("c1", [0.0, 0.01]))
    path.write_text(good + "\n" + line)
    before = path.read_bytes()
    with pytest.raises(trend.TrendError) as err:
        trend.read_history(path)
    assert "line 2" in str(err.value) and needle in str(err.value)
    assert path.read_bytes() == before


def test_a_history_of_another_anchor_or_variant_set_is_refused_before_appending(tmp_path):
    """Catches: points against two anchors mixed unchained, or another variant set's rows."""
    path = tmp_path / "h.jsonl"
    trend.append(path, [], _record("c1", [0.0, 0.01]))
    history = trend.read_history(path)
    with pytest.raises(trend.TrendError, match="--new-anchor"):
        trend.append(path, history, _record("c2", [0.0, 0.01], anchor="f" * 40))
    other = _record("c2", [0.0, 0.01]) | {"variants": ["w"]}
    with pytest.raises(trend.TrendError, match="variants"):
        trend.append(path, history, other)
    assert len(trend.read_history(path)) == 1


def test_appending_is_atomic_a_failed_write_leaves_the_old_history(tmp_path, monkeypatch):
    """Catches: appending in place (open 'a'), where a crash mid-write leaves half a line."""
    path = tmp_path / "h.jsonl"
    trend.append(path, [], _record("c1", [0.0, 0.01]))
    before = path.read_bytes()

    def crash(p: Any, data: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(outputs, "write_atomic", crash)
    with pytest.raises(OSError):
        trend.append(path, trend.read_history(path), _record("c2", [0.0, 0.01]))
    assert path.read_bytes() == before


def test_an_anchor_that_is_no_commit_is_exit_2_before_any_work(tmp_path, monkeypatch, capsys):
    """Catches: a typo'd anchor reaching the checkout step (or a traceback)."""
    ids = history_repo(tmp_path / "r", slow_at=None)
    monkeypatch.chdir(tmp_path / "r")
    code = cli.main(
        ["trend", "run", str(tmp_path / "h.jsonl"), "--anchor", "nosuchref", "--commit", ids[1]]
    )
    err = capsys.readouterr().err
    assert code == 2 and "anchor 'nosuchref' names no commit" in err
    assert not (tmp_path / "h.jsonl").exists()


# --- Exports, against the tools' documented schemas -------------------------------------------

# Bencher's bmf.json (https://bencher.dev/bmf.json), as published.
BMF_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema",
    "type": "object",
    "patternProperties": {
        ".+": {
            "type": "object",
            "patternProperties": {
                ".+": {
                    "type": "object",
                    "properties": {
                        "value": {"type": "number"},
                        "lower_value": {"type": "number"},
                        "upper_value": {"type": "number"},
                    },
                    "required": ["value"],
                }
            },
        }
    },
}
# github-action-benchmark's BenchmarkResult (src/extract.ts) for tool customSmallerIsBetter:
# name: string; value: number; range?: string; unit: string; extra?: string.
GAB_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "value": {"type": "number"},
            "range": {"type": "string"},
            "unit": {"type": "string"},
            "extra": {"type": "string"},
        },
        "required": ["name", "value", "unit"],
        "additionalProperties": False,
    },
}


def test_exports_validate_against_the_dashboards_schemas_and_carry_the_interval():
    """Catches: a numeric range (the action wants a string), an interval dropped from BMF, or a
    value that is not the latest commit's ratio."""
    history = [_record("c1", [0.0, 0.01, -0.01]), _record("c2", [0.10, 0.11, 0.09])]
    gab = trend_export.export(history, "github-action-benchmark")
    bmf = trend_export.export(history, "bencher")
    jsonschema.validate(gab, GAB_SCHEMA)
    jsonschema.validate(bmf, BMF_SCHEMA)
    entry = bmf["v median step"]["ratio-to-anchor"]
    assert entry["value"] == pytest.approx(math.exp(0.10))
    assert entry["lower_value"] < entry["value"] < entry["upper_value"]
    assert {e["name"] for e in gab} == {"v median step", "v wall per step"}
    with pytest.raises(jsonschema.ValidationError):  # the schemas are strict enough to fail
        jsonschema.validate([{**gab[0], "range": 0.1}], GAB_SCHEMA)


def test_the_report_marks_the_commit_that_moved(tmp_path):
    """Catches: a report that lists ratios but hides which commit changed step time."""
    path = tmp_path / "h.jsonl"
    history: list[dict] = []
    for commit, logs in (("c1", [0.0, 0.01, -0.01]), ("c2", [0.10, 0.11, 0.09])):
        trend.append(path, history, _record(commit, logs))
        history = trend.read_history(path)
    md = trend_render.write_report(path, tmp_path / "out")
    text = md.read_text()
    assert "moved at `c2` (slower)" in text and "**slower**" in text
    assert (tmp_path / "out" / "trend.png").stat().st_size > 0


def test_a_truncated_history_is_exit_2_naming_the_line_and_is_left_as_it_was(
    tmp_path, monkeypatch, capsys
):
    """Catches: `trend run` measuring first and failing to append later (minutes lost), or
    'repairing' the history by dropping the line."""
    ids = history_repo(tmp_path / "r", slow_at=None)
    monkeypatch.chdir(tmp_path / "r")
    path = tmp_path / "h.jsonl"
    path.write_text(
        json.dumps(_record("c1", [0.0, 0.01], anchor=ids[0])) + '\n{"schema": "mnist-bench/tr'
    )
    before = path.read_bytes()
    code = cli.main(["trend", "run", str(path), "--anchor", ids[0], "--commit", ids[1]])
    err = capsys.readouterr().err
    assert code == 2 and f"{path} line 2: cut off" in err
    assert path.read_bytes() == before


def test_new_anchor_runs_alone(tmp_path, monkeypatch, capsys):
    """Catches: points measured in the same run as an overlap, against the old anchor's checkout
    but recorded against the new anchor."""
    ids = history_repo(tmp_path / "r", slow_at=None)
    monkeypatch.chdir(tmp_path / "r")
    code = cli.main(
        ["trend", "run", str(tmp_path / "h.jsonl"), "--anchor", ids[0], "--new-anchor", ids[2],
         "--commit", ids[3]]
    )  # fmt: skip
    assert code == 2 and "--new-anchor runs alone" in capsys.readouterr().err


def test_the_committed_trend_report_regenerates_from_its_history():
    """Catches: reports/trend edited by hand, or left behind when the renderer changes."""
    committed = Path(__file__).parent.parent / "reports" / "trend"
    history = trend.read_history(committed / "history.jsonl")
    assert len({r["commit"]["id"] for r in history if r["kind"] == "point"}) >= 6
    assert trend_render.render(history) == (committed / "REPORT.md").read_text()
    assert (committed / "trend.png").stat().st_size > 10_000
