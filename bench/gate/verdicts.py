"""What the gate can answer: the verdict strings, the exit codes, and the rule joining them. Pure.

Also why a gate could not judge (``CAUSES``), which ``.ci/gate`` reads from the gate record: this
module imports nothing beyond the standard library, so that script's plain ``python3`` can import it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

EXIT_PASS, EXIT_REGRESSION, EXIT_UNMEASURED = 0, 1, 2

# Records of the retired stored-baseline gate also hold "no baseline" and "setup changed".
PASS, REGRESSION, FASTER, NOISY, NOT_MEASURED = (
    "pass",
    "REGRESSION",
    "faster",
    "too noisy",
    "not measured",
)


def exit_code(verdicts: Collection[str]) -> int:
    """The rows' verdicts → 1 if any regressed; else 2 if any was not judged (or none); else 0."""
    if REGRESSION in verdicts:
        return EXIT_REGRESSION
    if set(verdicts) - {PASS, FASTER} or not verdicts:
        return EXIT_UNMEASURED
    return EXIT_PASS


# Why a gate answered "cannot judge" (exit 2): the gate record's ``cannot_judge.cause``.
NO_REF, REF_ENTRY_POINT, REF_BUILD = "no-ref", "ref-entry-point", "ref-build"
DATA, PROBE, MISSING, TOO_NOISY, HARNESS = "data", "probe", "missing", "noisy", "harness"
CAUSES = {
    NO_REF: "no REF to compare against (no git work tree, no such commit, or too little history)",
    REF_ENTRY_POINT: "REF predates the A/B gate's entry point or its interleaving, so it cannot be "
    "driven",
    REF_BUILD: "REF's own environment (from its lock or pyproject) could not be built",
    DATA: "MNIST could not be loaded or verified, here or in a side's process",
    PROBE: "a side's process failed, timed out, or answered nothing usable",
    MISSING: "a variant was not measured on both sides in every round",
    TOO_NOISY: "a row stayed too noisy after the extra rounds",
    HARNESS: "the gate itself failed on this machine (its git, its environment, or a bug)",
}
# The causes outside the change under test, for which CI passes with a warning: what lies in REF
# itself, and a machine too noisy to resolve. Every other cause fails CI (.ci/gate, docs/gate.md).
OUTSIDE_THE_CHANGE = (REF_ENTRY_POINT, REF_BUILD, TOO_NOISY)


def cause_of(cannot_judge: Mapping[str, Any]) -> str:
    """The cause of a record's ``cannot_judge``; gate records of version 1 had none, so it is
    read from their side and reason, and what cannot be read so is HARNESS (never a pass)."""
    if cannot_judge.get("cause") in CAUSES:
        return str(cannot_judge["cause"])
    reason, side = str(cannot_judge.get("reason") or ""), cannot_judge.get("side")
    if "MnistDataError" in reason:
        return DATA
    if any(s in reason for s in ("not a git work tree", "names no commit", "nor HEAD~1 exists")):
        return NO_REF
    if side == "A" and "predates the A/B gate's entry point" in reason:
        return REF_ENTRY_POINT
    if side == "A" and "its environment could not be built" in reason:
        return REF_BUILD
    if reason.startswith("too noisy") and "not measured" not in reason:
        return TOO_NOISY
    if "not measured on both sides" in reason:
        return MISSING
    return PROBE if side in ("A", "B") else HARNESS
