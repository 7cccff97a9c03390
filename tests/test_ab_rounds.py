"""`bench.run.ab_rounds` with stand-in entry points (no TensorFlow): how rounds run, in which order, in turns.

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
from bench.run import ab_rounds as ab

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


def test_alternating_rounds_run_whole_processes_in_turn_order(tmp_path):
    sides = {"A": _side(tmp_path, "A"), "B": _side(tmp_path, "B")}
    seen: list[tuple[int, str]] = []
    results = ab.run_rounds(sides, {"x": 1}, 3, on_response=lambda r, s, _: seen.append((r, s)))
    assert seen == ab.round_order(3) == [(0, "A"), (0, "B"), (1, "B"), (1, "A"), (2, "A"), (2, "B")]
    assert [{k: v["name"] for k, v in r.items()} for r in results] == [{"A": "A", "B": "B"}] * 3


def test_interleaved_rounds_take_turns_in_pairs_whose_first_side_alternates(tmp_path):
    # A has 10 steps (turns after 4 and 8), B has 5 (a turn after 4): B finishes first and drops out.
    sides = {"A": _side(tmp_path, "A"), "B": _side(tmp_path, "B", STEPS="5")}
    results = ab.run_interleaved(sides, {"x": 1}, 2, every=4)
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
    with pytest.raises(ab.ProbeError, match="exited 3 without a response") as caught:
        ab.run_interleaved(sides, {"x": 1}, 2, every=4)
    assert caught.value.side == "B"


def test_rounds_interleave_unless_an_entry_point_cannot_or_asked_not_to():
    said: list[str] = []
    can = {"contract": 1, "interleave": True}
    older = {"contract": 1, "inject_env": "MNIST_BENCH_GATE_INJECT"}
    assert regress.choose_interleave({"A": older, "B": can}, False, said.append) is False
    assert said == ["rounds alternate: side A's entry point cannot interleave"]
    assert regress.choose_interleave({"A": can, "B": can}, True, said.append) is False
    assert regress.choose_interleave({"A": can, "B": can}, False, said.append) is True
    assert regress.mode_text(True).startswith("interleaved")
    assert regress.mode_text(False).startswith("alternating")
