"""`mnist-bench trend run`: measure commits against the anchor with the A/B engine and append each
as a history record (``bench.gate.trend``). No TF: each side is a fresh process of its own checkout.

Each commit is checked out (``git worktree``) beside the anchor's; both run in an environment
built from their ``requirements.lock`` (one per distinct lock, reused), or in `--python` for every
side. Then the gate's rounds (``regress.run_ab_gate``), sized as the gate sizes them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import envinfo
from bench.gate import ab_rule, regress, trend
from bench.plan.gate_variants import AB_TRAIN_S, AB_VARIANTS, GateVariant
from bench.records import utc_now
from bench.run import gate_ref, gate_rounds

Echo = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Request:
    """What `trend run` was asked for (``bench.cli`` fills it)."""

    history: Path
    anchor: str
    commits: tuple[str, ...] = ()
    new_anchor: str | None = None
    between: tuple[str, str] | None = None
    python: str | None = None
    variants: tuple[GateVariant, ...] = AB_VARIANTS
    rounds: int | None = None
    budget_s: float = ab_rule.BUDGET_S
    data: str | None = None


def commit_info(commit: str, cwd: Path) -> dict[str, str]:
    """id, committer time (ISO 8601) and subject of a commit."""
    out = gate_ref.git("show", "-s", "--format=%H%n%cI%n%s", commit, cwd=cwd) or ""
    parts = [*out.split("\n", 2), "", "", ""]
    return {"id": parts[0] or commit, "time": parts[1], "subject": parts[2]}


def resolve(ref: str, what: str, cwd: Path) -> str:
    commit = gate_ref.resolve(ref, cwd)
    if commit is None:
        raise trend.TrendError(
            f"{what} {ref!r} names no commit in {cwd}; give a commit id, tag or branch that exists "
            f"(a shallow clone: {regress.FETCH_HISTORY})"
        )
    if not gate_ref.has_entry_point(commit, cwd):
        raise trend.TrendError(
            f"{what} {ref!r} ({commit[:10]}) predates the A/B entry point {gate_ref.ENTRY_POINT}"
        )
    return commit


def between(a: str, b: str, cwd: Path) -> list[str]:
    """The commits from `a` to `b` along the ancestry path, both included, oldest first."""
    if gate_ref.git("merge-base", "--is-ancestor", a, b, cwd=cwd) is None:
        raise trend.TrendError(f"--between: {a[:10]} is not an ancestor of {b[:10]}")
    path = gate_ref.git("rev-list", "--reverse", "--ancestry-path", f"{a}..{b}", cwd=cwd) or ""
    return [a, *path.split()]


def plan(request: Request, cwd: Path) -> tuple[str, list[tuple[str, str]]]:
    """(the anchor, [(kind, commit)] to measure), every input checked before any work."""
    anchor = resolve(request.anchor, "anchor", cwd)
    history = trend.read_history(request.history)
    todo: list[tuple[str, str]] = []
    if request.new_anchor and (request.commits or request.between):
        raise trend.TrendError(
            "--new-anchor runs alone: measure it, put the new anchor in trend.toml, then measure "
            "commits against it"
        )
    if request.new_anchor:
        todo.append(("overlap", resolve(request.new_anchor, "--new-anchor", cwd)))
    if request.between:
        a, b = (resolve(r, "--between", cwd) for r in request.between)
        done = {
            r["commit"]["id"] for r in history if r["anchor"] == anchor and r["kind"] == "point"
        }
        todo += [("point", c) for c in between(a, b, cwd) if c not in done]
    todo += [("point", resolve(c, "commit", cwd)) for c in request.commits]
    names = [v.name for v in request.variants]
    for kind, commit in todo[:1]:  # the history must take what this run will append
        probe = {"kind": kind, "anchor": anchor, "variants": names, "commit": {"id": commit}}
        trend.check_append(history, probe)
    return anchor, todo


def run(request: Request, echo: Echo = print) -> int:
    """Measure every planned commit, appending each record as it is measured; 0, or 2 on a
    TrendError (nothing appended for the commit that failed)."""
    cwd = gate_rounds.source_root() if gate_ref.repo_root(Path.cwd()) is None else Path.cwd()
    anchor, todo = plan(request, cwd)
    if not todo:
        echo("trend: nothing to measure (every commit asked for is in the history)")
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="mnist-bench-trend-"))
    try:
        data = regress._data_path(request.data, scratch, echo)
        with gate_ref.checkout(anchor, cwd) as anchor_tree:
            for kind, commit in todo:
                with gate_ref.checkout(commit, cwd) as tree:
                    sides = {
                        "A": _side(
                            f"A (anchor {anchor[:10]})", anchor_tree, anchor, request, scratch, echo
                        ),
                        "B": _side(f"B ({commit[:10]})", tree, commit, request, scratch, echo),
                    }
                    rows, measured = regress.run_ab_gate(
                        sides, rounds=request.rounds, budget_s=request.budget_s,
                        data_path=data, variants=request.variants, train_s=AB_TRAIN_S, echo=echo,
                    )  # fmt: skip
                record = _record(kind, anchor, commit, measured, request, cwd)
                history = trend.read_history(request.history)
                trend.append(request.history, history, record)
                echo(f"trend: {kind} {commit[:10]} appended to {request.history}")
                for row in rows:
                    echo(
                        f"  {row.variant} {row.metric}: {row.ratio and round(row.ratio, 4)} ({row.verdict})"
                    )
    except regress.CannotJudge as exc:
        raise trend.TrendError(f"could not measure: {exc.reason}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if request.between:
        _name_first_moved(request, anchor, cwd, echo)
    return 0


def _record(
    kind: str, anchor: str, commit: str, measured: dict[str, Any], request: Request, cwd: Path
) -> dict[str, Any]:
    context = {
        "created_utc": utc_now(),
        "machine": envinfo.machine_info(),
        "rounds": measured["rounds"],
        "sizing": measured["sizing"],
    }
    names = [v.name for v in request.variants]
    return trend.point_record(
        kind, anchor, commit_info(commit, cwd), measured["figures"], names, context
    )


def _side(
    label: str, tree: Path, commit: str, request: Request, scratch: Path, echo: Echo
) -> gate_rounds.Side:
    """A side in `--python`, else in an environment built from the checkout's lock (one per lock)."""
    if request.python:
        return gate_rounds.Side(label, request.python, tree)
    lock = tree / gate_ref.LOCK_FILE
    key = hashlib.sha256(lock.read_bytes()).hexdigest()[:12] if lock.is_file() else commit[:12]
    try:
        built = gate_ref.build_env(tree, f"lock-{key}", scratch / f"env-{key}", log=echo)
    except gate_ref.RefError as exc:
        raise trend.TrendError(f"{label}: its environment could not be built: {exc}") from None
    return gate_rounds.Side(label, built.python, tree)


def _name_first_moved(request: Request, anchor: str, cwd: Path, echo: Echo) -> None:
    """Print the first commit of --between A B at which a series moved, in commit order."""
    assert request.between is not None
    order = between(*(resolve(r, "--between", cwd) for r in request.between), cwd)
    history = trend.read_history(request.history)
    sub = [
        next(
            r
            for r in history
            if r["kind"] == "point" and r["anchor"] == anchor and r["commit"]["id"] == c
        )
        for c in order
    ]
    for variant, metric in trend.keys(sub):
        moved = trend.first_moved(trend.series(sub, variant, metric))
        where = (
            f"first moved at {moved.commit['id'][:10]} ({moved.verdict})"
            if moved
            else "did not move"
        )
        echo(f"trend --between: {variant} {metric}: {where}")
