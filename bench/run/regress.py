"""`mnist-bench regress --against REF`: the A/B gate from choosing REF to the exit code. No TF here.

1. REF: ``--against`` or ``bench.run.refenv.default_ref`` (merge base with origin/main, else HEAD~1).
2. Fallbacks to the stored-baseline gate, each printed: no git work tree; no REF; REF without the
   entry point ``bench/gate_probe.py`` (every commit before the A/B gate); REF's checkout or
   environment cannot be built; REF's entry point speaks another contract or its probe fails.
   (A failing probe on the working tree's side is exit 2: that is the change's to fix.) ``Fallback`` carries the
   reason; the CLI then runs ``bench.measure.gate_rounds.run_gate``.
3. Check REF out (``git worktree``), build its environment with uv, ask both sides ``--describe``,
   run the rounds (``bench.run.ab``: interleaved when both entry points can, else alternating),
   judge (``bench.gate.ab``), print and write the table.
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

from bench.gate import ab as gate_ab
from bench.gate import render
from bench.gate.variants import AB_VARIANTS, GateVariant
from bench.plan.settings import DEFAULT_WARMUP_STEPS
from bench.records import utc_now
from bench.run import ab, envinfo, refenv

AB_THREADS = 1  # as the stored gate: one TF thread per pool on both sides


class Fallback(Exception):
    """The A/B gate cannot run here; the stored-baseline gate should, and the reason be printed."""


@dataclasses.dataclass(frozen=True)
class Options:
    """What `regress` was asked for in A/B mode."""

    against: str | None = None
    rounds: int = gate_ab.DEFAULT_ROUNDS
    data: str | None = None
    json_out: Path | None = None
    markdown_out: Path | None = None
    ref_env: Path | None = None
    prestart: bool = True
    alternate: bool = False  # whole processes in turn, even where both sides could interleave


def choose_ref(against: str | None, cwd: Path) -> tuple[str, str]:
    """(commit, description) of REF, or Fallback saying why there is none to drive."""
    if refenv.repo_root(cwd) is None:
        raise Fallback(f"{cwd} is not a git work tree (or git is missing)")
    if against:
        commit = refenv.resolve(against, cwd)
        if commit is None:
            raise Fallback(f"--against {against!r} names no commit here")
        why = f"--against {against}"
    else:
        chosen = refenv.default_ref(cwd)
        if chosen is None:
            raise Fallback(f"neither {refenv.UPSTREAM} nor HEAD~1 exists (a one-commit clone?)")
        commit, why = chosen
    if not refenv.has_entry_point(commit, cwd):
        raise Fallback(
            f"REF {refenv.short(commit)} ({why}) predates the A/B gate's entry point "
            f"{refenv.ENTRY_POINT}, so it cannot be driven"
        )
    return commit, f"{refenv.short(commit)} ({why})"


def run_ab_gate(
    sides: Mapping[str, ab.Side],
    *,
    rounds: int,
    data_path: str | None,
    variants: Sequence[GateVariant] = AB_VARIANTS,
    warmup_steps: int = DEFAULT_WARMUP_STEPS,
    prestart: bool = True,
    interleave: bool = False,
    echo: Callable[[str], None] = print,
) -> tuple[list[gate_ab.ABRow], dict[str, Any]]:
    """Measure the rounds between two ready sides and judge them: (rows, raw measurement).

    With `interleave`, each round's two processes take turns every few steps
    (``ab.run_interleaved``); without, whole processes alternate (``ab.run_rounds``, `prestart`).
    Too few rounds is ABError before any process starts.
    """
    gate_ab.check_rounds(rounds)
    request = ab.request(
        [v.probe_run() for v in variants],
        warmup_steps=warmup_steps,
        threads=AB_THREADS,
        data=data_path,
    )
    figures: list[dict[str, Any]] = [{} for _ in range(rounds)]

    def progress(r: int, label: str, response: dict[str, Any]) -> None:
        fig = gate_ab.figures(response, warmup_steps)
        figures[r][label] = fig
        cells = ", ".join(
            f"{name} median {f['median_ms']:.3f} wall {f['wall_ms']:.3f}" for name, f in fig.items()
        )
        echo(f"  round {r + 1}/{rounds} {label}: {cells} ms ({response['process_s']:.0f} s)")

    start = time.perf_counter()
    if interleave:
        responses = ab.run_interleaved(sides, request, rounds, on_response=progress)
    else:
        responses = ab.run_rounds(sides, request, rounds, prestart=prestart, on_response=progress)
    rows = gate_ab.compare_rounds(figures, [v.name for v in variants])
    measured = {
        "request": request,
        "mode": mode_text(interleave),
        "order": None if interleave else ab.round_order(rounds),
        "rounds": rounds,
        "figures": figures,
        "responses": responses,
        "elapsed_s": time.perf_counter() - start,
    }
    return rows, measured


def mode_text(interleave: bool) -> str:
    """How the rounds ran, for the report."""
    if interleave:
        return (
            f"interleaved (A and B take turns every {ab.INTERLEAVE_EVERY} training steps, "
            "one process at a time)"
        )
    return "alternating (A B, B A, …, one whole process at a time)"


def choose_interleave(
    describes: Mapping[str, Mapping[str, Any]], alternate: bool, echo: Callable[[str], None]
) -> bool:
    """Whether the rounds interleave: both entry points can and --alternate was not given."""
    if alternate:
        return False
    lacking = [k for k, doc in describes.items() if not doc.get("interleave")]
    if lacking:
        echo(f"rounds alternate: side {', '.join(lacking)}'s entry point cannot interleave")
    return not lacking


def _exit_on_sigterm() -> None:
    """SIGTERM (a cancelled CI job) unwinds like Ctrl-C: probes are killed, REF's checkout removed."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def _ref_side(
    tree: Path, commit: str, ref_text: str, env_dir: Path, echo: Callable[[str], None]
) -> tuple[dict[str, ab.Side], refenv.RefEnv, dict[str, dict[str, Any]]]:
    """Both sides, REF's environment built, and their entry points' ``--describe`` answers.

    Fallback if REF's environment or entry point fails.
    """
    try:
        built = refenv.build_env(tree, commit, env_dir, log=echo)
    except refenv.RefError as exc:
        raise Fallback(f"REF {ref_text}: its environment could not be built: {exc}") from None
    echo(
        f"REF environment: {built.installer}"
        + (" (reused)" if built.reused else f", built in {built.build_s:.0f} s")
        + (", from its requirements.lock" if built.from_lock else "")
    )
    sides = {
        "A": ab.Side(f"A (REF {refenv.short(commit)})", built.python, tree),
        "B": ab.Side("B (working tree)", sys.executable, ab.source_root()),
    }
    describes = {}
    for key, side in sides.items():
        try:
            describes[key] = ab.describe(side)
        except ab.ProbeError as exc:
            if key == "A":
                raise Fallback(str(exc)) from None
            raise
    return sides, built, describes


