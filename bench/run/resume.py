"""Resuming a run: which records a results file holds for it, and whether they are this run's.

What a run measures is stamped on its file so that ``--resume`` only ever continues the same run:
``plan_of`` describes the whole matrix (every variant id, sorted, and the baseline) and the run
settings; every record of the run carries its hash as ``run.fingerprint``, and the run's probe
record (the file's first) carries the description itself as ``run.plan``, so a mismatch can be
named (``records_to_resume``).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import records
from bench.plan.grouping import group_arms
from bench.plan.settings import RunSettings
from bench.plan.variant import Variant

# Settings retired since, with the one value runs that named them measured as runs do now: a plan
# stored with that value is still this run's (``paired = true``: every run pairs now).
RETIRED_SETTINGS = {"paired": True}
# What ``--retry-failed`` runs again: faults of the job's process, not results (diverged, skipped).
RETRIED = ("failed", "timeout")


class RunError(RuntimeError):
    """The run cannot start or continue; the message says why and what to do."""


def plan_of(variants: Sequence[Variant], settings: RunSettings) -> dict[str, Any]:
    """What a run measures: every variant of the whole matrix (all shards), baseline, settings."""
    return {
        "variants": sorted(v.id for v in variants),
        "baseline": variants[0].id if variants else None,
        "settings": settings.as_data(),
    }


def fingerprint(plan: dict[str, Any]) -> str:
    """A short hash of a plan_of() description."""
    return hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:16]


def _listed(ids: Sequence[str], limit: int = 3) -> str:
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


def plan_difference(stored: dict[str, Any], current: dict[str, Any]) -> str:
    """What differs between the plan in a file and this command's, in words."""
    parts = []
    old_settings, new_settings = stored.get("settings") or {}, current["settings"]
    for key in sorted(set(old_settings) | set(new_settings)):
        if old_settings.get(key) != new_settings.get(key):
            parts.append(
                f"{key} is {old_settings.get(key)!r} there, {new_settings.get(key)!r} here"
            )
    old_ids, new_ids = set(stored.get("variants") or []), set(current["variants"])
    if old_ids - new_ids:
        parts.append(f"variants only there: {_listed(sorted(old_ids - new_ids))}")
    if new_ids - old_ids:
        parts.append(f"variants only here: {_listed(sorted(new_ids - old_ids))}")
    if not parts and stored.get("baseline") != current["baseline"]:
        parts.append(f"baseline is {stored.get('baseline')} there, {current['baseline']} here")
    return "; ".join(parts) or "the plans differ"


def _has_content(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return any(chunk.strip() for chunk in iter(lambda: fh.read(65536), b""))
    except OSError as exc:
        raise RunError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def records_to_resume(
    out_path: Path, *, resume: bool, shard: str, plan: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The records a run continues from: none for a new, missing or empty file.

    Refuses (RunError) a file with records unless resuming, and when resuming, records of
    another shard or, where `plan` is given, of another matrix or settings (naming the
    difference). An incomplete last line (a writer stopped mid-line) is cut off with a warning
    before anything is appended.
    """
    if out_path.is_dir():
        raise RunError(f"{out_path} is a directory; the results file must be a file")
    if not out_path.exists() or not _has_content(out_path):
        return []
    if not resume:
        raise RunError(
            f"{out_path} already holds records; pass --resume to continue it, "
            "or --out to write elsewhere"
        )
    existing = records.read_records_or_none(out_path)
    other = {r["run"].get("shard", "1/1") for r in existing} - {shard}
    if other:
        raise RunError(
            f"{out_path} holds records of shard {sorted(other)[0]}, not {shard}; "
            "resume each shard into its own --out"
        )
    if plan is not None and existing:
        _check_plan(out_path, existing, plan)
    if records.drop_incomplete_tail(out_path):
        warnings.warn(
            f"{out_path}: cut off the incomplete last line before appending",
            records.RecordWarning,
            stacklevel=2,
        )
    return existing


def _check_plan(out_path: Path, existing: list[dict[str, Any]], plan: dict[str, Any]) -> None:
    stamps = {r["run"].get("fingerprint") for r in existing}
    if stamps == {None}:
        warnings.warn(
            f"{out_path}: its records do not say which matrix they belong to (written before "
            "runs recorded it); cannot check that this command continues the same one",
            records.RecordWarning,
            stacklevel=1,
        )
        return
    if stamps == {fingerprint(plan)}:
        return
    stored: dict[str, Any] = next(
        (r["run"]["plan"] for r in records.probe_records(existing) if r["run"].get("plan")), {}
    )
    if stored and stamps <= {fingerprint(stored), fingerprint(plan)} and _today(stored) == plan:
        return
    raise RunError(
        f"{out_path} belongs to a run of another matrix or settings ({plan_difference(stored, plan)}); "
        "resume it with the command that started it, or give a new --out"
    )


def _today(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored plan without the retired settings it holds at the value runs now measure by."""
    settings = {
        k: v
        for k, v in (stored.get("settings") or {}).items()
        if k not in RETIRED_SETTINGS or RETIRED_SETTINGS[k] != v
    }
    return {**stored, "settings": settings}


def done_jobs(
    existing: Sequence[dict[str, Any]], *, retry_failed: bool = False
) -> set[tuple[str, int]]:
    """(variant id, repeat) of every job a resumed run does not run again.

    A job is one (variant, repeat) of the file's run and shard (``records.job_key``); it is done
    once it has a record, unless `retry_failed` and its latest attempt failed or timed out.
    """
    return {
        (r["variant_id"], r["repeat"])
        for r in records.variant_records(existing)
        if not (retry_failed and r["status"] in RETRIED)
    }


def recover_groups(
    existing: Sequence[dict[str, Any]],
    shared: Sequence[Variant],
    others: Sequence[Variant],
    cap: int,
) -> list[tuple[Variant, ...]]:
    """A resumed run's groups as its first sets recorded them; the rest grouped anew.

    Each group's repeat-0 set holds the whole group, and repeat 0 runs group after group, so the
    recorded groups are 0 .. k-1. Arms in none of them (and every arm of a new run) are grouped by
    ``group_arms`` under today's cap.
    """
    by_id = {v.id: v for v in [*shared, *others]}
    recorded: dict[int, list[str]] = {}
    for rec in records.variant_records(existing, all_attempts=True):
        p = rec.get("pairing")
        if p and p["round"] == 0:  # the record's name for the set's repeat number
            recorded.setdefault(p["group"], p["arms"])
    groups = [tuple(by_id[vid] for vid in recorded[g] if vid in by_id) for g in sorted(recorded)]
    placed = {v.id for group in groups for v in group}
    rest = [v for v in others if v.id not in placed]
    if rest or not groups:
        groups += group_arms(shared, rest, cap)
    return groups
