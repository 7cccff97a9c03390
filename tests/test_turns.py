"""`bench.run.turns`, the interleaving engine, with stand-in processes (no TensorFlow).

A stand-in speaks the turn protocol: it says it is ready, then trains STEPS "steps" in blocks of
EVERY, waiting for ``go`` between blocks, and logs each turn it ran (with the block length the
driver asked for) to a shared file, so the tests see the real order of turns across processes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.run import turns

STAND_IN = """
import json, os, sys, time
sys.path.insert(0, os.environ["SRC"])
from bench.run.turns import pipe_baton
name, steps, every = os.environ["NAME"], int(os.environ["STEPS"]), int(os.environ["EVERY"])
if os.environ.get("CRASH") == "start":
    raise SystemExit(3)
wait = pipe_baton(sys.stdout)
log = open(os.environ["LOG"], "a")
asked = wait("train_begin")
for step in range(1, steps + 1):
    if os.environ.get("CRASH") == "mid" and step == every + 1:
        os._exit(4)
    if os.environ.get("HANG") and step == every + 1:
        time.sleep(60)
    if os.environ.get("GARBAGE") and step == every + 1:
        print("not a protocol line", flush=True)
        time.sleep(60)
    if step % every == 0:
        log.write(f"{name} {step} {asked}\\n"); log.flush()
        asked = wait("step")
wait("train_end")
print(json.dumps({"done": name}), flush=True)
"""

SRC = str(Path(__file__).resolve().parents[1])


def _taker(
    tmp_path: Path, name: str, steps: int = 6, every: int = 2, **env: str
) -> turns.TurnTaker:
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    environ = {"NAME": name, "STEPS": str(steps), "EVERY": str(every), "SRC": SRC}
    environ |= {"LOG": str(tmp_path / "turns.log"), "PATH": "/usr/bin:/bin", **env}
    return turns.TurnTaker(name, [sys.executable, str(script)], env=environ, limit_s=30)


def _log(tmp_path: Path) -> list[str]:
    return (tmp_path / "turns.log").read_text().split("\n")[:-1]


def test_every_round_gives_each_live_process_one_turn_in_the_order_asked(tmp_path):
    # a: 3 blocks, b: 1 block. The given order is followed each round; b drops out once done.
    takers = {"a": _taker(tmp_path, "a"), "b": _taker(tmp_path, "b", steps=2)}
    try:
        rounds = turns.take_turns(takers, lambda r, live: sorted(live, reverse=r % 2 == 1))
    finally:
        for t in takers.values():
            t.kill()
    # a: 3 blocks, its train-end turn, its last turn; b: 1 block, train end, last turn.
    assert rounds == [["a", "b"], ["b", "a"], ["a", "b"], ["a"], ["a"]]
    assert _log(tmp_path) == ["a 2 None", "b 2 None", "a 4 None", "a 6 None"]
    assert takers["a"].response == {"done": "a"} and takers["b"].response == {"done": "b"}


def test_a_driver_can_set_each_turns_block_length(tmp_path):
    takers = {"a": _taker(tmp_path, "a", steps=4)}
    try:
        turns.take_turns(takers, lambda r, live: live, block_of=lambda r, label: 0.5 * (r + 1))
    finally:
        takers["a"].kill()
    assert _log(tmp_path) == ["a 2 0.5", "a 4 1.0"]


def test_shuffled_orders_are_fresh_each_round_and_seeded():
    live = [f"arm{k}" for k in range(6)]
    order, replay = turns.shuffled(7), turns.shuffled(7)
    first = [order(r, live) for r in range(20)]
    again = [replay(r, live) for r in range(20)]
    assert first == again  # the same seed, the same run
    assert all(sorted(o) == live for o in first)
    assert len({tuple(o) for o in first}) > 10  # not one order repeated
    assert {o[0] for o in first} == set(live)  # every arm goes first sometimes


def test_alternating_order_reverses_every_other_round():
    order = turns.alternating("B")
    assert [order(r, ["A", "B"]) for r in range(3)] == [["B", "A"], ["A", "B"], ["B", "A"]]
    assert order(0, ["A"]) == ["A"]  # the first one has finished


def test_a_process_that_dies_drops_out_and_the_others_go_on(tmp_path):
    failed: list[turns.TurnError] = []
    takers = {"a": _taker(tmp_path, "a"), "b": _taker(tmp_path, "b", CRASH="mid")}
    try:
        turns.take_turns(takers, lambda r, live: sorted(live), on_failure=failed.append)
    finally:
        for t in takers.values():
            t.kill()
    assert [(e.label, e.timed_out) for e in failed] == [("b", False)]
    assert "exited 4 without a response" in str(failed[0])
    assert takers["a"].response == {"done": "a"}  # a ran all its blocks after b died
    assert _log(tmp_path).count("a 6 None") == 1


def test_without_a_failure_handler_a_dead_process_raises_with_its_label(tmp_path):
    takers = {"a": _taker(tmp_path, "a"), "b": _taker(tmp_path, "b", CRASH="start")}
    try:
        with pytest.raises(turns.TurnError, match="exited 3") as caught:
            turns.take_turns(takers, lambda r, live: sorted(live))
    finally:
        for t in takers.values():
            t.kill()
    assert caught.value.label == "b"


def test_a_process_that_breaks_the_protocol_is_killed_and_says_it_was_us(tmp_path):
    # Catches: our own kill reported like the kernel's (a SIGKILL "often the OOM killer").
    rogue = _taker(tmp_path, "r", GARBAGE="1")
    failed: list[turns.TurnError] = []
    try:
        turns.take_turns({"r": rogue}, lambda r, live: live, on_failure=failed.append)
    finally:
        rogue.kill()
    assert failed and failed[0].killed_by_driver and not failed[0].timed_out
    assert "killed by the driver" in str(failed[0]) and "not a protocol line" in str(failed[0])


def test_a_process_past_its_limit_is_killed_as_timed_out(tmp_path):
    hung = _taker(tmp_path, "h", HANG="1")
    hung.limit_s = 3
    failed: list[turns.TurnError] = []
    try:
        turns.take_turns({"h": hung}, lambda r, live: live, on_failure=failed.append)
    finally:
        hung.kill()
    assert failed and failed[0].timed_out and failed[0].label == "h"
    assert hung.returncode is not None  # killed, not left running
