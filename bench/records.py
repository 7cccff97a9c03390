"""Raw records: append-only JSON Lines, one object per (variant, repeat) or machine probe.

This module owns the record: it builds the envelope, checks, reads (upgrading old schema versions
on load, as asv migrates its results), appends and merges. Every line carries its own envelope
(schema version, UTC time, machine, commit), so files can be concatenated, sharded and merged
without losing where a number came from.

Schema versions:
- 1: the child also stored statistics it had derived (step median, wall ms/step, samples/s, time to
  target, achieved FLOP/s).
- 2: the child stores raw measurements only (per-step times, per-epoch seconds, history, evaluate
  results, model facts); every statistic is derived from them by ``bench.stats.repeat_stats``. A
  ``summary`` section repeats those statistics for people reading the JSONL; no reader uses it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
KINDS = ("variant", "probe")
STATUSES = ("ok", "skipped", "failed", "diverged", "timeout")
_ENVELOPE = ("schema_version", "kind", "run", "created_utc", "machine", "commit")
_VARIANT_KEYS = ("variant", "variant_id", "repeat", "status", "reason", "settings")
_OK_KEYS = ("timing", "accuracy", "model", "memory", "data")
# Statistics version 1 stored beside the raw data; version 2 derives them on read.
_V1_DERIVED = {
    "timing": (
        "first_step_ms",
        "step_ms",
        "wall_step_ms",
        "samples_per_s",
        "wall_samples_per_s",
        "steps_timed",
        "warmup_steps_excluded",
    ),
    "accuracy": ("target_accuracy", "time_to_target_s"),
    "model": ("achieved_flops_per_s",),
}
REASON_LINE_CHARS = 140  # a reason's first line as tables and findings show it
REASON_CHARS = 2000  # as much of a failure's output as a record keeps


class RecordError(ValueError):
    """A records file or record is unusable; the message names the file and line."""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def first_line(text: object, limit: int = REASON_LINE_CHARS) -> str:
    """First line of a reason, shortened at a word with an ellipsis rather than cut mid-word."""
    line = str(text).splitlines()[0] if str(text) else ""
    return line if len(line) <= limit else line[: limit - 1].rsplit(" ", 1)[0] + " …"


def envelope(
    kind: str, run: Mapping[str, Any], machine: Mapping[str, Any], commit: Mapping[str, Any]
) -> dict[str, Any]:
    """The fields every record carries: schema version, kind, run, UTC time, machine, commit."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "run": dict(run),
        "created_utc": utc_now(),
        "machine": dict(machine),
        "commit": dict(commit),
    }


def check_record(record: Any, where: str) -> None:
    """Raise RecordError unless record has every field its kind and status require."""
    if not isinstance(record, dict):
        raise RecordError(f"{where}: expected a JSON object, got {type(record).__name__}")
    version = record.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise RecordError(
            f"{where}: schema_version {version!r} is not supported (this mnist-bench reads "
            f"{', '.join(map(str, READABLE_VERSIONS))}); re-run the benchmark or use the "
            "mnist-bench that wrote it"
        )
    missing = [k for k in _ENVELOPE if k not in record]
    if record.get("kind") not in KINDS:
        raise RecordError(f"{where}: kind {record.get('kind')!r} is not one of {KINDS}")
    if record["kind"] == "variant":
        missing += [k for k in _VARIANT_KEYS if k not in record]
        status = record.get("status")
        if status not in STATUSES:
            raise RecordError(f"{where}: status {status!r} is not one of {STATUSES}")
        if status == "ok":
            missing += [k for k in _OK_KEYS if k not in record]
        elif not record.get("reason"):
            missing.append("reason")
    elif "probe" not in record:
        missing.append("probe")
    if missing:
        raise RecordError(f"{where}: missing field(s) {missing}")


def upgrade(record: dict[str, Any]) -> dict[str, Any]:
    """A checked record in the current schema: version 1 loses the statistics it stored."""
    if record["schema_version"] == SCHEMA_VERSION:
        return record
    out = {**record, "schema_version": SCHEMA_VERSION}
    if record["kind"] == "variant" and record["status"] == "ok":
        for section, keys in _V1_DERIVED.items():
            out[section] = {k: v for k, v in record[section].items() if k not in keys}
    return out


def read_numbered(path: str | os.PathLike[str]) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) for every record of a JSON Lines file, checked and upgraded."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise RecordError(f"{p}: cannot read records ({exc.strerror or exc})") from None
    numbered = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{p}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordError(
                f"{where}: not valid JSON ({exc.msg}); fix or delete that line"
            ) from None
        check_record(record, where)
        numbered.append((number, upgrade(record)))
    if not numbered:
        raise RecordError(f"{p}: holds no records; run `mnist-bench run` to produce some")
    return numbered


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every record of a JSON Lines file, checked; errors name the line. Blank lines are skipped."""
    return [record for _, record in read_numbered(path)]


def append_record(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append one record and push it to disk, so a crash later never loses it."""
    check_record(record, "record to write")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("a") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def write_records(path: str | os.PathLike[str], records: Iterable[dict[str, Any]]) -> None:
    """Write a whole records file atomically (used by merge)."""
    p = Path(path)
    tmp = p.with_suffix(p.suffix + ".tmp")
    with tmp.open("w") as fh:
        for record in records:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
    os.replace(tmp, p)


def variant_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["kind"] == "variant"]


def probe_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["kind"] == "probe"]


def merge_records(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Records of every file, in file order; refuses duplicate jobs.

    Older schema versions are upgraded on read, so files of different versions merge into the
    current one. Probe records are all kept (one per shard's machine). A (variant_id, repeat) seen
    twice means two shards ran the same job (overlapping specs, or a file given twice) and is
    refused rather than resolved, since either copy could be the one the user meant.
    """
    if not paths:
        raise RecordError("merge: give at least one records file")
    merged: list[dict[str, Any]] = []
    seen: dict[tuple[str, int], str] = {}
    for p in map(Path, paths):
        for line, record in read_numbered(p):
            if record["kind"] == "variant":
                key = (record["variant_id"], record["repeat"])
                if key in seen:
                    raise RecordError(
                        f"merge: {key[0]} repeat {key[1]} is in both {seen[key]} and {p}:{line}; "
                        "each job must come from one shard (were the same shards, or the same "
                        "file, given twice?)"
                    )
                seen[key] = f"{p}:{line}"
            merged.append(record)
    return merged


def missing_shards(merged: Sequence[dict[str, Any]]) -> list[str]:
    """Shards of an I/N split that none of the merged records came from, e.g. ['3/4']."""
    specs = {r["run"].get("shard") for r in merged if r["run"].get("shard")}
    counts = {int(s.split("/")[1]) for s in specs}
    return sorted(
        (f"{i}/{n}" for n in counts for i in range(1, n + 1) if f"{i}/{n}" not in specs),
        key=lambda s: tuple(map(int, s.split("/"))),
    )


def merge_files(paths: Sequence[Path], out: Path) -> list[dict[str, Any]]:
    """Merge shard records into `out`, which must not exist yet (nothing recorded is overwritten)."""
    if out.exists():
        raise RecordError(f"merge: {out} already exists; choose another -o or move it away first")
    merged = merge_records(paths)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_records(out, merged)
    return merged
