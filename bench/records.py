"""Raw records: append-only JSON Lines, one object per (variant, repeat) or machine probe.

Every line carries its own envelope (schema version, UTC time, machine, commit) so files can be
concatenated, sharded and merged without losing where a number came from.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
KINDS = ("variant", "probe")
STATUSES = ("ok", "skipped", "failed", "diverged", "timeout")
_ENVELOPE = ("schema_version", "kind", "run", "created_utc", "machine", "commit")
_VARIANT_KEYS = ("variant", "variant_id", "repeat", "status", "reason", "settings")
_OK_KEYS = ("timing", "accuracy", "model", "memory", "data")


class RecordError(ValueError):
    """A records file or record is unusable; the message names the file and line."""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_record(record: Any, where: str) -> None:
    """Raise RecordError unless record has every field its kind and status require."""
    if not isinstance(record, dict):
        raise RecordError(f"{where}: expected a JSON object, got {type(record).__name__}")
    version = record.get("schema_version")
    if version != SCHEMA_VERSION:
        raise RecordError(
            f"{where}: schema_version {version!r} is not supported (this mnist-bench reads "
            f"{SCHEMA_VERSION}); re-run the benchmark or use the mnist-bench that wrote it"
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


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every record of a JSON Lines file, checked; errors name the line. Blank lines are skipped."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise RecordError(f"{p}: cannot read records ({exc.strerror or exc})") from None
    records = []
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
        records.append(record)
    if not records:
        raise RecordError(f"{p}: holds no records; run `mnist-bench run` to produce some")
    return records


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
