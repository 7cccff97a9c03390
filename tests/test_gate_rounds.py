"""`bench.run.gate_rounds` with stand-in entry points (no TensorFlow): how a round's processes take turns.

A stand-in is a source tree whose ``bench/gate_probe.py`` answers at once; the driver runs it exactly
as it runs the real one (``python -m bench.gate_probe`` with the side's tree first on PYTHONPATH).
It speaks the interleaving protocol: with ``interleave`` in the request it waits for ``go`` at
train begin, every N "steps" (it has STEPS) and at train end, and logs when each turn ran.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.gate import regress
from bench.run import gate_rounds as ab

STAND_IN = """
import json, os, sys, time
request = json.loads(sys.stdin.readline())
name, steps = os.environ["NAME"], int(os.environ.get("STEPS", "10"))
log = open(os.environ["LOG"], "a")
every = (request.get("interleave") or {}).get("every")
if os.environ.get("CRASH_AT") == "start":
    raise SystemExit(3)
def turn(where):
    if every:
        print(json.dumps({"wait": where}), flush=True)
        assert sys.stdin.readline().strip() == "go"
    log.write(f"{name} {where}\\n"); log.flush()
turn("train_begin")
for step in range(1, steps + 1):
    if every and step % every == 0:
        turn("step")
turn("train_end")
print(json.dumps({"contract": 1, "ok": True, "name": name}), flush=True)
"""


def _side(tmp_path: Path, label: str, **env: str) -> ab.Side:
    tree = tmp_path / label
    (tree / "bench").mkdir(parents=True)
    (tree / "bench" / "__init__.py").write_text("")
    (tree / "bench" / "gate_probe.py").write_text(STAND_IN)
    log = str(tmp_path / "turns.log")
    return ab.Side(label, sys.executable, tree, {"NAME": label, "LOG": log, **env})


def _turns(tmp_path: Path) -> list[str]:
    return (tmp_path / "turns.log").read_text().splitlines()


def test_interleaved_rounds_take_turns_in_pairs_whose_first_side_alternates(tmp_path):
    # A has 10 steps (turns after 4 and 8), B has 5 (a turn after 4): B finishes first and drops out.
    sides = {"A": _side(tmp_path, "A"), "B": _side(tmp_path, "B", STEPS="5")}
    results = ab.run_rounds(sides, {"x": 1}, 2, every=4)
    assert [{k: v["name"] for k, v in r.items()} for r in results] == [{"A": "A", "B": "B"}] * 2
    # Every turn runs alone; the first of each pair of turns alternates: A B, B A, A B, …
    # and round 2 starts with B.
    assert _turns(tmp_path) == [
        "A train_begin", "B train_begin",  # pair 1: A first
        "B step", "A step",  # pair 2: B first
        "A step", "B train_end",  # pair 3: A first
        "A train_end",  # B is done
        "B train_begin", "A train_begin",
        "A step", "B step",
        "B train_end", "A step",
        "A train_end",
    ]  # fmt: skip


def test_a_probe_that_dies_names_its_side_and_both_are_stopped(tmp_path):
    sides = {"A": _side(tmp_path, "A"), "B": _side(tmp_path, "B", CRASH_AT="start")}
    with pytest.raises(ab.SideError, match="exited 3 without a response") as caught:
        ab.run_rounds(sides, {"x": 1}, 2, every=4)
    assert caught.value.side == "B"


def test_a_ref_whose_entry_point_cannot_interleave_cannot_be_judged():
    # Catches: an older REF falling back to whole processes one after the other (the retired
    # alternating driver), or its refusal read by CI as the working tree's fault.
    older = {"contract": 1, "inject_env": "MNIST_BENCH_GATE_INJECT"}
    side = ab.Side("A (REF 1234)", sys.executable, Path("."))
    with pytest.raises(regress.CannotJudge, match="cannot interleave") as refused:
        regress.require_interleave("A", side, older)
    assert refused.value.cause == "ref-entry-point" and refused.value.side == "A"
    regress.require_interleave("A", side, older | {"interleave": True})  # no error
