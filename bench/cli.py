"""Command line: `mnist-bench {data,run,report,compare,merge,regress,overhead,profiles}`
(also `python -m bench`).

A user error (bad input, a file that cannot be read or written) is one `mnist-bench: error: …`
line and exit 2; `--debug` shows the traceback instead. Outputs never overwrite an input, nor an
existing file unless `--force` (bench.outputs).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import platform
import shlex
import sys
import warnings
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import __version__, outputs, records
from bench.gate import ab_rule
from bench.gate.trend import TrendError
from bench.outputs import OutputError
from bench.plan.grouping import PairingError
from bench.plan.matrix import Matrix, MatrixError, apply_overrides, load_profile, profile_names
from bench.plan.shard import Shard, ShardError, parse_shard, select_shard
from bench.plan.variant import Variant, VariantError
from bench.records import RecordError, RecordWarning, read_records
from bench.report.compare import render_compare
from bench.report.markdown import check_report_outputs, write_report
from bench.run import estimate, pairs, progress, runner
from bench.run.resume import RunError, plan_of
from mnist_models.data import MnistDataError, MnistDataWarning, load_mnist

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# What a user can cause; anything else is a bug and keeps its traceback.
USER_ERRORS = (
    MatrixError,
    PairingError,
    VariantError,
    RecordError,
    MnistDataError,
    RunError,
    ShardError,
    OutputError,
    ab_rule.ABError,
    TrendError,
    OSError,
)


def _cmd_data(args: argparse.Namespace) -> int:
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


def resume_command(args: argparse.Namespace, out_dir: Path) -> str:
    """The command that continues an interrupted run: the same options, --out, --resume."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    module = getattr(spec, "name", None) == "bench.__main__"  # started as `python -m bench`
    argv = ["python", "-m", "bench"] if module else ["mnist-bench"]
    if args.debug:
        argv.append("--debug")
    argv += ["run", "--profile", args.profile]
    for override in args.set or []:
        argv += ["--set", override]
    if args.data:
        argv += ["--data", args.data]
    if args.no_report:
        argv.append("--no-report")
    if parse_shard(args.shard) != (1, 1):
        argv += ["--shard", args.shard]
    argv += ["--out", str(out_dir), "--resume"]
    if getattr(args, "retry_failed", False):
        argv.append("--retry-failed")
    return shlex.join(argv)


def _cmd_run(args: argparse.Namespace) -> int:
    if args.retry_failed and not args.resume:  # a usage error, before anything is read
        raise RunError("--retry-failed needs --resume: it reruns the failed jobs of a run's --out")
    parse_shard(args.shard)  # a bad spec stops here, before the matrix is even read
    matrix = _load_matrix(args)
    all_variants = matrix.variants()
    shard = select_shard(all_variants, args.shard, matrix.settings.repeats)
    variants = list(shard.variants)
    if args.list:
        _print_listing(variants, len(all_variants), matrix, shard, all_variants[0].id)
        return 0
    out_dir = Path(args.out) if args.out else _default_out_dir(matrix.name, shard)
    results = out_dir / "results.jsonl"
    outputs.check_dir_writable(out_dir)
    ctx = runner.RunContext(
        run_id=out_dir.name,
        profile=matrix.name,
        settings=matrix.settings,
        data_path=args.data,
        baseline_id=all_variants[0].id,  # expand() puts the baseline (or first combination) first
        shard=shard.spec,
        plan=plan_of(all_variants, matrix.settings),
    )
    heading = f"{len(variants)} variants x {matrix.settings.repeats} repeats -> {results}"
    try:
        runner.run_plan(
            ctx,
            variants,
            results,
            resume=args.resume,
            retry_failed=args.retry_failed,
            on_ready=functools.partial(_ready, args, out_dir, heading),
            on_record=progress.print_record,
            on_probe=lambda p: print(progress.probe_line(p)),
            on_set=lambda line: print(line, flush=True),
        )
    except KeyboardInterrupt:
        kept = (
            f"everything finished so far is in {results}"
            if results.exists()
            else "nothing was recorded yet"
        )
        print(f"\ninterrupted: {kept}; continue with: {resume_command(args, out_dir)}")
        return EXIT_INTERRUPTED
    if not args.no_report:
        path = write_report(results, out_dir, force=True)  # checked before the run (_ready)
        print(f"report: {path}")
    return 0


