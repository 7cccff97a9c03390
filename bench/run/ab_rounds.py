"""A/B gate rounds: two sides, each round a fresh ``python -m bench.gate_probe`` process per side. No TF.

A side is an interpreter plus a source tree (and environment variables): side B is the working tree
in this interpreter, side A a reference commit checked out with its own environment
(``bench.run.refenv``). Two ways to run a round:

- **interleaved** (``run_interleaved``; the default when both entry points can): both processes
  start together and take turns every INTERLEAVE_EVERY training steps (tens of milliseconds),
  the first of each pair of turns alternating (A B, B A, …), one process training at a time. On a
  shared machine other tenants' load comes and goes within seconds and the same code's step time
  moves 15% between two consecutive 1.5-second runs; taking turns that often, both sides see
  the same machine, and the load cancels in B/A.
- **alternating** (``run_rounds``; an older REF's entry point): A B, B A, A B, … one whole process
  at a time; the next probe is started while the current one measures, because a probe imports
  TensorFlow before it reads its request, and that overlap is the same for both sides.

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

PROBE_MODULE = "bench.gate_probe"
PROBE_TIMEOUT_S = 900.0
DESCRIBE_TIMEOUT_S = 120.0
# Training steps per turn: ~25 ms at batch 32 and ~80 ms at 512 on the 2-core dev machine. With
# 50-step turns, batch 512 had 4 turns a side per round and its B/A scattered 11% between rounds of
# unchanged code (batch 32, with 24 turns: 3%); load changes within tenths of a second too.
INTERLEAVE_EVERY = 10


class ProbeError(RuntimeError):
    """A side could not be measured: no entry point, a crash, a timeout or unreadable output."""

    side: str | None = None  # "A" or "B" once run_rounds knows which


@dataclass(frozen=True)
class Side:
    """Where one side's probes run: ``python -m bench.gate_probe`` with `source` first on sys.path."""

    label: str
    python: str
    source: Path
    env: Mapping[str, str] = field(default_factory=dict)

    def command(self, *args: str) -> list[str]:
        return [self.python, "-m", PROBE_MODULE, *args]

    def start(self, stderr: Any = subprocess.PIPE) -> subprocess.Popen:
        """A probe process of this side: stdin and stdout are pipes, text; stderr as given."""
        return subprocess.Popen(
            self.command(),
            cwd=self.source,
            env=self.environ(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )

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
    """The side's ``--describe`` answer; ProbeError if it has no entry point or another contract."""
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
        raise ProbeError(f"{side.label}: cannot run {PROBE_MODULE} --describe ({exc})") from None
    try:
        doc = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (done.stderr or done.stdout).strip()[-REASON_CHARS:]
        raise ProbeError(
            f"{side.label}: {PROBE_MODULE} --describe exited {done.returncode}: {tail}"
        ) from None
    if not isinstance(doc, dict) or doc.get("contract") != CONTRACT:
        raise ProbeError(
            f"{side.label}: entry point speaks contract {doc!r}, this driver {CONTRACT}"
        )
    return doc


class Probe:
    """One started probe process; ``measure`` sends the request and reads the response."""

    def __init__(self, side: Side) -> None:
        self.side = side
        self.started = time.perf_counter()
        self.proc = side.start()

    def measure(self, request: Mapping[str, Any], timeout_s: float = PROBE_TIMEOUT_S) -> dict:
        """The response (contract 1) to `request`; ProbeError on a crash, timeout or bad output."""
        try:
            out, err = self.proc.communicate(json.dumps(request), timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise ProbeError(f"{self.side.label}: probe killed after {timeout_s:g} s") from None
        try:
            response = json.loads(out.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            tail = (err or out).strip()[-REASON_CHARS:]
            raise ProbeError(
                f"{self.side.label}: probe exited {self.proc.returncode} without a response: {tail}"
            ) from None
        return final_response(response, self.side, self.started)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


def final_response(response: dict[str, Any], side: Side, started: float) -> dict[str, Any]:
    """A probe's response, stamped with its process's seconds; ProbeError if it says it failed."""
    if not response.get("ok"):
        raise ProbeError(f"{side.label}: probe failed: {response.get('error')}")
    response["process_s"] = time.perf_counter() - started
    return response


def round_order(rounds: int, first: int = 0) -> list[tuple[int, str]]:
    """(round, side) of rounds `first` … `rounds`-1 in run order: A B, B A, A B, … (by round parity)."""
    order = []
    for r in range(first, rounds):
        pair = ("A", "B") if r % 2 == 0 else ("B", "A")
        order += [(r, s) for s in pair]
    return order


def run_rounds(
    sides: Mapping[str, Side],
    request: Mapping[str, Any],
    rounds: int,
    *,
    first: int = 0,
    prestart: bool = True,
    on_response: Callable[[int, str, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """``[{"A": response, "B": response}, …]`` for rounds `first` … `rounds`-1, each a fresh process.

    With `prestart`, the next probe starts (and imports TensorFlow) while the current one measures.
    Any failure stops the rounds: every probe started is killed and ProbeError raised.
    """
    order = round_order(rounds, first)
    results: list[dict[str, Any]] = [{} for _ in range(first, rounds)]
    started: list[Probe] = []

    def start(k: int) -> Probe:
        probe = Probe(sides[order[k][1]])
        started.append(probe)
        return probe

    try:
        current = start(0)
        for k, (r, label) in enumerate(order):
            ahead = start(k + 1) if prestart and k + 1 < len(order) else None
            try:
                response = current.measure(request)
            except ProbeError as exc:
                exc.side = label
                raise
            results[r - first][label] = response
            if on_response:
                on_response(r, label, response)
            if k + 1 < len(order):
                current = ahead or start(k + 1)
    finally:
        for probe in started:
            probe.kill()
    return results


def _turn_taker(side: Side, label: str) -> turns.TurnTaker:
    """A probe of `side` driven turn by turn (an interleaved request), named by its label."""
    return turns.TurnTaker(
        label, side.command(), env=side.environ(), cwd=side.source, limit_s=PROBE_TIMEOUT_S
    )


def run_interleaved(
    sides: Mapping[str, Side],
    request: Mapping[str, Any],
    rounds: int,
    *,
    first: int = 0,
    every: int = INTERLEAVE_EVERY,
    on_response: Callable[[int, str, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Like ``run_rounds``, but each round's two processes take turns every `every` steps.

    The turns come from ``bench.run.turns`` (the engine the matrix uses too), in pairs whose first
    side alternates (first, other, other, first, …), so a drift within a pair favours neither;
    round r gives A the first turn when r is even, B when odd. Both entry points must speak the
    interleaving of ``bench.gate_probe`` (``describe`` lists "interleave").
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
            err = ProbeError(f"{sides[exc.label].label}: probe {exc}")
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
    """The probe's checked response (``final_response``), its side named on a ProbeError."""
    assert taker.response is not None
    try:
        return final_response(taker.response, side, taker.started)
    except ProbeError as exc:
        exc.side = taker.label
        raise


def source_root() -> Path:
    """The source tree this module was imported from (side B's)."""
    return Path(__file__).resolve().parents[2]
