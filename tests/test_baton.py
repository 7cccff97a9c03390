"""The Baton's own accounting of an interleaved fit, on a fake clock (no training)."""

from __future__ import annotations

import pytest

from bench.measure import baton as baton_module
from bench.measure.baton import Baton


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = _Clock()
    monkeypatch.setattr(baton_module.time, "perf_counter", fake.perf_counter)
    return fake


def test_fit_time_is_the_turns_from_train_begin_to_train_end_waits_and_fit_edges_left_out(clock):
    # Bug caught (issue 29): fit_s as the whole fit call less its waits kept what fit did outside
    # training's turns: its setup before the train-begin wait (side by side with the other arms'
    # start-ups) and its end after the train-end wait (4 of 36 arms of reports/reference had
    # fit_s 17-24 s above their training plus validation). Or: mid-training waits counted.
    others = {"train_begin": 5.0, "step": 2.0, "train_end": 7.0}  # the other arms' turns

    def wait(where: str) -> None:
        clock.now += others[where]

    b = Baton(wait, block_s=0.1)
    clock.now = 100.0 + 3.0  # fit's setup before its first wait: 3 s
    b.on_train_begin()
    for _ in range(3):  # three steps of 0.06 s: the second ends a block and waits 2 s
        clock.now += 0.06
        b.on_train_batch_end(0)
    clock.now += 0.4  # validation and epoch end, in its own turn
    b.on_train_end()
    clock.now += 20.0  # Keras's end of fit, after the last wait
    assert b.pauses == [[2, 2.0]]
    assert b.trained_s == pytest.approx(0.18 + 0.4)
    assert b.waited_s == pytest.approx(5.0 + 2.0 + 7.0)