def _ready(args: argparse.Namespace, out_dir: Path, heading: str) -> None:
    """`run` once run_plan has checked the file and the paired sets: the report's paths, then the
    data (fetched and verified once, before any child starts)."""
    if not args.no_report:  # a resumed run re-renders its own report
        check_report_outputs(
            out_dir / "results.jsonl",
            out_dir,
            force=args.resume,
            advice="it is another run's report: choose another --out, or pass --no-report",
        )
    data = load_mnist(args.data)
    print(f"data: {data.source} ({data.location})")
    print(heading)


def _print_listing(
    variants: list[Variant], total: int, matrix: Matrix, shard: Shard, baseline_id: str | None
) -> None:
    """``run --list``: the variant ids this run (or shard) would measure, and the expected time."""
    for v in variants:
        print(v.id)
    print(f"{len(variants)} variants x {matrix.settings.repeats} repeats ({matrix.mode})")
    settings = matrix.settings
    try:
        expected = estimate.estimate(variants, settings, baseline_id, pairs.worker_cap(settings))
    except PairingError as exc:  # the run itself would refuse, before any work
        print(f"no estimate: {exc}")
        return
    where = "" if shard.count == 1 else f"shard {shard.spec}: {len(variants)} of {total} variants, "
    print(f"{where}expected ~{expected.total_s / 60:.1f} min on a 2-core CPU without a GPU:")
    for line in estimate.describe(expected, settings):
        print(f"  {line}")


