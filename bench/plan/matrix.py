"""Matrices are data: a TOML profile names axes (lists of values) and how to expand them.

[run]                      # run settings (all optional)
repeats = 2
[matrix]
mode = "ablation"          # or "cross"
[axes]                     # any Variant field; a scalar means a one-value list
batch_size = [32, 128]
[baseline]                 # ablation only: defaults to each axis' first value
batch_size = 32
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (pyproject.toml's dependencies)
    import tomli as tomllib

from bench.plan.settings import RunSettings
from bench.plan.variant import FIELD_NAMES as AXES
from bench.plan.variant import Variant, VariantError, check_field, is_int, shown

PROFILE_DIR = Path(__file__).parent / "profiles"
MODES = ("cross", "ablation")
RUN_KEYS = tuple(f.name for f in fields(RunSettings))
SECTIONS = ("run", "matrix", "axes", "baseline")
# Bounds checked before anything is expanded or allocated.
MAX_VARIANTS = 10_000
MAX_REPEATS = 1000
MAX_WARMUP_STEPS = 10**9
MAX_TIMEOUT_S = 7 * 24 * 3600.0
MAX_PROFILE_BYTES = 1_000_000
MAX_BLOCK_S = 3600.0
MAX_WORKERS = 256
MAX_TARGETS = 10


class MatrixError(ValueError):
    """A profile or override is invalid; the message names the field and the allowed values."""


@dataclass(frozen=True)
class Matrix:
    """An expanded-ready matrix definition."""

    name: str
    mode: str
    axes: dict[str, list[Any]]
    baseline: dict[str, Any]
    settings: RunSettings

    def variants(self) -> list[Variant]:
        """The variants this matrix expands to, in a stable order, without duplicates.

        With the A/A control on, the baseline's identical second arm follows the baseline.
        """
        variants = expand(self.mode, self.axes, self.baseline)
        if self.settings.aa_control and variants:
            variants.insert(1, dataclasses.replace(variants[0], control=True))
        return variants


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def _make_variant(values: dict[str, Any], where: str) -> Variant:
    try:
        return Variant(**values)
    except VariantError as exc:
        raise MatrixError(f"{where}: {exc}") from None


def expand(mode: str, axes: dict[str, list[Any]], baseline: dict[str, Any]) -> list[Variant]:
    """Cross product of the axes, or the baseline plus each axis value changed alone."""
    if mode == "cross":
        names = list(axes)
        combos = [
            dict(zip(names, values, strict=True))
            for values in itertools.product(*(axes[n] for n in names))
        ]
    elif mode == "ablation":
        combos = [dict(baseline)]
        for name, values in axes.items():
            combos += [{**baseline, name: value} for value in values if value != baseline[name]]
    else:
        raise MatrixError(f"matrix.mode={mode!r}: choose from {list(MODES)}")
    seen: dict[str, Variant] = {}
    for combo in combos:
        variant = _make_variant(combo, "axes")
        seen.setdefault(variant.id, variant)
    return list(seen.values())


def _as_list(name: str, value: Any) -> list[Any]:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise MatrixError(f"axes.{name}: empty list; give at least one value")
    return values


def _table(name: str, spec: dict[str, Any], section: str) -> dict[str, Any]:
    value = spec.get(section, {})
    if not isinstance(value, dict):
        raise MatrixError(
            f"{name}: [{section}] must be a table of KEY = VALUE lines, got {shown(value)}"
        )
    return value


def _count_variants(mode: str, axes: dict[str, list[Any]]) -> int:
    if mode == "cross":
        return math.prod(len(values) for values in axes.values())
    return 1 + sum(len(values) for values in axes.values())


def build_matrix(name: str, spec: dict[str, Any]) -> Matrix:
    """Check a parsed profile and turn it into a Matrix; every error names its field."""
    if not isinstance(spec, dict):
        raise MatrixError(f"{name}: a profile is a table of sections, got {shown(spec)}")
    unknown = set(spec) - set(SECTIONS)
    if unknown:
        raise MatrixError(
            f"{name}: unknown section(s) {sorted(map(str, unknown))}; allowed: {list(SECTIONS)}"
        )
    run = _table(name, spec, "run")
    bad = set(run) - set(RUN_KEYS)
    if bad:
        raise MatrixError(
            f"{name}: unknown run setting(s) {sorted(map(str, bad))}; allowed: {list(RUN_KEYS)}"
        )
    settings = _settings(name, run)
    matrix_table = _table(name, spec, "matrix")
    mode = matrix_table.get("mode", "ablation")
    if not isinstance(mode, str) or mode not in MODES:
        raise MatrixError(f"{name}: matrix.mode={shown(mode)}: choose from {list(MODES)}")
    extra = set(matrix_table) - {"mode"}
    if extra:
        raise MatrixError(
            f"{name}: unknown matrix key(s) {sorted(map(str, extra))}; allowed: ['mode']"
        )
    axes = {}
    for axis, value in _table(name, spec, "axes").items():
        if axis not in AXES:
            raise MatrixError(f"{name}: unknown axis {shown(axis)}; allowed axes: {list(AXES)}")
        axes[axis] = _as_list(axis, value)
    count = _count_variants(mode, axes)
    if count > MAX_VARIANTS:
        raise MatrixError(
            f"{name}: {mode} of these axes makes {count} variants; at most {MAX_VARIANTS} "
            "(split the matrix into several profiles)"
        )
    for axis, values in axes.items():  # each value alone first, so the message names its axis
        for value in values:
            _check_field(f"{name}: axes.{axis}", axis, value)
    baseline = {axis: values[0] for axis, values in axes.items()}
    for axis, value in _table(name, spec, "baseline").items():
        if axis not in AXES:
            raise MatrixError(
                f"{name}: unknown baseline field {shown(axis)}; allowed: {list(AXES)}"
            )
        _check_field(f"{name}: baseline.{axis}", axis, value)
        baseline[axis] = value
    matrix = Matrix(name, mode, axes, baseline, settings)
    for axis, values in axes.items():  # then the combinations with the baseline
        for value in values:
            _make_variant({**baseline, axis: value}, f"{name}: axes.{axis}")
    _make_variant(baseline, f"{name}: baseline")
    _check_targets_timed(name, settings, matrix.variants())
    return matrix


def _check_targets_timed(name: str, settings: RunSettings, variants: list[Variant]) -> None:
    """A time-to-target run needs every variant's validation accuracy after every epoch."""
    if not settings.targets:
        return
    for v in variants:
        if v.validation != "per_epoch":
            raise MatrixError(
                f"{name}: run.targets={list(settings.targets)} times validation accuracy epoch "
                f"by epoch, but {v.id} validates {v.validation!r}; use validation = "
                '"per_epoch" or drop run.targets'
            )


