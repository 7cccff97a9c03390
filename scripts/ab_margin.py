"""Measure the A/B gate's margin: unchanged gates between two separately installed builds.

Each run is one real `mnist-bench regress --against REF` in a fresh process, exactly as CI runs it:
REF is this repository's HEAD (it must be clean), checked out by the gate into a git worktree and
installed by uv into its own environment; side B is a commit on top of REF that changes one
comment only, checked out here into a worktree of its own and run with this interpreter's
environment. Nothing differs between the two sides but the comment, the checkout and the build, so
every B/A the gates report is what "two builds of the same code" differ by: the margin
(`bench.gate.ab_rule.MARGIN`) must hold it.

    MNIST_BENCH_CACHE=.cache python scripts/ab_margin.py --runs 10 --out reports/gate-margin

`--slower F` adds one check of the gate's time on a machine whose steps are F times slower: both
sides' probes get a uniform per-step cost of F - 1 times each step's own time (the test-only
injection of `bench/gate_probe.py`), with the gate's default sizing and budget; REF's environment
build is not in it (the runs above time that).

Writes OUT/results.json (every run's gate record, kept whole) and OUT/SUMMARY.md after each run,
atomically, so `--resume` adds the missing runs of a stopped campaign.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import envinfo, outputs  # noqa: E402
from bench.gate import ab_rule, regress  # noqa: E402
from bench.plan.gate_variants import AB_TRAIN_S, INJECT_ENV  # noqa: E402
from bench.run import gate_rounds  # noqa: E402

# Student's t, two-sided 95%, by degrees of freedom (1-20): the interval of the runs' mean B/A.
T95 = (0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
       2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086)  # fmt: skip
COMMENT = "# ab_margin: a comment-only change; side B of an unchanged A/B gate\n"


def _git(*args: str, cwd: Path = REPO) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=ab-margin", "-c", "user.email=ab-margin@localhost", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def comment_commit(ref: str, where: Path) -> str:
    """A worktree at `where` holding REF plus one commit that adds a comment; that commit's sha."""
    _git("worktree", "add", "--detach", "--quiet", str(where), ref)
    init = where / "bench" / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + COMMENT, encoding="utf-8")
    _git("commit", "--quiet", "-am", "ab_margin: comment only", cwd=where)
    return _git("rev-parse", "HEAD", cwd=where)


def one_gate(tree: Path, ref: str, record: Path) -> dict[str, Any]:
    """One `regress --against REF` from `tree` in a fresh process: its record, exit and wall time."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bench", "regress", "--against", ref,
         "--json", str(record), "--force"],
        cwd=tree, capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": str(tree), **_absolute_cache()},
    )  # fmt: skip
    wall_s = time.perf_counter() - start
    try:
        doc = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        doc = None
    return {"exit": done.returncode, "wall_s": wall_s, "record": doc, "log": done.stdout[-4000:]}


def _absolute_cache() -> dict[str, str]:
    """MNIST_BENCH_CACHE made absolute: the gate runs from B's checkout, not from here."""
    cache = os.environ.get("MNIST_BENCH_CACHE")
    return {"MNIST_BENCH_CACHE": str(Path(cache).resolve())} if cache else {}


def round_ratios(doc: dict[str, Any]) -> dict[str, list[float]]:
    """{"variant metric": [B/A of each round]} from a gate record's per-round figures."""
    out: dict[str, list[float]] = {}
    for fig in doc["measured"]["figures"]:
        for name, a in fig["A"].items():
            for metric, a_ms in a.items():
                out.setdefault(f"{name} {metric}", []).append(fig["B"][name][metric] / a_ms)
    return out


