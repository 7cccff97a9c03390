"""Prove the step-time gate: false alarms, detection, and a uniformly slower machine.

Runs the stored-baseline gate (``bench.gate.regress.stored_gate``, what `mnist-bench regress --baseline` runs) K times per scenario, each
in a fresh process, scenarios taking turns so the machine's changing load hits them all alike:

- unchanged:      the code as it is.
- slowdown:       a Keras callback, passed through run_variant's public ``callbacks``, busy-waits
                  after every training step for 0.3 × the fastest step seen so far: every harness
                  step does at least 1.3× its work. Nothing in the product knows about it.
- slower-machine: one busy loop pinned to each core the gate may use: the same machine with half
                  its CPU, so both workloads run about 2× slower (factors measured: summary).
- one-core:       the gate and one busy loop pinned to the same single core (a half-speed
                  1-core machine; not run unless named in --scenarios).

Writes summary.json and SUMMARY.md (counts of exit codes, changes, thresholds, slowdown factors
measured against the unchanged runs) to --out. Usage, from the repository root:

    MNIST_BENCH_CACHE=.cache .venv/bin/python scripts/prove_gate.py --runs 10
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
SCENARIOS = ("unchanged", "slowdown", "slower-machine", "one-core")
DEFAULT_SCENARIOS = SCENARIOS[:3]
EXTRA_WORK = 0.3
SHARED_CORE = 0


def slow_step_callbacks(extra: float = EXTRA_WORK) -> list[Any]:
    """A fresh callback that adds `extra` × the fastest step seen so far after each step."""
    import keras

    class SlowStep(keras.callbacks.Callback):
        """Busy-waits (holding the CPU, like real work) in on_train_batch_end."""

        def __init__(self) -> None:
            super().__init__()
            self._last = 0.0
            self._fastest = float("inf")

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self._last = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            now = time.perf_counter()
            # The step's own time, without the wait added after the previous step.
            self._fastest = min(self._fastest, now - self._last)
            until = now + extra * self._fastest
            while time.perf_counter() < until:
                pass
            self._last = time.perf_counter()

    return [SlowStep()]


def child(scenario: str, baseline: Path, json_out: Path, rounds: int, extra: float) -> int:
    """Run the gate once in this process, as `mnist-bench regress` does; returns its exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    from bench.gate import regress

    callbacks = (lambda: slow_step_callbacks(extra)) if scenario == "slowdown" else None
    options = regress.Options(baseline=baseline, rounds=rounds, json_out=json_out, force=True)
    return regress.stored_gate(options, callbacks=callbacks)


def _pin(core: int) -> None:
    os.sched_setaffinity(0, {core})