def _default_out_dir(matrix_name: str, shard: Shard) -> Path:
    """reports/<profile>-<UTC stamp>[-shardIofN]: a new folder per run."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    suffix = f"-shard{shard.index}of{shard.count}" if shard.count > 1 else ""
    return Path("reports") / f"{Path(matrix_name).stem}-{stamp}{suffix}"


def _cmd_report(args: argparse.Namespace) -> int:
    out_dir = Path(args.out) if args.out else Path(args.results).parent
    path = write_report(Path(args.results), out_dir, fmt=args.format, force=args.force)
    print(path)
    return 0


def _cmd_overhead(args: argparse.Namespace) -> int:
    if args.rounds < 1 or args.epochs < 1:
        raise MatrixError("--rounds and --epochs must be >= 1")
    if args.json:  # before a minute of measuring
        outputs.check_output(args.json, inputs=[args.data], force=args.force)
    from bench.measure.overhead import measure_overhead  # imports TensorFlow
    from bench.report.overhead_table import render_overhead

    variant = Variant(epochs=args.epochs)
    data = load_mnist(args.data)
    result = measure_overhead(variant, data, rounds=args.rounds)
    print(render_overhead(result), end="")
    if args.json:
        outputs.write_atomic(args.json, json.dumps(result, indent=2) + "\n")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    if args.out:
        outputs.check_output(args.out, inputs=[args.a, args.b], force=args.force)
    a, b = read_records(args.a), read_records(args.b)  # both checked before any output
    text = render_compare(a, b, args.a, args.b)
    if args.out:
        outputs.write_atomic(args.out, text)
    print(text, end="")
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    merged = records.merge_files([Path(p) for p in args.results], Path(args.out), force=args.force)
    written = len(records.variant_records(merged, all_attempts=True))
    print(
        f"{args.out}: {written} variant records and "
        f"{len(records.probe_records(merged))} machine probes from {len(args.results)} files"
    )
    missing = records.missing_shards(merged)
    if missing:
        print(f"note: no records from shard(s) {', '.join(missing)} among the inputs")
    return 0


def _rounds(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: need a positive integer")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r}: need a positive number of seconds")
    return value


def _cmd_regress(args: argparse.Namespace) -> int:
    from bench.gate import regress  # no TensorFlow: its side processes import it

    return regress.run(
        regress.Options(
            against=args.against,
            rounds=args.rounds,
            budget_s=args.budget,
            data=args.data,
            json_out=Path(args.json) if args.json else None,
            markdown_out=Path(args.markdown) if args.markdown else None,
            ref_env=Path(args.ref_env) if args.ref_env else None,
            force=args.force,
            debug=args.debug,
        )
    )


def _cmd_profiles(args: argparse.Namespace) -> int:
    for name in profile_names():
        m = load_profile(name)
        print(
            f"{name:10s} {m.mode:9s} {len(m.variants()):3d} variants x {m.settings.repeats} repeats"
        )
    return 0


# Real examples that end each command's --help (tests/test_cli_help.py parses every one).
EXAMPLES: dict[str, tuple[str, ...]] = {
    "mnist-bench": (
        "mnist-bench run --profile quick               # a one-minute smoke matrix",
        "mnist-bench report reports/reference/results.jsonl --out /tmp/ref",
        "mnist-bench regress                           # the step-time gate CI runs",
    ),
    "data": (
        "mnist-bench data                              # fetch once, verify, say from where",
        "mnist-bench data --data ~/Downloads/mnist.npz  # or a directory of the four IDX files",
    ),
    "run": (
        "mnist-bench run --profile default --list      # the variants, nothing run",
        "mnist-bench run --profile default --set batch_size=64,256 --set repeats=3",
        "mnist-bench run --profile full --shard 2/4 --out shard-2 --no-report",
    ),
    "report": (
        "mnist-bench report reports/reference/results.jsonl --out /tmp/ref",
        "mnist-bench report reports/reference/results.jsonl --out /tmp/ref --format csv",
    ),
    "overhead": (
        "mnist-bench overhead",
        "mnist-bench overhead --rounds 3 --json /tmp/overhead.json",
    ),
    "compare": (
        "mnist-bench compare reports/reference/results.jsonl reports/mine/results.jsonl",
        "mnist-bench compare A/results.jsonl B/results.jsonl --out /tmp/compare.md",
    ),
    "merge": (
        "mnist-bench merge shard-*/results.jsonl -o all/results.jsonl",
        "mnist-bench merge shard-1/results.jsonl shard-2/results.jsonl -o all/results.jsonl --force",
    ),
    "regress": (
        "mnist-bench regress                           # exit 0 pass, 1 regression, 2 cannot judge",
        "mnist-bench regress --json /tmp/gate.json     # keep the raw rounds",
        "mnist-bench regress --against origin/main --ref-env /tmp/refenv  # keep REF's environment",
    ),
    "trend": (
        "mnist-bench trend run                         # HEAD against trend.toml's anchor",
        "mnist-bench trend report reports/trend/history.jsonl --out reports/trend --force",
        "mnist-bench trend export reports/trend/history.jsonl --format bencher -o bmf.json",
    ),
    "profiles": (
        "mnist-bench profiles",
        "mnist-bench run --profile seed --list         # one profile's variants",
    ),
}
# Printed by --version; read from the installed packages' metadata, never by importing them.
FRAMEWORK_PACKAGES = ("tensorflow", "keras")
OTHER_BACKEND_PACKAGES = ("jax", "jaxlib", "torch")


def _installed_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def version_text() -> str:
    """mnist-bench's version, then TensorFlow/Keras and any other installed Keras backend."""
    lines = [f"mnist-bench {__version__} (Python {platform.python_version()})"]
    for package in FRAMEWORK_PACKAGES:
        lines.append(f"{package} {_installed_version(package) or 'not installed'}")
    others = [
        f"{package} {version}"
        for package in OTHER_BACKEND_PACKAGES
        if (version := _installed_version(package))
    ]
    lines.append("other Keras backends: " + (", ".join(others) or "none installed (jax, torch)"))
    return "\n".join(lines)


