"""Raw records: append-only JSON Lines, one object per (variant, repeat) or machine probe.

This module owns the record: it builds the envelope, checks, reads (upgrading every older schema
version on load, in ``upgrade``; docs/records.md, "Versions"), appends and merges. Every line carries
its own envelope (schema version, UTC time, machine, commit), so files can be concatenated, sharded
and merged without losing where a number came from.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import outputs
from bench.plan.settings import DEFAULT_TARGET_HALFWIDTH
from bench.plan.shard import ShardError, parse_shard
from bench.plan.variant import Variant, VariantError

SCHEMA_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
ROLES = ("baseline", "control", "arm")
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


class RecordWarning(UserWarning):
    """Something in a records file was skipped; the message names the file and line."""


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
    """Raise RecordError unless record has every field its kind and status require, of the types
    the readers (bench.stats, bench.report) use; the message names the first field that is wrong."""
    if not isinstance(record, dict):
        raise RecordError(f"{where}: expected a JSON object, got {type(record).__name__}")
    version = record.get("schema_version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
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
    _check_types(record, where)


# Types of the fields readers use. A spec is a predicate with a description for the message.
_Spec = tuple[Callable[[Any], bool], str]


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _list_of(pred: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and all(pred(x) for x in v)


def _optional(pred: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or pred(v)


_NUMBER: _Spec = (_is_number, "a finite number")
_OPT_NUMBER: _Spec = (_optional(_is_number), "a finite number or null")
_COUNT: _Spec = (_is_count, "an integer >= 0")
_POSITIVE: _Spec = (lambda v: _is_count(v) and v > 0, "an integer >= 1")
_STR: _Spec = (lambda v: isinstance(v, str), "a string")
_OBJECT: _Spec = (lambda v: isinstance(v, dict), "an object")
_NUMBERS: _Spec = (lambda v: _list_of(_is_number)(v) and bool(v), "a non-empty list of numbers")
_OPT_NUMBERS: _Spec = (
    lambda v: _list_of(_optional(_is_number))(v) and bool(v),
    "a non-empty list of numbers or nulls",
)


def _is_shard(v: Any) -> bool:
    try:
        return isinstance(v, str) and "/" in v and bool(parse_shard(v))
    except ShardError:
        return False


_ENVELOPE_TYPES: dict[str, _Spec] = {
    "run": _OBJECT,
    "created_utc": _STR,
    "machine": _OBJECT,
    "commit": _OBJECT,
}
_SECTION_TYPES: dict[str, dict[str, _Spec]] = {
    "run": {
        "baseline": (_optional(lambda v: isinstance(v, str)), "a string or null"),
        "shard": (_is_shard, "'I/N' with 1 <= I <= N"),
        "fingerprint": _STR,
        "plan": _OBJECT,
    },
    "machine": {
        "versions": (
            lambda v: (
                isinstance(v, dict) and all(x is None or isinstance(x, str) for x in v.values())
            ),
            "an object of {package: version string or null}",
        ),
        "memory_bytes": _OPT_NUMBER,
        "cpu_cores": _OPT_NUMBER,
    },
    "settings": {
        "warmup_steps": _COUNT,
        "target_accuracy": _NUMBER,
        "targets": (
            lambda v: _list_of(lambda x: _is_number(x) and 0 < x < 1)(v),
            "a list of validation accuracies in (0, 1)",
        ),
    },
    "timing": {
        "steps_per_epoch": _POSITIVE,
        "step_ms_raw": (
            lambda v: _list_of(_list_of(lambda s: _is_number(s) and s > 0))(v) and any(v),
            "a list (per epoch) of lists of step times > 0, with at least one step",
        ),
        "train_s_per_epoch": _NUMBERS,
        "val_s_per_epoch": _NUMBERS,
        "final_eval_s": _OPT_NUMBER,
        "pauses": (
            _list_of(
                lambda p: (
                    isinstance(p, list) and len(p) == 2 and _is_count(p[0]) and _is_number(p[1])
                )
            ),
            "a list of [steps so far, seconds] pairs",
        ),
        "blocks": (
            _optional(
                _list_of(
                    lambda b: (
                        isinstance(b, dict)
                        and _is_count(b.get("steps"))
                        and _is_number(b.get("wall_s"))
                        and _optional(_is_number)(b.get("cpu_s"))
                        and _optional(_is_number)(b.get("steal_s"))
                    )
                )
            ),
            "null or a list of {steps, wall_s, cpu_s, steal_s} objects",
        ),
    },
    "pairing": {
        "set": _STR,
        "group": _COUNT,
        "round": _COUNT,
        "extra": (lambda v: isinstance(v, bool), "true or false"),
        "role": (lambda v: v in ROLES, f"one of {list(ROLES)}"),
        "arms": (_list_of(lambda v: isinstance(v, str)), "a list of variant ids"),
        "block_s": _NUMBER,
        "rounds": _COUNT,
        "turns": (_list_of(_is_count), "a list of integers >= 0"),
        "set_s": _NUMBER,
    },
    "accuracy": {
        "test_accuracy": _NUMBER,
        "train_images": _COUNT,
        "loss": _NUMBERS,
        "accuracy": _NUMBERS,
        "val_loss": _OPT_NUMBERS,
        "val_accuracy": _OPT_NUMBERS,
    },
    "model": {
        "params": _NUMBER,
        "param_bytes": _NUMBER,
        "optimizer_bytes": _OPT_NUMBER,
        "activation_bytes_per_batch_est": _OPT_NUMBER,
        "flops_per_step": _NUMBER,
        "param_dtypes": (_list_of(lambda v: isinstance(v, str)), "a list of strings"),
        "layers": (
            _list_of(
                lambda x: (
                    isinstance(x, dict)
                    and {"layer", "type", "output_shape"} <= set(x)
                    and _is_number(x.get("params"))
                )
            ),
            "a list of {layer, type, output_shape, params} objects",
        ),
    },
    "memory": {
        "peak_rss_bytes": _OPT_NUMBER,
        "peak_rss_source": _STR,
        "gpu_peak_bytes": _OPT_NUMBER,
    },
    "data": {"source": _STR, "location": _STR},
    "probe": {
        "gpus": (_list_of(lambda v: isinstance(v, str)), "a list of strings"),
        "peak_flops_per_s": (
            lambda v: (
                isinstance(v, dict)
                and all(
                    isinstance(d, dict) and all(_optional(_is_number)(x) for x in d.values())
                    for d in v.values()
                )
            ),
            "an object of {device: {dtype: FLOP/s or null}}",
        ),
        "matmul_n": _POSITIVE,
        # Readers key trials by (device, dtype, n), so each part must be hashable and typed.
        "trials": (
            _list_of(
                lambda t: (
                    isinstance(t, dict)
                    and isinstance(t.get("device"), str)
                    and isinstance(t.get("dtype"), str)
                    and _POSITIVE[0](t.get("n"))
                    and _optional(_is_number)(t.get("flops_per_s"))
                )
            ),
            "a list of {device, dtype, n, flops_per_s} objects",
        ),
    },
}
# Fields a section must hold (the rest of _SECTION_TYPES is checked only where present).
_REQUIRED = {
    "run": ("id", "profile"),
    "machine": ("cpu_model", "cpu_cores", "system", "machine", "python", "versions"),
    "commit": ("id",),
    "settings": ("warmup_steps", "target_accuracy"),
    "timing": (
        "steps_per_epoch",
        "step_ms_raw",
        "train_s_per_epoch",
        "val_s_per_epoch",
        "final_eval_s",
    ),
    "accuracy": ("test_accuracy", "train_images", "loss", "accuracy", "val_loss", "val_accuracy"),
    "model": (
        "params",
        "param_bytes",
        "optimizer_bytes",
        "activation_bytes_per_batch_est",
        "flops_per_step",
        "param_dtypes",
        "layers",
    ),
    "memory": ("peak_rss_bytes", "gpu_peak_bytes"),
    "data": ("source", "location", "sha256_verified"),
    "probe": ("gpus", "peak_flops_per_s", "matmul_n"),
    "pairing": ("set", "group", "round", "role", "arms", "set_s"),
}
# Variant fields every record states (the others default; schema 1 had no strategy or replicas).
_VARIANT_FIELDS = ("batch_size", "validation", "precision", "device", "epochs")
_PER_EPOCH = (
    ("timing", "train_s_per_epoch"),
    ("timing", "val_s_per_epoch"),
    ("accuracy", "loss"),
    ("accuracy", "accuracy"),
    ("accuracy", "val_loss"),
    ("accuracy", "val_accuracy"),
)


def _check_section(record: dict[str, Any], name: str, where: str) -> None:
    section = record[name]
    if not isinstance(section, dict):
        raise RecordError(f"{where}: '{name}' must be an object, got {_shown(section)}")
    absent = [k for k in _REQUIRED.get(name, ()) if k not in section]
    if absent:
        raise RecordError(f"{where}: missing field(s) {[f'{name}.{k}' for k in absent]}")
    for key, (pred, description) in _SECTION_TYPES.get(name, {}).items():
        if key in section and not pred(section[key]):
            raise RecordError(
                f"{where}: '{name}.{key}' must be {description}, got {_shown(section[key])}"
            )


def _check_probe(record: dict[str, Any], where: str) -> None:
    """A measured probe holds its fields; one that failed or hung holds its status and reason."""
    probe = record["probe"]
    if not isinstance(probe, dict) or probe.get("status", "ok") == "ok":
        _check_section(record, "probe", where)
        return
    if probe["status"] not in PROBE_FAILURES or not isinstance(probe.get("reason"), str):
        raise RecordError(
            f"{where}: a probe that did not measure needs 'probe.status' {PROBE_FAILURES} and "
            f"'probe.reason' (a string), got {_shown(probe)}"
        )


def _shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _check_types(record: dict[str, Any], where: str) -> None:
    """The sections readers use hold values of the types they expect (not only their names)."""
    for key, (pred, description) in _ENVELOPE_TYPES.items():
        if not pred(record[key]):
            raise RecordError(f"{where}: '{key}' must be {description}, got {_shown(record[key])}")
    for name in ("run", "machine", "commit"):
        _check_section(record, name, where)
    if record["kind"] == "probe":
        _check_probe(record, where)
        return
    if not isinstance(record["variant_id"], str):
        raise RecordError(f"{where}: 'variant_id' must be a string")
    if not _is_count(record["repeat"]):
        raise RecordError(
            f"{where}: 'repeat' must be an integer >= 0, got {_shown(record['repeat'])}"
        )
    if record["reason"] is not None and not isinstance(record["reason"], str):
        raise RecordError(f"{where}: 'reason' must be a string or null")
    if not isinstance(record["variant"], dict):
        raise RecordError(f"{where}: 'variant' must be an object, got {_shown(record['variant'])}")
    variant = record["variant"]
    absent = [k for k in _VARIANT_FIELDS if k not in variant]
    if variant.get("strategy", "default") != "default" and "replicas" not in variant:
        absent.append("replicas")
    if absent:
        raise RecordError(f"{where}: missing field(s) {[f'variant.{k}' for k in absent]}")
    try:
        Variant.from_dict(variant)
    except (VariantError, TypeError) as exc:
        raise RecordError(f"{where}: 'variant' is not a valid variant ({exc})") from None
    _check_section(record, "settings", where)
    if "pairing" in record:
        _check_section(record, "pairing", where)
    if record.get("data"):
        _check_section(record, "data", where)
    if record["status"] != "ok":
        return
    for name in ("timing", "accuracy", "model", "memory"):
        _check_section(record, name, where)
    lengths = {f"{s}.{k}": len(record[s][k]) for s, k in _PER_EPOCH}
    if len(set(lengths.values())) != 1:
        raise RecordError(f"{where}: the per-epoch lists differ in length ({lengths})")


# What a TensorFlow step ran as, for records from before the 'backend' section (which were all
# TensorFlow's and did not record what jit_compile resolved to).
LEGACY_EXECUTION = {False: "tf.function graph, no XLA", True: "tf.function graph, XLA requested"}


def upgrade(record: dict[str, Any]) -> dict[str, Any]:
    """A checked record in the current shape, the record given left unchanged: each step fills in
    or drops what an older writer left out or stored (see the module's docstring)."""
    out = {**record, "schema_version": SCHEMA_VERSION}
    if record["kind"] == "probe":
        probe = record["probe"]
        if "trials" not in probe and probe.get("status", "ok") == "ok":
            # Before trials a probe kept its best per (device, dtype) at one size: a trial each.
            out["probe"] = probe | {
                "trials": [
                    {"device": device, "dtype": dtype, "n": probe["matmul_n"], "flops_per_s": v}
                    for device, by_dtype in probe["peak_flops_per_s"].items()
                    for dtype, v in by_dtype.items()
                ]
            }
        return out
    out["variant"] = Variant.from_dict(record["variant"]).to_dict()
    out["settings"] = {"target_halfwidth": DEFAULT_TARGET_HALFWIDTH, **record["settings"]}
    if record["status"] != "ok":
        return out
    if record["schema_version"] == 1:  # statistics stored beside the raw data: derived on read
        for section, keys in _V1_DERIVED.items():
            out[section] = {k: v for k, v in record[section].items() if k not in keys}
    if "pairing" in record:
        out["timing"] = {"blocks": None, **out["timing"]}
    if not record["memory"].get("peak_rss_source"):
        # ru_maxrss, which on Linux can hold the runner's RSS (bench.measure.memory).
        out["memory"] = record["memory"] | {"peak_rss_bytes": None}
    if not record.get("backend"):  # TensorFlow's, jit_compile not resolved
        jit = out["variant"]["jit_compile"]
        out["backend"] = {
            "name": out["variant"]["backend"],
            "version": record["machine"]["versions"].get("tensorflow"),
            "jit_compile": {"requested": jit, "resolved": None},
            "execution": LEGACY_EXECUTION[jit is True],
        }
    return out


def _lines(path: Path) -> tuple[list[str], bool]:
    """The file's lines, and whether its last line is incomplete (no newline at the end)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RecordError(f"{path}: cannot read records ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RecordError(f"{path}:{line}: not UTF-8 text; is this a records file?") from None
    return text.split("\n"), not text.endswith("\n")


def read_numbered(
    path: str | os.PathLike[str], *, allow_empty: bool = False
) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) for every record of a JSON Lines file, checked and upgraded.

    A last line that starts a JSON object but is not valid JSON and has no newline after it is
    what a writer killed mid-line leaves: it is skipped with a RecordWarning naming the file and
    line. Invalid JSON anywhere else is an error. Blank lines are skipped. Without `allow_empty`, a file with no
    complete record is an error.
    """
    p = Path(path)
    lines, incomplete_tail = _lines(p)
    numbered = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{p}:{number}"
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            if incomplete_tail and number == len(lines) and line.lstrip().startswith("{"):
                warnings.warn(
                    f"{where}: skipped an incomplete last line (no newline at its end, as a "
                    "writer stopped mid-line leaves)",
                    RecordWarning,
                    stacklevel=2,
                )
                continue
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise RecordError(f"{where}: not valid JSON ({msg}); fix or delete that line") from None
        check_record(record, where)
        numbered.append((number, upgrade(record)))
    if not numbered and not allow_empty:
        raise RecordError(f"{p}: holds no records; run `mnist-bench run` to produce some")
    return numbered


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every record of a JSON Lines file, checked; errors name the line. Blank lines are skipped."""
    return [record for _, record in read_numbered(path)]


def read_records_or_none(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Like read_records, but a file without a complete record gives [] instead of an error."""
    return [record for _, record in read_numbered(path, allow_empty=True)]


def drop_incomplete_tail(path: str | os.PathLike[str]) -> bool:
    """Cut an incomplete last line (see read_numbered) off the file, so appending can go on.

    Only a resumed run does this, to its own file: the cut bytes are no record (the job they
    belonged to is not counted as done and runs again). Returns whether anything was cut.
    """
    p = Path(path)
    raw = p.read_bytes()
    if not raw or raw.endswith(b"\n"):
        return False
    start = raw.rfind(b"\n") + 1
    tail = raw[start:]
    if not tail.lstrip().startswith(b"{"):
        return False  # not a record's beginning: read_numbered reports it as an error
    try:
        json.loads(tail)
        return False  # a complete record that only lacks its newline: append_record adds it
    except (ValueError, RecursionError):
        pass
    os.truncate(p, start)
    return True


def append_record(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append one record and push it to disk, so a crash later never loses it.

    Never onto the end of another line: a file whose last line lacks its newline gets one first.
    """
    append_records(path, [record])


def append_records(path: str | os.PathLike[str], batch: Sequence[dict[str, Any]]) -> None:
    """Append records with one write and one fsync (a paired set's records go in together)."""
    for record in batch:
        check_record(record, "record to write")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    line = "".join(json.dumps(record, sort_keys=True) + "\n" for record in batch).encode("utf-8")
    with p.open("a+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size:
            fh.seek(size - 1)
            if fh.read(1) != b"\n":
                line = b"\n" + line
        fh.write(line)  # append mode: always at the end
        fh.flush()
        os.fsync(fh.fileno())


def write_records(path: str | os.PathLike[str], records: Iterable[dict[str, Any]]) -> None:
    """Write a whole records file atomically (used by merge)."""

    def write(fh: Any) -> None:
        for record in records:
            fh.write((json.dumps(record, sort_keys=True) + "\n").encode("utf-8"))

    outputs.write_atomic(path, write)


def job_key(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """Which job a variant record is an attempt of: (run id, shard, variant id, repeat).

    A run's job is one (variant, repeat) of its shard; ``run --resume --retry-failed`` appends a
    new attempt of a failed or timed-out one after the old, so a file can hold several.
    """
    run = record.get("run") or {}
    return (run.get("id"), run.get("shard", "1/1"), record.get("variant_id"), record.get("repeat"))


def latest_attempts(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of each job's records (``job_key``), the last in the file: its latest attempt.

    Every other record stays as it was; the kept ones keep their order (each where its job's
    latest attempt was written).
    """
    records = list(records)
    last = {job_key(r): i for i, r in enumerate(records) if r["kind"] == "variant"}
    keep = set(last.values())
    return [r for i, r in enumerate(records) if r["kind"] != "variant" or i in keep]


def variant_records(
    records: Iterable[dict[str, Any]], *, all_attempts: bool = False
) -> list[dict[str, Any]]:
    """The variant records, one per job: its latest attempt (``latest_attempts``).

    Reports, ``compare`` and the runner read records through this, so a job retried after a
    failure counts once, as its retry. `all_attempts` keeps the earlier attempts too (history).
    """
    variants = [r for r in records if r["kind"] == "variant"]
    return variants if all_attempts else latest_attempts(variants)


def probe_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["kind"] == "probe"]


# A machine probe whose process died or hung: its record says so, and the run went on.
PROBE_FAILURES = ("failed", "timeout")


def probe_ok(probe_record: dict[str, Any]) -> bool:
    """Whether a probe record measured (records before probes had a status all did)."""
    return probe_record["probe"].get("status", "ok") == "ok"


def gpus_seen(probe_record: dict[str, Any]) -> dict[str, list[str]]:
    """Backend → GPUs it sees, from a probe record (older probes listed TensorFlow's only)."""
    probe = probe_record["probe"]
    return dict(probe.get("gpus_by_backend") or {"tensorflow": list(probe["gpus"])})


def merge_records(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Records of every file, in file order; refuses duplicate jobs.

    Older schema versions are upgraded on read, so files of different versions merge into the
    current one. Probe records are all kept (one per shard's machine). A (variant_id, repeat) in
    two files means two shards ran the same job (overlapping specs, or a file given twice) and is
    refused rather than resolved, since either copy could be the one the user meant. The shared
    arms (baseline and A/A control), which every shard measures itself, count per shard. Within
    one file, a later record of the same run's job is a retry (``latest_attempts``): every
    attempt is kept, in order, and readers use the latest.
    """
    if not paths:
        raise RecordError("merge: give at least one records file")
    merged: list[dict[str, Any]] = []
    seen: dict[tuple[str, int, str], tuple[int, Any, str]] = {}
    for index, p in enumerate(map(Path, paths)):
        for line, record in read_numbered(p):
            if record["kind"] == "variant":
                key = (record["variant_id"], record["repeat"], _shard_of_shared(record))
                where = (index, record["run"].get("id"), f"{p}:{line}")
                if key in seen and seen[key][:2] != where[:2]:
                    raise RecordError(
                        f"merge: {key[0]} repeat {key[1]} is in both {seen[key][2]} and "
                        f"{p}:{line}; each job must come from one shard (were the same shards, "
                        "or the same file, given twice?)"
                    )
                seen[key] = where
            merged.append(record)
    return merged


def _shard_of_shared(record: dict[str, Any]) -> str:
    """The shard of a record of a shared arm (the baseline or its control), '' for any other."""
    run = record["run"]
    shared = record["variant"].get("control") or run.get("baseline") == record["variant_id"]
    return run.get("shard", "1/1") if shared else ""


def missing_shards(merged: Sequence[dict[str, Any]]) -> list[str]:
    """Shards of an I/N split that none of the merged records came from, e.g. ['3/4']."""
    specs = {r["run"].get("shard") for r in merged if r["run"].get("shard")}
    counts = {int(s.split("/")[1]) for s in specs}
    return sorted(
        (f"{i}/{n}" for n in counts for i in range(1, n + 1) if f"{i}/{n}" not in specs),
        key=lambda s: tuple(map(int, s.split("/"))),
    )


def merge_files(paths: Sequence[Path], out: Path, *, force: bool = False) -> list[dict[str, Any]]:
    """Merge shard records into `out`: never one of the inputs, nor an existing file unless force."""
    outputs.check_output(out, inputs=paths, force=force)
    merged = merge_records(paths)
    write_records(out, merged)
    return merged