def _check_field(where: str, axis: str, value: Any) -> None:
    try:
        check_field(axis, value)
    except VariantError as exc:
        raise MatrixError(f"{where}: {exc}") from None


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_accuracy(v: Any) -> bool:
    return _is_number(v) and 0 < v < 1


_SETTING_RULES: dict[str, tuple[Any, str]] = {
    "repeats": (
        lambda v: is_int(v) and 1 <= v <= MAX_REPEATS,
        f"an integer >= 1 and <= {MAX_REPEATS}",
    ),
    "warmup_steps": (
        lambda v: is_int(v) and 0 <= v <= MAX_WARMUP_STEPS,
        f"an integer >= 0 and <= {MAX_WARMUP_STEPS}",
    ),
    "target_accuracy": (lambda v: _is_accuracy(v), "a number in (0, 1), e.g. 0.97"),
    "targets": (
        lambda v: (
            isinstance(v, list | tuple) and len(v) <= MAX_TARGETS and all(map(_is_accuracy, v))
        ),
        f"a list of at most {MAX_TARGETS} numbers in (0, 1), e.g. [0.98]",
    ),
    "timeout_s": (
        lambda v: _is_number(v) and 0 < v <= MAX_TIMEOUT_S,
        f"a finite number > 0 and <= {MAX_TIMEOUT_S:g} (a week)",
    ),
    "aa_control": (lambda v: isinstance(v, bool), "true or false"),
    "block_s": (
        lambda v: _is_number(v) and 0.001 <= v <= MAX_BLOCK_S,
        f"a number of seconds >= 0.001 and <= {MAX_BLOCK_S:g}",
    ),
    "max_workers": (
        lambda v: is_int(v) and 0 <= v <= MAX_WORKERS,
        f"an integer >= 0 (0: as memory allows) and <= {MAX_WORKERS}",
    ),
    "target_halfwidth": (
        lambda v: _is_number(v) and 0 < v < 1,
        "a fraction in (0, 1), e.g. 0.03 for ±3%",
    ),
    "budget_s": (
        lambda v: _is_number(v) and 0 <= v <= MAX_TIMEOUT_S,
        f"a number of seconds >= 0 (0: no sets beyond repeats) and <= {MAX_TIMEOUT_S:g}",
    ),
}