class _VersionAction(argparse.Action):
    """--version, computed only when asked for (a few metadata reads)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        print(version_text())
        parser.exit()


def _add_examples(parser: argparse.ArgumentParser, sub: Any) -> None:
    """End the help of mnist-bench and of each command with its examples, kept as written."""
    for name, command in [("mnist-bench", parser), *sub.choices.items()]:
        command.epilog = "examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[name])
        command.formatter_class = argparse.RawDescriptionHelpFormatter


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist-bench", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help="print the versions of mnist-bench, TensorFlow/Keras and other installed backends",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    # --debug works after the command too; SUPPRESS keeps the top-level value when absent.
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )
    force = argparse.ArgumentParser(add_help=False)
    force.add_argument("--force", action="store_true", help="overwrite existing output files")

    data = sub.add_parser(
        "data", parents=[debug], help="fetch/verify MNIST and say where it came from"
    )
    data.add_argument("--data", help="Keras mnist.npz or a directory of the four IDX files")
    data.set_defaults(func=_cmd_data)

    _add_run(sub, [debug])
    _add_readers(sub, [debug, force])
    _add_regress(sub, [debug, force])
    _add_trend(sub, [debug, force])
    profiles = sub.add_parser("profiles", parents=[debug], help="list the shipped matrix profiles")
    profiles.set_defaults(func=_cmd_profiles)
    _add_examples(parser, sub)
    return parser


Subparsers = Any  # argparse's _SubParsersAction, which it does not export


def _add_run(sub: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    run = sub.add_parser(
        "run", parents=parents, help="measure a matrix of variants and write records + report"
    )
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
    run.add_argument(
        "--retry-failed",
        action="store_true",
        help="with --resume: run failed and timed-out jobs again (a paired set's: the whole set)",
    )
    run.add_argument("--list", action="store_true", help="print the variants and exit")
    run.add_argument("--data", help="Keras mnist.npz or a directory of the four IDX files")
    run.add_argument("--no-report", action="store_true", help="write records only")
    run.add_argument(
        "--shard",
        default="1/1",
        metavar="I/N",
        help="run only slice I of N of the matrix (same on every machine; merge them after)",
    )
    run.set_defaults(func=_cmd_run)


def _add_readers(sub: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    """The commands that read records or measure once and write files: report, overhead, compare, merge."""
    report = sub.add_parser(
        "report", parents=parents, help="render REPORT.md (or csv/json) from a records file"
    )
    report.add_argument("results", help="results.jsonl")
    report.add_argument("--out", help="output directory (default: beside the records)")
    report.add_argument("--format", choices=("md", "csv", "json"), default="md")
    report.set_defaults(func=_cmd_report)

    overhead = sub.add_parser(
        "overhead",
        parents=parents,
        help="self-check: harness vs bare model.fit step time, side by side",
    )
    overhead.add_argument("--rounds", type=int, default=5, help="interleaved pairs (default 5)")
    overhead.add_argument("--epochs", type=int, default=1, help="epochs per fit (default 1)")
    overhead.add_argument("--data", help="Keras mnist.npz or a directory of the four IDX files")
    overhead.add_argument("--json", help="also write the raw figures to this JSON file")
    overhead.set_defaults(func=_cmd_overhead)

    compare = sub.add_parser(
        "compare", parents=parents, help="two records files side by side, with ratios"
    )
    compare.add_argument("a", help="results.jsonl of run A (the reference)")
    compare.add_argument("b", help="results.jsonl of run B")
    compare.add_argument("--out", help="also write the markdown to this file")
    compare.set_defaults(func=_cmd_compare)

    merge = sub.add_parser("merge", parents=parents, help="combine shard records files into one")
    merge.add_argument("results", nargs="+", help="results.jsonl of each shard")
    merge.add_argument(
        "-o", "--out", required=True, help="merged records file (must not exist unless --force)"
    )
    merge.set_defaults(func=_cmd_merge)


def _add_regress(sub: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    regress = sub.add_parser(
        "regress",
        parents=parents,
        help="step-time regression gate, A/B against a commit: exit 0 pass, 1 regression, 2 cannot "
        "judge",
    )
    regress.add_argument(
        "--against",
        metavar="REF",
        help="commit to compare with, measured in its own checkout and environment (default: the "
        "merge base with origin/main, else HEAD~1); when REF cannot be measured the gate says so "
        "and exits 2",
    )
    regress.add_argument(
        "--rounds",
        type=_rounds,
        help=f"exactly this many rounds, at least {ab_rule.MIN_ROUNDS} (default: sized by time, "
        f"{ab_rule.DEFAULT_ROUNDS} pairs of processes within --budget, more up to "
        f"{ab_rule.MAX_ROUNDS} only while a row is too noisy)",
    )
    regress.add_argument(
        "--budget",
        type=_seconds,
        default=ab_rule.BUDGET_S,
        metavar="SECONDS",
        help=f"seconds of rounds the gate plans within (default {ab_rule.BUDGET_S:g})",
    )
    regress.add_argument("--data", help="Keras mnist.npz or a directory of the four IDX files")
    regress.add_argument("--json", metavar="PATH", help="also write measurement + verdicts here")
    regress.add_argument(
        "--markdown", metavar="PATH", help="also write the verdict table here (a job summary)"
    )
    regress.add_argument(
        "--ref-env",
        metavar="DIR",
        help="keep REF's environment in DIR and reuse it while REF and its lock are unchanged "
        "(default: a temporary folder, removed)",
    )
    regress.set_defaults(func=_cmd_regress)


def _add_trend(sub: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    trend = sub.add_parser(
        "trend",
        parents=parents,
        help="step time across commits: ratios to an anchor commit, as history (docs/trend.md)",
    )
    trend.add_argument("action", choices=("run", "report", "export"))
    trend.add_argument("history", nargs="?", help="history file (default: trend.toml's history)")
    trend.add_argument("--anchor", metavar="REF", help="default: trend.toml's anchor")
    trend.add_argument(
        "--commit", dest="commits", action="append", default=[], metavar="REF",
        help="a commit to measure (repeatable; default: HEAD unless --between or --new-anchor)",
    )  # fmt: skip
    trend.add_argument(
        "--between", nargs=2, metavar=("A", "B"),
        help="measure every commit from A to B and name the first at which the ratio moved",
    )  # fmt: skip
    trend.add_argument(
        "--new-anchor", metavar="REF",
        help="measure REF against the anchor once (an overlap), so later points chain to it",
    )  # fmt: skip
    trend.add_argument(
        "--python", metavar="PATH",
        help="run every side in this interpreter instead of building each lock's environment",
    )  # fmt: skip
    trend.add_argument("--rounds", type=_rounds, help="exactly this many rounds per commit")
    trend.add_argument("--data", help="Keras mnist.npz or a directory of the four IDX files")
    trend.add_argument("--out", metavar="DIR", help="report: where REPORT.md and trend.png go")
    trend.add_argument(
        "--format",
        choices=("github-action-benchmark", "bencher"),
        default="github-action-benchmark",
    )
    trend.add_argument("-o", "--output", metavar="PATH", help="export: write here (default stdout)")
    trend.set_defaults(func=_cmd_trend)


def _cmd_trend(args: argparse.Namespace) -> int:
    from bench.gate import trend_cli

    return trend_cli.main(args)


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """mnist-bench's own warnings print as one `mnist-bench: warning: …` line on stderr."""
    original = warnings.formatwarning

    def one_line(message: Any, category: Any, *args: Any, **kwargs: Any) -> str:
        if issubclass(category, RecordWarning | MnistDataWarning):
            return f"mnist-bench: warning: {message}\n"
        return original(message, category, *args, **kwargs)

    warnings.formatwarning = one_line
    try:
        yield
    finally:
        warnings.formatwarning = original


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:  # e.g. "out.md: No space left on device"
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with _warnings_as_lines():
        try:
            return int(args.func(args))
        except USER_ERRORS as exc:
            if args.debug:
                raise
            print(f"mnist-bench: error: {_message(exc)}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            if args.debug:
                raise
            print("mnist-bench: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