def regress_against(options: Options, echo: Callable[[str], None] = print) -> int:
    """The whole A/B gate; returns the exit code, or raises Fallback before measuring anything.

    Too few rounds is ABError, raised before REF is looked up or any process starts.
    """
    gate_ab.check_rounds(options.rounds)
    start = time.perf_counter()
    _exit_on_sigterm()
    cwd = ab.source_root()
    commit, ref_text = choose_ref(options.against, cwd)
    from mnist_models.data import load_mnist  # numpy only; fetch and verify once, here

    data = load_mnist(options.data)
    # Absolute: REF's probes run in REF's checkout.
    data_path = str(Path(data.location).resolve()) if data.source in ("path", "cache") else None
    echo(f"gate: A = REF {ref_text}, B = this working tree; data {data.source} ({data.location})")
    env_dir = options.ref_env or Path(tempfile.mkdtemp(prefix="mnist-bench-refenv-"))
    try:
        with refenv.checkout(commit, cwd) as tree:
            sides, built, describes = _ref_side(tree, commit, ref_text, env_dir, echo)
            try:
                rows, measured = run_ab_gate(
                    sides,
                    rounds=options.rounds,
                    data_path=data_path,
                    prestart=options.prestart,
                    interleave=choose_interleave(describes, options.alternate, echo),
                    echo=echo,
                )
            except ab.ProbeError as exc:
                if exc.side != "A":
                    raise  # the working tree's own probe failed: that is the change's to fix
                raise Fallback(f"REF {ref_text} could not be measured: {exc}") from None
    except refenv.RefError as exc:
        raise Fallback(f"REF {ref_text}: {exc}") from None
    finally:
        if options.ref_env is None:
            shutil.rmtree(env_dir, ignore_errors=True)
    meta = {
        "ref": ref_text,
        "rounds": options.rounds,
        "mode": measured["mode"],
        "sides": {
            key: {"label": side.label, "versions": measured["responses"][0][key]["versions"]}
            for key, side in sides.items()
        },
        "env": dataclasses.asdict(built),
        "machine": envinfo.machine_info(),
        "elapsed_s": time.perf_counter() - start,
    }
    text = render.render_ab(rows, meta)
    echo(text)
    code = gate_ab.exit_code(rows)
    write_outputs(options, text, code, rows, meta, measured, commit)
    return code


def write_outputs(
    options: Options,
    text: str,
    code: int,
    rows: Sequence[gate_ab.ABRow],
    meta: Mapping[str, Any],
    measured: Mapping[str, Any],
    commit: str,
) -> None:
    """--markdown gets the table; --json the verdicts, figures and every raw probe response."""
    if options.markdown_out is not None:
        options.markdown_out.parent.mkdir(parents=True, exist_ok=True)
        options.markdown_out.write_text("## Step-time gate (A/B)\n\n" + text + "\n")
    if options.json_out is not None:
        doc = {
            "mode": "ab",
            "exit_code": code,
            "created_utc": utc_now(),
            "ref_commit": commit,
            "rows": [dataclasses.asdict(row) | {"change": row.change} for row in rows],
            "meta": dict(meta),
            "measured": dict(measured),
        }
        options.json_out.parent.mkdir(parents=True, exist_ok=True)
        options.json_out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