def _settings(name: str, run: dict[str, Any]) -> RunSettings:
    for key, value in run.items():
        check, rule = _SETTING_RULES[key]
        if not check(value):
            raise MatrixError(f"{name}: run.{key}={shown(value)}: must be {rule}")
    if "targets" in run:
        run = {**run, "targets": tuple(run["targets"])}
    return RunSettings(**run)


def load_profile(name_or_path: str) -> Matrix:
    """A shipped profile by name (see profile_names()) or a user's TOML file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            raise MatrixError(
                f"unknown profile {shown(name_or_path)}; choose from {profile_names()} or pass a "
                ".toml path"
            )
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_PROFILE_BYTES + 1)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise MatrixError(f"{path}: cannot read profile ({reason})") from None
    if len(raw) > MAX_PROFILE_BYTES:
        raise MatrixError(f"{path}: larger than {MAX_PROFILE_BYTES} bytes; is it a profile?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise MatrixError(
            f"{path}: not UTF-8 text (byte {raw[exc.start]:#04x} on line {line}); TOML files "
            "must be UTF-8"
        ) from None
    try:
        spec = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MatrixError(f"{path}: malformed TOML ({exc})") from None
    except (ValueError, RecursionError) as exc:  # huge integers, arrays nested too deeply
        reason = "nested too deeply" if isinstance(exc, RecursionError) else "a number too long"
        raise MatrixError(f"{path}: malformed TOML ({reason})") from None
    return build_matrix(path.stem if path.parent == PROFILE_DIR else str(path), spec)


def _parse_value(item: str) -> Any:
    try:
        return tomllib.loads(f"v = {item}")["v"]
    except (tomllib.TOMLDecodeError, ValueError, RecursionError, KeyError):
        return item  # bare words such as per_epoch are strings


def parse_override(text: str) -> tuple[str, list[Any]]:
    """'batch_size=32,128' → ('batch_size', [32, 128]); values parsed as TOML scalars."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or not raw.strip():
        raise MatrixError(
            f"--set {shown(text)}: expected KEY=VALUE[,VALUE...], e.g. batch_size=32,128"
        )
    return key, [_parse_value(item.strip()) for item in raw.split(",")]


def apply_overrides(matrix: Matrix, overrides: list[str]) -> Matrix:
    """Replace axes (lists) or run settings (one value) from --set KEY=VALUES options."""
    spec: dict[str, Any] = {
        "run": {k: getattr(matrix.settings, k) for k in RUN_KEYS},
        "matrix": {"mode": matrix.mode},
        "axes": dict(matrix.axes),
        "baseline": dict(matrix.baseline),
    }
    for text in overrides:
        key, values = parse_override(text)
        if key == "targets":
            spec["run"][key] = values
        elif key in RUN_KEYS or key == "mode":
            if len(values) != 1:
                raise MatrixError(f"--set {key}: takes one value, got {len(values)}")
            if key == "mode":
                spec["matrix"]["mode"] = values[0]
            else:
                spec["run"][key] = values[0]
        elif key in AXES:
            spec["axes"][key] = values
            # An overridden axis re-centres the ablation on its first value.
            spec["baseline"][key] = values[0]
        else:
            raise MatrixError(
                f"--set {key if key.isidentifier() else shown(key)}: unknown; axes: {list(AXES)}; run settings: "
                f"{list(RUN_KEYS)}; or mode"
            )
    return build_matrix(matrix.name, spec)
