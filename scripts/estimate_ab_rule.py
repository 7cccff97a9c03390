"""Estimate, from a proof campaign's stored rounds, how often a number of rounds would misjudge.

A model, not a measurement: per scenario and gate row (variant × metric), each simulated gate run
draws a run-level offset (normal, with the between-run variance the campaign's run medians show
beyond what round-to-round scatter explains: a median of n rounds varies by about π/2 · σ² / n on
its own) and then `--rounds` paired ratios by adding residuals drawn from all the scenario's rounds
(each round's ratio less its run's median). Each simulated run is judged by the current rule
(``bench.gate.ab_rule``); the output is the share of runs per exit code. Every (scenario, rounds) has
its own seeded generator, so a line does not depend on which others are asked for. It was used to
choose 8 rounds before the third campaign; the campaign itself is the proof.

    python scripts/estimate_ab_rule.py reports/gate-proof/results.json --rounds 6 8
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gate import ab_rule as ab
from bench.gate.verdicts import exit_code

Row = tuple[str, str]
Model = dict[Row, tuple[float, float, list[float]]]
MEDIAN_VARIANCE = math.pi / 2  # var(median of n) ≈ π/2 · σ²/n for normal scatter


def row_ratios(run: dict[str, Any]) -> dict[Row, list[float]]:
    """(variant, metric) → the run's per-round B/A."""
    variants = list(run["figures"][0]["A"])
    return {
        (v, m): [r["B"][v][m] / r["A"][v][m] for r in run["figures"]]
        for v in variants
        for m in ab.METRICS
    }


def fit(runs: list[dict[Row, list[float]]]) -> Model:
    """Row → (mean run median, between-run SD beyond round scatter, pooled residuals)."""
    model = {}
    for key in runs[0]:
        medians = [statistics.median(r[key]) for r in runs]
        residuals = [x - statistics.median(r[key]) for r in runs for x in r[key]]
        rounds = statistics.mean(len(r[key]) for r in runs)
        within = MEDIAN_VARIANCE * statistics.pvariance(residuals) / rounds
        tau2 = statistics.pvariance(medians) - within
        model[key] = (statistics.mean(medians), max(tau2, 0.0) ** 0.5, residuals)
    return model


def simulate(model: Model, rounds: int, draws: int, rng: random.Random) -> list[float]:
    """Share of simulated gate runs ending in exit 0, 1 and 2."""
    counts = [0, 0, 0]
    ones = [1.0] * rounds
    for _ in range(draws):
        rows = []
        for (variant, metric), (mean, tau, residuals) in model.items():
            offset = mean + rng.gauss(0, tau)
            b = [offset + rng.choice(residuals) for _ in range(rounds)]
            ratio, low, high = ab.median_ci(ones, b)
            verdict = ab.verdict(ratio, low, high, ab.ratio_spread(ones, b))
            rows.append(ab.ABRow(variant, metric, verdict))
        counts[exit_code(rows)] += 1
    return [c / draws for c in counts]


def runs_by_scenario(path: Path) -> dict[str, list[dict[Row, list[float]]]]:
    """Scenario → each run's per-row ratios, for runs that have per-round figures."""
    by_scenario: dict[str, list[dict[Row, list[float]]]] = {}
    for run in json.loads(path.read_text())["runs"]:
        if run.get("figures"):
            by_scenario.setdefault(run["scenario"], []).append(row_ratios(run))
    return by_scenario


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="a prove_ab_gate.py results.json")
    parser.add_argument("--rounds", type=int, nargs="+", default=[ab.DEFAULT_ROUNDS])
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.draws < 1:
        parser.error(f"--draws {args.draws}: need at least 1")
    for n in args.rounds:
        try:
            ab.check_rounds(n)
        except ab.ABError as exc:
            parser.error(str(exc))
    try:
        by_scenario = runs_by_scenario(Path(args.results))
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError) as exc:
        parser.error(f"{args.results}: not a prove_ab_gate.py results.json ({exc!r})")
    if not by_scenario:
        parser.error(f"{args.results}: no run with per-round figures")
    print("scenario         runs  rounds  exit 0 / 1 / 2 (share of simulated gate runs)")
    for scenario, scenario_runs in by_scenario.items():
        model = fit(scenario_runs)
        for n in args.rounds:
            rng = random.Random(f"{args.seed}-{scenario}-{n}")
            shares = simulate(model, n, args.draws, rng)
            cells = " / ".join(f"{s:6.1%}" for s in shares)
            print(f"{scenario:16s} {len(scenario_runs):4d}  {n:6d}  {cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
