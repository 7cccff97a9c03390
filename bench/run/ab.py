"""A/B rounds: two sides, each round a fresh ``python -m bench.gate_probe`` process per side. No TF.

A side is an interpreter plus a source tree (and environment variables): side B is the working tree
in this interpreter, side A a reference commit checked out with its own environment
(``bench.run.refenv``). Rounds alternate which side goes first (A B, B A, A B, …). The next probe
is started while the current one measures, because a probe imports TensorFlow before it reads its
request: the import (most of a probe's cost on a 2-core machine) overlaps the other side's
measurement, and as that overlap is the same for both sides it does not favour either. The gate's
decision is ``bench.gate.ab`` (pure).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.gate_probe import CONTRACT, INJECT_ENV
from bench.records import REASON_CHARS

PROBE_MODULE = "bench.gate_probe"
PROBE_TIMEOUT_S = 900.0
DESCRIBE_TIMEOUT_S = 120.0


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
        self.proc = subprocess.Popen(
            side.command(),
            cwd=side.source,
            env=side.environ(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

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
        if not response.get("ok"):
            raise ProbeError(f"{self.side.label}: probe failed: {response.get('error')}")
        response["process_s"] = time.perf_counter() - self.started
        return response

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


def round_order(rounds: int) -> list[tuple[int, str]]:
    """(round, side) in run order: A B, B A, A B, … (the first of each pair alternates)."""
    order = []
    for r in range(rounds):
        pair = ("A", "B") if r % 2 == 0 else ("B", "A")
        order += [(r, s) for s in pair]
    return order


def run_rounds(
    sides: Mapping[str, Side],
    request: Mapping[str, Any],
    rounds: int,
    *,
    prestart: bool = True,
    on_response: Callable[[int, str, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """``[{"A": response, "B": response}, …]``, one entry per round, each response a fresh process.

    With `prestart`, the next probe starts (and imports TensorFlow) while the current one measures.
    Any failure stops the rounds: every probe started is killed and ProbeError raised.
    """
    order = round_order(rounds)
    results: list[dict[str, Any]] = [{} for _ in range(rounds)]
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
            results[r][label] = response
            if on_response:
                on_response(r, label, response)
            if k + 1 < len(order):
                current = ahead or start(k + 1)
    finally:
        for probe in started:
            probe.kill()
    return results


def request(
    variants: Sequence[Mapping[str, Any]], *, warmup_steps: int, threads: int, data: str | None
) -> dict[str, Any]:
    """A contract-1 request for these gate variants."""
    return {
        "contract": CONTRACT,
        "runs": [dict(v) for v in variants],
        "warmup_steps": warmup_steps,
        "threads": threads,
        "data": data,
    }


def source_root() -> Path:
    """The source tree this module was imported from (side B's)."""
    return Path(__file__).resolve().parents[2]
