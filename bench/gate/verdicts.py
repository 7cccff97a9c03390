"""What both gates can answer: the verdict strings, the exit codes, and the rule joining them. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

EXIT_PASS, EXIT_REGRESSION, EXIT_UNMEASURED = 0, 1, 2

PASS, REGRESSION, FASTER, NOISY, NO_BASELINE, NOT_MEASURED, CHANGED = (
    "pass",
    "REGRESSION",
    "faster",
    "too noisy",
    "no baseline",
    "not measured",
    "setup changed",
)


class Verdicted(Protocol):
    """A row of either gate (``stored_rule.Row`` or ``ab_rule.ABRow``)."""

    @property
    def verdict(self) -> str: ...


def exit_code(rows: Sequence[Verdicted]) -> int:
    """1 if any row regressed; else 2 if any could not be judged (or there are none); else 0."""
    verdicts = {row.verdict for row in rows}
    if REGRESSION in verdicts:
        return EXIT_REGRESSION
    if verdicts - {PASS, FASTER} or not rows:
        return EXIT_UNMEASURED
    return EXIT_PASS