def slower_check(factor: float, data_path: str) -> dict[str, Any]:
    """One gate between two copies of this tree whose steps both cost `factor` times as much."""
    inject = {INJECT_ENV: json.dumps({"kind": "uniform", "extra": factor - 1})}
    sides = {
        key: gate_rounds.Side(f"{key} (steps x{factor:g})", sys.executable, REPO, inject)
        for key in "AB"
    }
    start = time.perf_counter()
    rows, measured = regress.run_ab_gate(sides, data_path=data_path, train_s=AB_TRAIN_S, echo=print)
    return {
        "factor": factor,
        "rounds": measured["rounds"],
        "rounds_s": time.perf_counter() - start,
        "verdicts": {f"{r.variant} {r.metric}": r.verdict for r in rows},
        "steps": [
            {k: [run["steps"] for run in resp[k]["runs"]] for k in "AB"}
            for resp in measured["responses"]
        ],
    }


def _pct(x: float) -> str:
    return f"{x - 1:+.1%}"


def _runs_table(runs: list[dict[str, Any]]) -> list[str]:
    keys = sorted({k for run in runs if run["record"] for k in _rows(run["record"])})
    lines = [
        "| run | exit | rounds | gate s | " + " | ".join(keys) + " |",
        "|--:|--:|--:|--:|" + "--:|" * len(keys),
    ]
    for i, run in enumerate(runs, 1):
        doc = run["record"] or {}
        rows = _rows(doc) if doc else {}
        cells = [
            f"{_pct(rows[k]['ratio'])} [{_pct(rows[k]['low'])} … {_pct(rows[k]['high'])}]"
            if k in rows and rows[k]["ratio"] is not None
            else "–"
            for k in keys
        ]
        rounds = (doc.get("meta") or {}).get("rounds", "–")
        lines.append(
            f"| {i} | {run['exit']} | {rounds} | {run['wall_s']:.0f} | {' | '.join(cells)} |"
        )
    return lines


