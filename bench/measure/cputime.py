"""A block's process CPU seconds and the machine's steal seconds, read inside the job's process.

CPU seconds are ``time.process_time()`` (every thread of this process, its children excluded):
a process that trains alone on its turn keeps its threads busy, so CPU ÷ wall well below what it
shows alone means something else took the cores. Steal is what the hypervisor gave to other
guests while this machine's CPUs wanted to run: the 8th value of ``/proc/stat``'s ``cpu`` line,
summed over all CPUs, in USER_HZ ticks. Where ``/proc/stat`` is absent (not Linux) steal is None.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROC_STAT = Path("/proc/stat")
# `cpu  user nice system idle iowait irq softirq steal guest guest_nice` (proc(5)): after the
# name, steal is the 8th value; kernels before 2.6.11 have no such column.
STEAL_INDEX = 8


def steal_ticks(proc_stat: str) -> int | None:
    """Steal ticks (USER_HZ, all CPUs) from /proc/stat text's ``cpu`` line; None without one."""
    for line in proc_stat.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            return int(fields[STEAL_INDEX]) if len(fields) > STEAL_INDEX else None
    return None


def machine_steal_s(path: Path = PROC_STAT) -> float | None:
    """The machine's steal seconds since boot, all CPUs together; None where it cannot be read."""
    try:
        ticks = steal_ticks(path.read_text())
        per_s = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):  # no /proc, no sysconf, or a name it lacks
        return None
    return None if ticks is None or per_s <= 0 else ticks / per_s


@dataclass(frozen=True)
class Reading:
    """One moment: the wall clock, this process's CPU seconds, the machine's steal seconds."""

    wall_s: float
    cpu_s: float
    steal_s: float | None


def read() -> Reading:
    return Reading(time.perf_counter(), time.process_time(), machine_steal_s())


def block(start: Reading, end: Reading, steps: int) -> dict[str, Any]:
    """A block's record entry: its steps, and the wall, CPU and steal seconds between two readings."""
    steal = (
        None
        if start.steal_s is None or end.steal_s is None
        else round(end.steal_s - start.steal_s, 4)
    )
    return {
        "steps": steps,
        "wall_s": round(end.wall_s - start.wall_s, 6),
        "cpu_s": round(end.cpu_s - start.cpu_s, 6),
        "steal_s": steal,
    }
