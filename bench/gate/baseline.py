"""The gate's stored baseline: its schema, validation, and atomic reading and writing. No TensorFlow."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench import outputs, stats
from bench.gate.stored_rule import UPDATE_HINT, GateError, check_entry

SCHEMA = "mnist-bench/gate-baseline"
SCHEMA_VERSION = 1


def check_baseline(doc: Any, where: str) -> None:
    """Raise GateError naming the first thing wrong with a baseline document."""
    if not isinstance(doc, dict):
        raise GateError(f"{where}: expected a JSON object, got {type(doc).__name__}")
    if doc.get("schema") != SCHEMA:
        raise GateError(f"{where}: 'schema' is {doc.get('schema')!r}, expected {SCHEMA!r}")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise GateError(
            f"{where}: schema_version {doc.get('schema_version')!r} is not supported "
            f"(this mnist-bench reads {SCHEMA_VERSION}); {UPDATE_HINT}"
        )
    for key in ("machine", "variants"):
        if not isinstance(doc.get(key), dict) or not doc[key]:
            raise GateError(f"{where}: '{key}' must be a non-empty object")
    for name, entry in doc["variants"].items():
        check_entry(entry, f"{where}: variant {name!r}")


def read_baseline(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load and validate a baseline file; any problem is one GateError saying what and how to fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GateError(f"baseline {path} does not exist; {UPDATE_HINT}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GateError(f"baseline {path} cannot be read ({exc}); {UPDATE_HINT}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GateError(
            f"baseline {path} is not valid JSON ({exc.msg} at line {exc.lineno}, column "
            f"{exc.colno}); {UPDATE_HINT}"
        ) from None
    check_baseline(doc, f"baseline {path}")
    return doc


def make_baseline(
    measured: Mapping[str, Any],
    machine: Mapping[str, Any],
    commit: Mapping[str, Any],
    created_utc: str,
) -> dict[str, Any]:
    """A baseline document from one gate measurement (bench.measure.stored_rounds) and who measured it."""
    variants = {}
    for name, entry in measured["variants"].items():
        check_entry(entry, f"measurement: variant {name!r}")
        ratios = entry["ratios"]
        variants[name] = {
            **entry,
            # For people reading the file; the gate recomputes both from the raw lists.
            "median_ratio": stats.median(ratios),
            "relative_spread": stats.relative_spread(ratios),
        }
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created_utc": created_utc,
        "machine": dict(machine),
        "commit": dict(commit),
        "settings": {k: measured[k] for k in ("rounds", "warmup_steps", "threads", "data")},
        "elapsed_s": measured.get("elapsed_s"),
        "variants": variants,
    }


def write_baseline(path: str | os.PathLike[str], doc: Mapping[str, Any]) -> None:
    """Validate and write atomically (a crash never leaves half a baseline)."""
    check_baseline(doc, "new baseline")
    outputs.write_atomic(path, json.dumps(doc, indent=2) + "\n")