def _rows(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{r['variant']} {r['metric']}": r for r in doc.get("rows", [])}


def spread_lines(runs: list[dict[str, Any]]) -> list[str]:
    """Per variant and metric: the runs' B/A (min … max, SD), CI bounds, and the rounds' pooled SD."""
    docs = [run["record"] for run in runs if run["record"] and run["record"].get("rows")]
    by_doc = [(_rows(d), round_ratios(d)) for d in docs]  # each record read once
    lines = [
        "| variant, metric | runs | gate B/A min … max | mean [95% t-interval] | SD of log B/A over "
        "runs | highest CI lower bound | lowest CI upper bound | rounds | SD of log B/A over rounds |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for key in sorted({k for rows_of, _ in by_doc for k in rows_of}):
        rows = [r[key] for r, _ in by_doc if key in r and r[key]["ratio"]]
        rounds = [x for _, ratios in by_doc for x in ratios.get(key, [])]
        if len(rows) < 2:
            continue
        ratios = [r["ratio"] for r in rows]
        logs = [math.log(r) for r in ratios]
        sd_runs = statistics.stdev(logs)
        sd_rounds = statistics.stdev(math.log(r) for r in rounds)
        mean, half = statistics.mean(logs), T95[len(logs) - 1] * sd_runs / math.sqrt(len(logs))
        lines.append(
            f"| {key} | {len(rows)} | {_pct(min(ratios))} … {_pct(max(ratios))} "
            f"| {_pct(math.exp(mean))} [{_pct(math.exp(mean - half))} … "
            f"{_pct(math.exp(mean + half))}] | {sd_runs:.2%} "
            f"| {_pct(max(r['low'] for r in rows))} | {_pct(min(r['high'] for r in rows))} "
            f"| {len(rounds)} | {sd_rounds:.2%} |"
        )
    return lines


def render(runs: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """SUMMARY.md: how the campaign ran, every run, and the spread per variant and metric."""
    walls = [run["wall_s"] for run in runs]
    lines = [
        "# A/B gate margin: unchanged gates between two builds",
        "",
        f"Generated by `scripts/ab_margin.py` from `results.json` beside this file. REF "
        f"{meta['ref'][:10]} (clean), side B = REF + one comment ({meta['b_commit'][:10]}); each run "
        "a full `mnist-bench regress --against REF` in a fresh process, REF checked out and built "
        "by uv in its own environment, as CI does. "
        f"Machine: {meta['machine']}; "
        f"{', '.join(f'{k} {v}' for k, v in meta['versions'].items() if k in ('tensorflow', 'keras'))}"
        f"; started {meta['started_utc']}, last run {meta['finished_utc']}. "
        f"Rule in force: margin {meta['rule']['margin']:.0%}, floor {meta['rule']['floor']:.0%}, "
        f"ceiling {meta['rule']['ceiling']:.0%}.",
        "",
        f"{len(runs)} runs; exit codes {sorted(run['exit'] for run in runs)}; gate wall time "
        f"{min(walls):.0f}–{max(walls):.0f} s (median {statistics.median(walls):.0f} s), REF's "
        "environment build included.",
        "",
        "## Every run (change B/A − 1 [90% CI])",
        "",
        *_runs_table(runs),
        "",
        "## Spread",
        "",
        *spread_lines(runs),
    ]
    check = meta.get("slower_check")
    if check:
        lines += [
            "",
            f"## Steps {check['factor']:g}× slower",
            "",
            f"Both sides' steps cost {check['factor']:g}× (injected): {check['rounds']} rounds in "
            f"{check['rounds_s']:.0f} s of rounds (REF's environment build not included); "
            f"verdicts {check['verdicts']}; steps per run A/B, first round: {check['steps'][0]}.",
        ]
    return "\n".join(lines) + "\n"


def _campaign(args: argparse.Namespace, out: Path, meta: dict[str, Any], runs: list) -> None:
    with tempfile.TemporaryDirectory(prefix="ab-margin-") as tmp:
        tree = Path(tmp) / "b"
        meta["b_commit"] = comment_commit(meta["ref"], tree)
        try:
            for i in range(len(runs), args.runs):
                run = one_gate(tree, meta["ref"], Path(tmp) / "gate.json")
                runs.append(run)
                print(f"run {i + 1}/{args.runs}: exit {run['exit']} in {run['wall_s']:.0f} s")
                _save(out, meta, runs)
        finally:
            _git("worktree", "remove", "--force", str(tree))


def _save(out: Path, meta: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    meta["finished_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    outputs.write_atomic(out / "results.json", json.dumps({"meta": meta, "runs": runs}, indent=1))
    outputs.write_atomic(out / "SUMMARY.md", render(runs, meta))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", default="reports/gate-margin")
    parser.add_argument("--resume", action="store_true", help="keep the runs in OUT/results.json")
    parser.add_argument("--slower", type=float, help="also time one gate with steps F× slower")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite OUT/SUMMARY.md from OUT/results.json"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.render:
        kept = json.loads((out / "results.json").read_text(encoding="utf-8"))
        outputs.write_atomic(out / "SUMMARY.md", render(kept["runs"], kept["meta"]))
        return 0
    if _git("status", "--porcelain", "--untracked-files=no"):
        parser.error("the working tree has uncommitted changes: REF must be a clean commit")
    machine = envinfo.machine_info()
    meta = {
        "ref": _git("rev-parse", "HEAD"),
        "machine": f"{machine['cpu_model']}, {machine['cpu_cores']} cores",
        "versions": machine["versions"],
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rule": {"margin": ab_rule.MARGIN, "floor": ab_rule.FLOOR, "ceiling": ab_rule.CEILING},
    }
    runs: list[dict[str, Any]] = []
    if args.resume and (out / "results.json").is_file():
        kept = json.loads((out / "results.json").read_text(encoding="utf-8"))
        if kept["meta"]["ref"] != meta["ref"]:
            parser.error(f"--resume: {out} measured REF {kept['meta']['ref'][:10]}, not HEAD")
        meta, runs = kept["meta"], kept["runs"]
    _campaign(args, out, meta, runs)
    if args.slower:
        from mnist_models.data import load_mnist

        data = load_mnist()
        meta["slower_check"] = slower_check(args.slower, str(Path(data.location).resolve()))
        _save(out, meta, runs)
    print((out / "SUMMARY.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