def run_once(
    scenario: str, baseline: Path, json_out: Path, log: Path, rounds: int, extra: float
) -> dict:
    """One gate run in a fresh process under `scenario`; its exit code, wall time and result."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    cmd = [sys.executable, __file__, "--child", scenario, "--baseline", str(baseline)]
    cmd += ["--json", str(json_out), "--rounds", str(rounds), "--extra", str(extra)]
    cores = {
        "slower-machine": sorted(os.sched_getaffinity(0)),
        "one-core": [SHARED_CORE],
    }.get(scenario, [])
    hogs = [
        subprocess.Popen(
            [sys.executable, "-c", "while True: pass"], preexec_fn=lambda c=core: _pin(c)
        )
        for core in cores
    ]
    start = time.perf_counter()
    try:
        with log.open("w") as out:
            code = subprocess.run(
                cmd,
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=(lambda: _pin(SHARED_CORE)) if scenario == "one-core" else None,
                check=False,
            ).returncode
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    wall = time.perf_counter() - start
    result = json.loads(json_out.read_text()) if json_out.is_file() else None
    return {"scenario": scenario, "exit_code": code, "wall_s": wall, "result": result}


def _median_of_runs(runs: list[dict], variant: str, key: str) -> float | None:
    values = [
        statistics.median(r["result"]["measured"]["variants"][variant][key])
        for r in runs
        if r["result"]
    ]
    return statistics.median(values) if values else None


def summarize(runs: list[dict]) -> dict[str, Any]:
    """Counts of exit codes, changes and thresholds, and slowdowns against the unchanged runs."""
    out: dict[str, Any] = {}
    by_scenario = {s: [r for r in runs if r["scenario"] == s] for s in SCENARIOS}
    reference = by_scenario["unchanged"]
    for scenario, group in by_scenario.items():
        if not group:
            continue
        codes = [r["exit_code"] for r in group]
        entry: dict[str, Any] = {
            "runs": len(group),
            "exit_codes": {str(c): codes.count(c) for c in sorted(set(codes))},
            "wall_s": [round(r["wall_s"], 1) for r in group],
            "variants": {},
        }
        variants = sorted(
            {row["variant"] for r in group if r["result"] for row in r["result"]["rows"]}
        )
        for v in variants:
            rows = [row for r in group if r["result"] for row in r["result"]["rows"]]
            rows = [row for row in rows if row["variant"] == v]
            detail: dict[str, Any] = {
                "changes": [row["change"] for row in rows],
                "thresholds": [row["threshold"] for row in rows],
                "current_spreads": [row["current_spread"] for row in rows],
                "verdicts": [row["verdict"] for row in rows],
            }
            # Absolute slowdown of each workload against the unchanged runs of this same proof.
            for side in ("harness", "calibration"):
                for stat in ("", "_median", "_mean"):
                    key = f"{side}{stat}_ms"
                    now, ref = _median_of_runs(group, v, key), _median_of_runs(reference, v, key)
                    detail[key] = now
                    detail[f"{key}_vs_unchanged"] = now / ref if now and ref else None
            entry["variants"][v] = detail
        out[scenario] = entry
    return out


def _pct(values: list[float | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "–"
    return f"{min(got):+.1%} / {statistics.median(got):+.1%} / {max(got):+.1%}"


def render(summary: dict[str, Any], baseline: Path, rounds: int, extra: float) -> str:
    """SUMMARY.md: one table of outcomes, one of changes and slowdown factors."""
    lines = [
        f"# Gate proof ({datetime.now(timezone.utc).isoformat(timespec='seconds')})",
        "",
        f"baseline `{baseline}`, {rounds} rounds per gate run, each run a fresh process; "
        f"slowdown adds {extra:g} × the fastest step after every step.",
        "",
        "| scenario | runs | pass (0) | regression (1) | cannot judge (2) | wall s median / max |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for scenario, e in summary.items():
        c = e["exit_codes"]
        lines.append(
            f"| {scenario} | {e['runs']} | {c.get('0', 0)} | {c.get('1', 0)} | {c.get('2', 0)} | "
            f"{statistics.median(e['wall_s']):.0f} / {max(e['wall_s']):.0f} |"
        )
    lines += [
        "",
        "change = current ratio / baseline ratio − 1 (min / median / max over runs); "
        "× = this scenario's step time over the unchanged runs' (median of runs), "
        "as fastest step / median step / mean step.",
        "",
        "| scenario | variant | change | threshold max | harness × | calibration × |",
        "|---|---|--:|--:|--:|--:|",
    ]

    def factors(d: dict[str, Any], side: str) -> str:
        vals = [d.get(f"{side}{stat}_ms_vs_unchanged") for stat in ("", "_median", "_mean")]
        return " / ".join("–" if v is None else f"{v:.2f}" for v in vals)

    for scenario, e in summary.items():
        for v, d in e["variants"].items():
            limits = [t for t in d["thresholds"] if t is not None]
            lines.append(
                f"| {scenario} | {v} | {_pct(d['changes'])} | "
                f"{max(limits):.1%} | {factors(d, 'harness')} | {factors(d, 'calibration')} |"
                if limits
                else f"| {scenario} | {v} | {_pct(d['changes'])} | – | – | – |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Parent: run every scenario K times and write the summary. Child: one gate run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="gate runs per scenario")
    parser.add_argument(
        "--scenarios", default=",".join(DEFAULT_SCENARIOS), help=", ".join(SCENARIOS)
    )
    parser.add_argument("--baseline", default="reports/baseline/gate.json")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--out", help="output folder (default reports/gate-proof-<UTC time>)")
    parser.add_argument(
        "--extra", type=float, default=EXTRA_WORK, help="slowdown: added work per step (0.3)"
    )
    parser.add_argument("--child", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    baseline = (REPO / args.baseline).resolve()
    if args.child:
        return child(args.child, baseline, Path(args.json), args.rounds, args.extra)

    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {sorted(unknown)}; choose from {SCENARIOS}")
    if args.runs < 1 or not args.extra > 0:
        parser.error(f"--runs {args.runs}, --extra {args.extra}: need runs >= 1 and extra > 0")
    if not baseline.is_file():
        parser.error(f"{baseline} does not exist: run `mnist-bench regress --update-baseline`")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else REPO / "reports" / f"gate-proof-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for i in range(args.runs):
        for scenario in scenarios:  # taking turns: load changes hit every scenario
            name = f"{scenario}-{i + 1:02d}"
            r = run_once(
                scenario,
                baseline,
                out / f"{name}.json",
                out / f"{name}.log",
                args.rounds,
                args.extra,
            )
            runs.append(r)
            print(f"{name}: exit {r['exit_code']} in {r['wall_s']:.0f} s", flush=True)
            summary = summarize(runs)
            (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            (out / "SUMMARY.md").write_text(render(summary, baseline, args.rounds, args.extra))
    print((out / "SUMMARY.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
