"""The interleaving engine: processes that take turns, one training at a time. No TensorFlow.

Both the matrix (``bench.run.pairs``: every arm of a paired set) and the A/B gate (``bench.run.gate_rounds``:
side A and side B of a round) run through it. A process that takes turns speaks a line protocol on
its stdin and stdout:

- it writes ``{"wait": "<where>"}`` (one JSON line) whenever it hands the machine back: once it is
  ready to train (start-up done: imports, data, model), at the end of each block of training steps,
  and when training has ended; then it blocks until it reads the line ``go`` (or ``go SECONDS``: a
  driver may set the next block's length; a process whose blocks count steps ignores it);
- its last line is any JSON object without ``"wait"``: its response (it is then done).

``take_turns`` first waits until every process is ready, so no measured block overlaps another
process's start-up, then gives turns round after round: each round, every live process gets one
turn, in the order ``order(round, live labels)`` says, and only one process runs at a time. A
process that finishes drops out of the rounds.

A process side uses ``pipe_baton`` for its waits and ``stdout_to_stderr`` so that nothing a library
prints can be mistaken for a protocol line.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, Any

GO = "go"
REASON_TAIL_CHARS = 2000  # as much of a dead process's stderr as an error keeps


class TurnError(RuntimeError):
    """A process died, hung or wrote something that is not a protocol line."""

    def __init__(
        self,
        label: str,
        message: str,
        *,
        timed_out: bool = False,
        output: str = "",
        killed_by_driver: bool = False,
    ) -> None:
        super().__init__(message)
        self.label = label
        self.timed_out = timed_out
        self.killed_by_driver = killed_by_driver  # a kill of ours, not the kernel's
        self.output = output  # the end of what the process wrote, for whoever explains its end


class TurnTaker:
    """One process driven turn by turn: stdin and stdout are pipes, stderr goes to a file.

    Stderr goes to a file, so a chatty process cannot fill a pipe nobody reads while it waits.
    ``ready_s`` is its start-up (start to first line, side by side with the others'), ``busy_s``
    the time of its turns since; a read may wait what is left of ``limit_s`` of both together.
    """

    def __init__(
        self,
        label: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        limit_s: float | None = None,
    ) -> None:
        self.label = label
        self.limit_s = limit_s
        self.busy_s = 0.0
        self.ready_s: float | None = None  # from start to its first line: start-up, shared
        self.started = time.perf_counter()
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed by kill)
        self.proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        self.response: dict[str, Any] | None = None

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # it died; the next read says why

    def next_message(self, timeout_s: float | None = None) -> dict[str, Any]:
        """The next line the process writes: a ``{"wait": …}``, or its response (then it is done).

        Without `timeout_s`, what is left of ``limit_s`` (none: wait forever). TurnError when the
        process dies, hangs past the limit or writes anything but a JSON object.
        """
        if timeout_s is None and self.limit_s is not None:
            timeout_s = max(0.0, self.limit_s - self.busy_s - (self.ready_s or 0.0))
        assert self.proc.stdout is not None
        began = time.perf_counter()
        readable, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        line = self.proc.stdout.readline() if readable else None
        self.busy_s += time.perf_counter() - began
        if self.ready_s is None:  # start-up ran side by side with the others': not its own turn
            self.ready_s = time.perf_counter() - self.started
            self.busy_s = 0.0
        try:
            message = json.loads(line) if line else None
        except json.JSONDecodeError:
            message = None
        if not isinstance(message, dict):
            raise self._failure(line)
        if "wait" not in message:
            self.response = message
        return message

    def _failure(self, line: str | None) -> TurnError:
        hung = line is None
        # At EOF ('') the process is ending by itself: wait for it. Alive after a line that is no
        # protocol line, or silent past its limit, it is ours to kill.
        killed_here = line != "" and self.proc.poll() is None
        if killed_here:
            self.proc.kill()
        code = self.proc.wait()
        self.stderr.seek(0)
        tail = (self.stderr.read() or line or "").strip()[-REASON_TAIL_CHARS:]
        self.kill()
        if hung:
            limit = f" within {self.limit_s:g} s" if self.limit_s is not None else ""
            return TurnError(
                self.label, f"gave no answer{limit}: {tail}", timed_out=True, output=tail
            )
        if killed_here:  # it wrote something that is no protocol line: our kill, not the kernel's
            return TurnError(
                self.label,
                f"killed by the driver: it wrote a line that is not the protocol's: {line!r}",
                output=tail,
                killed_by_driver=True,
            )
        return TurnError(self.label, f"exited {code} without a response: {tail}", output=tail)

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def kill(self) -> None:
        if self.stderr.closed:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()
        self.stderr.close()


Order = Callable[[int, list[str]], list[str]]


def alternating(first: str) -> Order:
    """Two or more processes: the given first, then the rest; reversed every other round."""

    def order(round_index: int, live: list[str]) -> list[str]:
        ranked = [first, *[k for k in live if k != first]] if first in live else list(live)
        return ranked if round_index % 2 == 0 else ranked[::-1]

    return order


def shuffled(seed: int) -> Order:
    """A freshly shuffled order every round, from a seeded generator (the same seed, the same run)."""
    rng = random.Random(seed)

    def order(round_index: int, live: list[str]) -> list[str]:
        out = list(live)
        rng.shuffle(out)
        return out

    return order


def take_turns(
    takers: Mapping[str, TurnTaker],
    order: Order,
    *,
    on_failure: Callable[[TurnError], None] | None = None,
    block_of: Callable[[int, str], float | None] | None = None,
    on_end: Callable[[str, list[list[str]]], None] | None = None,
) -> list[list[str]]:
    """Run every process to its end, one at a time; returns each round's order of turns.

    First every process must say it is ready (its first wait), so start-ups overlap each other but
    no turn. Then each round gives every live process one turn (``go``, and wait for its next line).
    A process that fails raises TurnError, unless `on_failure` is given: then it is told, the
    process drops out and the others go on. `block_of(round, label)` may set a turn's block length
    (None: the process's own). `on_end(label, rounds so far)` hears of each process as it ends
    (its response read, or its failure told), so its result can be kept before the others end.
    """
    waiting: dict[str, dict[str, Any]] = {}
    rounds: list[list[str]] = []

    def ended(label: str) -> None:
        if on_end is not None and "wait" not in waiting[label]:
            on_end(label, rounds)

    for taker in takers.values():  # all ready to train: start-up is over for everyone
        _step(taker, waiting, on_failure)
        ended(taker.label)
    while live := [k for k in takers if "wait" in waiting.get(k, {})]:
        turns = order(len(rounds), live)
        rounds.append(turns)
        for label in turns:
            taker = takers[label]
            block = block_of(len(rounds) - 1, label) if block_of else None
            taker.send(GO if block is None else f"{GO} {block!r}")
            _step(taker, waiting, on_failure)
            ended(label)
    return rounds


def _step(
    taker: TurnTaker,
    waiting: dict[str, dict[str, Any]],
    on_failure: Callable[[TurnError], None] | None,
) -> None:
    """Read the taker's next line into `waiting` ({} once it failed and `on_failure` was told)."""
    try:
        waiting[taker.label] = taker.next_message()
    except TurnError as exc:
        if on_failure is None:
            raise
        waiting[taker.label] = {}
        on_failure(exc)


# --- The process side -------------------------------------------------------------------------


def pipe_baton(out: IO[str], inp: IO[str] = sys.stdin) -> Callable[[str], float | None]:
    """``wait(where)``: write ``{"wait": where}`` on `out`, block until `inp` says ``go``.

    Returns the next block's seconds when the driver said ``go SECONDS``, else None.
    """

    def wait(where: str) -> float | None:
        out.write(json.dumps({"wait": where}) + "\n")
        out.flush()
        word, _, block = inp.readline().strip().partition(" ")
        if word != GO:
            raise RuntimeError(f"waiting at {where}: the driver closed stdin")
        return float(block) if block else None

    return wait


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[IO[str]]:
    """Send everything written to fd 1 (Python or C) to stderr; yield a stream on the real stdout."""
    sys.stdout.flush()
    real = os.dup(1)
    os.dup2(2, 1)
    out = os.fdopen(real, "w", encoding="utf-8")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield out
    finally:
        sys.stdout.flush()
        out.flush()
        os.dup2(real, 1)
        out.close()
