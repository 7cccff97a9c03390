"""The A/B gate's rounds: in each, one fresh side process per side, the two taking turns. No TF.

A side is an interpreter plus a source tree (and environment variables): side B is the working tree
in this interpreter, side A a reference commit checked out with its own environment
(``bench.run.gate_ref``). A side process is ``python -m bench.gate_probe`` in that tree. The two
processes of a round start together and take turns every INTERLEAVE_EVERY training steps (tens of
milliseconds), the first of each pair of turns alternating (A B, B A, …), one process training at a
time. On a shared machine other tenants' load comes and goes within seconds and the same code's
step time moves 15% between two consecutive 1.5-second runs; taking turns that often, both sides
see the same machine, and the load cancels in B/A.

The gate's decision is ``bench.gate.ab_rule`` (pure); the flow that calls this is ``bench.gate.regress``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.plan.gate_variants import CONTRACT, INJECT_ENV
from bench.records import REASON_CHARS
from bench.run import turns

ENTRY_MODULE = "bench.gate_probe"  # the stable entry point (contract 1): old REFs have it
SIDE_TIMEOUT_S = 900.0
DESCRIBE_TIMEOUT_S = 120.0
# Training steps per turn: ~25 ms at batch 32 and ~80 ms at 512 on the 2-core dev machine. With
# 50-step turns, batch 512 had 4 turns a side per round and its B/A scattered 11% between rounds of
# unchanged code (batch 32, with 24 turns: 3%); load changes within tenths of a second too.
INTERLEAVE_EVERY = 10


class SideError(RuntimeError):
    """A side could not be measured: no entry point, a crash, a timeout or unreadable output."""

    side: str | None = None  # "A" or "B" once the round knows which


@dataclass(frozen=True)
class Side:
    """Where one side's processes run: ``python -m bench.gate_probe`` with `source` first on sys.path."""

    label: str
    python: str
    source: Path
    env: Mapping[str, str] = field(default_factory=dict)

    def command(self, *args: str) -> list[str]:
        return [self.python, "-m", ENTRY_MODULE, *args]

    def environ(self) -> dict[str, str]:
        """This process's environment, the side's source tree first on PYTHONPATH, plus `env`.

        The test-only injection variable is dropped unless the side sets it itself.
        """
        env = {k: v for k, v in os.environ.items() if k != INJECT_ENV}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.source), env.get("PYTHONPATH")]))
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["CUDA_VISIBLE_DEVICES"] = ""
        env.update(self.env)
        return env


def describe(side: Side) -> dict[str, Any]:
    """The side's ``--describe`` answer; SideError if it has no entry point or another contract."""
    try:
        done = subprocess.run(
            side.command("--describe"),
            cwd=side.source,
            env=side.environ(),
            capture_output=True,
            text=True,
            timeout=DESCRIBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SideError(f"{side.label}: cannot run {ENTRY_MODULE} --describe ({exc})") from None
    try:
        doc = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (done.stderr or done.stdout).strip()[-REASON_CHARS:]
        raise SideError(
            f"{side.label}: {ENTRY_MODULE} --describe exited {done.returncode}: {tail}"
        ) from None
    if not isinstance(doc, dict) or doc.get("contract") != CONTRACT:
        raise SideError(
            f"{side.label}: entry point speaks contract {doc!r}, this driver {CONTRACT}"
        )
    return doc


def _turn_taker(side: Side, label: str) -> turns.TurnTaker:
    """A process of `side` driven turn by turn, named by its label."""
    return turns.TurnTaker(
        label, side.command(), env=side.environ(), cwd=side.source, limit_s=SIDE_TIMEOUT_S
    )


def run_rounds(
    sides: Mapping[str, Side],
    request: Mapping[str, Any],
    rounds: int,
    *,
    first: int = 0,
    every: int = INTERLEAVE_EVERY,
    on_response: Callable[[int, str, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """``[{"A": response, "B": response}, …]`` for rounds `first` … `rounds`-1: in each, a fresh
    process per side, the two taking turns every `every` steps.

    The turns come from ``bench.run.turns`` (the engine the matrix uses too), in pairs whose first
    side alternates (first, other, other, first, …), so a drift within a pair favours neither;
    round r gives A the first turn when r is even, B when odd. Both entry points must speak the
    interleaving of ``bench.gate_probe`` (``describe`` lists "interleave"). Any failure stops the
    rounds: both processes are killed and SideError raised, naming the side.
    """
    line = json.dumps({**request, "interleave": {"every": every}})
    results: list[dict[str, Any]] = [{} for _ in range(first, rounds)]
    for r in range(first, rounds):
        takers = {label: _turn_taker(side, label) for label, side in sides.items()}
        try:
            for taker in takers.values():
                taker.send(line)
            turns.take_turns(takers, turns.alternating("A" if r % 2 == 0 else "B"))
            for label in ("A", "B"):
                results[r - first][label] = _final(takers[label], sides[label])
        except turns.TurnError as exc:
            err = SideError(f"{sides[exc.label].label}: its process {exc}")
            err.side = exc.label
            raise err from None
        finally:
            for taker in takers.values():
                taker.kill()
        for label in ("A", "B"):
            if on_response:
                on_response(r, label, results[r - first][label])
    return results


def _final(taker: turns.TurnTaker, side: Side) -> dict[str, Any]:
    """The process's response, stamped with its seconds; SideError naming the side if it failed."""
    response = taker.response
    assert response is not None
    if not response.get("ok"):
        err = SideError(f"{side.label}: its process failed: {response.get('error')}")
        err.side = taker.label
        raise err
    response["process_s"] = time.perf_counter() - taker.started
    return response


def source_root() -> Path:
    """The source tree this module was imported from (side B's)."""
    return Path(__file__).resolve().parents[2]
