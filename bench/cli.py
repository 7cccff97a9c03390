"""Command line: `mnist-bench {data,run,report,compare,profiles}` (also `python -m bench`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import progress
from bench.matrix import MatrixError, apply_overrides, load_profile, profile_names
from bench.records import RecordError
from bench.runner import RunError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _cmd_data(args: argparse.Namespace) -> int:
    from mnist_models.data import load_mnist

    data = load_mnist(args.data)
    for attempt in data.attempts:
        print(f"  {attempt}")
    print(f"source: {data.source} ({data.location}); sha256 verified: {data.verified}")
    print(
        f"x_train {data.x_train.shape} {data.x_train.dtype}, x_test {data.x_test.shape}; "
        f"first labels {data.y_train[:5].tolist()} / {data.y_test[:5].tolist()}"
    )
    return 0


def _load_matrix(args: argparse.Namespace) -> Any:
    matrix = load_profile(args.profile)
    return apply_overrides(matrix, args.set or []) if args.set else matrix


def _cmd_run(args: argparse.Namespace) -> int:
    from bench import runner
    from bench.records import read_records

    matrix = _load_matrix(args)
    variants = matrix.variants()
    if args.list:
        for v in variants:
            print(v.id)
        print(f"{len(variants)} variants x {matrix.settings.repeats} repeats ({matrix.mode})")
        return 0
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out_dir = Path(args.out) if args.out else Path("reports") / f"{Path(matrix.name).stem}-{stamp}"
    results = out_dir / "results.jsonl"
    if results.exists() and results.stat().st_size and not args.resume:
        raise runner.RunError(
            f"{results} already holds records; pass --resume to continue it, "
            "or --out to write elsewhere"
        )
    if args.resume:
        read_records(results)  # a damaged file stops the run here, before any work

    from mnist_models.data import load_mnist

    data = load_mnist(args.data)  # fetch and verify once, before any child starts
    print(f"data: {data.source} ({data.location})")
    ctx = runner.RunContext(
        run_id=out_dir.name,
        profile=matrix.name,
        settings=matrix.settings,
        data_path=args.data,
        baseline_id=variants[0].id,  # expand() puts the baseline (or first combination) first
    )
    print(f"{len(variants)} variants x {matrix.settings.repeats} repeats -> {results}")
    try:
        runner.run_plan(
            ctx,
            variants,
            results,
            resume=args.resume,
            on_record=progress.print_record,
            on_probe=lambda p: print(progress.probe_line(p)),
        )
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: everything finished so far is in {results}; continue with: "
            f"mnist-bench run --profile {args.profile} --out {out_dir} --resume"
        )
        return EXIT_INTERRUPTED
    if not args.no_report:
        from bench.report import write_report

        path = write_report(results, out_dir)
        print(f"report: {path}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from bench.report import write_report

    out_dir = Path(args.out) if args.out else Path(args.results).parent
    path = write_report(Path(args.results), out_dir, fmt=args.format)
    print(path)
    return 0


def _cmd_overhead(args: argparse.Namespace) -> int:
    import json

    from bench.overhead import measure_overhead, render_overhead
    from bench.variant import Variant
    from mnist_models.data import load_mnist

    if args.rounds < 1 or args.epochs < 1:
        raise MatrixError("--rounds and --epochs must be >= 1")
    data = load_mnist(args.data)
    result = measure_overhead(Variant(epochs=args.epochs), data, rounds=args.rounds)
    print(render_overhead(result), end="")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from bench.compare import render_compare
    from bench.records import read_records

    a, b = read_records(args.a), read_records(args.b)  # both checked before any output
    text = render_compare(a, b, args.a, args.b)
    if args.out:
        Path(args.out).write_text(text)
    print(text, end="")
    return 0


def _cmd_profiles(args: argparse.Namespace) -> int:
    for name in profile_names():
        m = load_profile(name)
        print(
            f"{name:10s} {m.mode:9s} {len(m.variants()):3d} variants x {m.settings.repeats} repeats"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist-bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="fetch/verify MNIST and say where it came from")
    data.add_argument("--data", help="Keras mnist.npz or a directory of the four IDX files")
    data.set_defaults(func=_cmd_data)

    run = sub.add_parser("run", help="measure a matrix of variants and write records + report")
    run.add_argument(
        "--profile",
        default="default",
        help=f"profile name ({', '.join(profile_names())}) or a TOML path",
    )
    run.add_argument(
        "--set",
        action="append",
        metavar="KEY=V1,V2",
        help="override an axis (list) or run setting, e.g. --set batch_size=32,128",
    )
    run.add_argument("--out", help="output directory (default reports/<profile>-<UTC time>)")
    run.add_argument("--resume", action="store_true", help="skip jobs already in --out")
    run.add_argument("--list", action="store_true", help="print the variants and exit")
    run.add_argument("--data", help="Keras mnist.npz or a directory of the four IDX files")
    run.add_argument("--no-report", action="store_true", help="write records only")
    run.set_defaults(func=_cmd_run)

    report = sub.add_parser("report", help="render REPORT.md (or csv/json) from a records file")
    report.add_argument("results", help="results.jsonl")
    report.add_argument("--out", help="output directory (default: beside the records)")
    report.add_argument("--format", choices=("md", "csv", "json"), default="md")
    report.set_defaults(func=_cmd_report)

    overhead = sub.add_parser(
        "overhead", help="self-check: harness vs bare model.fit step time, side by side"
    )
    overhead.add_argument("--rounds", type=int, default=5, help="interleaved pairs (default 5)")
    overhead.add_argument("--epochs", type=int, default=1, help="epochs per fit (default 1)")
    overhead.add_argument("--data", help="Keras mnist.npz or a directory of the four IDX files")
    overhead.add_argument("--json", help="also write the raw figures to this JSON file")
    overhead.set_defaults(func=_cmd_overhead)

    compare = sub.add_parser("compare", help="two records files side by side, with ratios")
    compare.add_argument("a", help="results.jsonl of run A (the reference)")
    compare.add_argument("b", help="results.jsonl of run B")
    compare.add_argument("--out", help="also write the markdown to this file")
    compare.set_defaults(func=_cmd_compare)

    profiles = sub.add_parser("profiles", help="list the shipped matrix profiles")
    profiles.set_defaults(func=_cmd_profiles)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mnist_models.data import MnistDataError

    try:
        return int(args.func(args))
    except (MatrixError, RecordError, MnistDataError, RunError) as exc:
        print(f"mnist-bench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
