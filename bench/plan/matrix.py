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
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from bench.plan.settings import RunSettings
from bench.plan.variant import FIELD_NAMES as AXES
from bench.plan.variant import Variant, VariantError

PROFILE_DIR = Path(__file__).parent / "profiles"
MODES = ("cross", "ablation")
RUN_KEYS = tuple(f.name for f in fields(RunSettings))
SECTIONS = ("run", "matrix", "axes", "baseline")


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


def build_matrix(name: str, spec: dict[str, Any]) -> Matrix:
    """Check a parsed profile and turn it into a Matrix; every error names its field."""
    unknown = set(spec) - set(SECTIONS)
    if unknown:
        raise MatrixError(
            f"{name}: unknown section(s) {sorted(unknown)}; allowed: {list(SECTIONS)}"
        )
    run = dict(spec.get("run", {}))
    bad = set(run) - set(RUN_KEYS)
    if bad:
        raise MatrixError(
            f"{name}: unknown run setting(s) {sorted(bad)}; allowed: {list(RUN_KEYS)}"
        )
    settings = _settings(name, run)
    mode = spec.get("matrix", {}).get("mode", "ablation")
    if mode not in MODES:
        raise MatrixError(f"{name}: matrix.mode={mode!r}: choose from {list(MODES)}")
    extra = set(spec.get("matrix", {})) - {"mode"}
    if extra:
        raise MatrixError(f"{name}: unknown matrix key(s) {sorted(extra)}; allowed: ['mode']")
    axes = {}
    for axis, value in spec.get("axes", {}).items():
        if axis not in AXES:
            raise MatrixError(f"{name}: unknown axis {axis!r}; allowed axes: {list(AXES)}")
        axes[axis] = _as_list(axis, value)
    baseline = {axis: values[0] for axis, values in axes.items()}
    for axis, value in spec.get("baseline", {}).items():
        if axis not in AXES:
            raise MatrixError(f"{name}: unknown baseline field {axis!r}; allowed: {list(AXES)}")
        baseline[axis] = value
    matrix = Matrix(name, mode, axes, baseline, settings)
    for axis, values in axes.items():  # check every value alone so the message names it
        for value in values:
            _make_variant({**baseline, axis: value}, f"{name}: axes.{axis}")
    _make_variant(baseline, f"{name}: baseline")
    matrix.variants()
    return matrix


def _settings(name: str, run: dict[str, Any]) -> RunSettings:
    checks = {
        "repeats": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
        "warmup_steps": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "target_accuracy": lambda v: isinstance(v, int | float) and 0 < v <= 1,
        "timeout_s": lambda v: isinstance(v, int | float) and v > 0,
        "aa_control": lambda v: isinstance(v, bool),
    }
    rules = {
        "repeats": "an integer >= 1",
        "warmup_steps": "an integer >= 0",
        "target_accuracy": "a number in (0, 1]",
        "timeout_s": "a number > 0",
        "aa_control": "true or false",
    }
    for key, value in run.items():
        if not checks[key](value) or (isinstance(value, bool) and key != "aa_control"):
            raise MatrixError(f"{name}: run.{key}={value!r}: must be {rules[key]}")
    return RunSettings(**run)


def load_profile(name_or_path: str) -> Matrix:
    """A shipped profile by name (see profile_names()) or a user's TOML file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            raise MatrixError(
                f"unknown profile {name_or_path!r}; choose from {profile_names()} or pass a .toml path"
            )
    try:
        spec = tomllib.loads(path.read_text())
    except OSError as exc:
        raise MatrixError(f"{path}: cannot read profile ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise MatrixError(f"{path}: malformed TOML ({exc})") from None
    return build_matrix(path.stem if path.parent == PROFILE_DIR else str(path), spec)


def parse_override(text: str) -> tuple[str, list[Any]]:
    """'batch_size=32,128' → ('batch_size', [32, 128]); values parsed as TOML scalars."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or not raw.strip():
        raise MatrixError(f"--set {text!r}: expected KEY=VALUE[,VALUE...], e.g. batch_size=32,128")
    values = []
    for item in raw.split(","):
        item = item.strip()
        try:
            values.append(tomllib.loads(f"v = {item}")["v"])
        except tomllib.TOMLDecodeError:
            values.append(item)  # bare words such as per_epoch are strings
    return key, values


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
        if key in RUN_KEYS:
            if len(values) != 1:
                raise MatrixError(f"--set {key}: run settings take one value, got {values}")
            spec["run"][key] = values[0]
        elif key == "mode":
            spec["matrix"]["mode"] = values[0]
        elif key in AXES:
            spec["axes"][key] = values
            # An overridden axis re-centres the ablation on its first value.
            spec["baseline"][key] = values[0]
        else:
            raise MatrixError(
                f"--set {key}: unknown; axes: {list(AXES)}; run settings: {list(RUN_KEYS)}; or mode"
            )
    return build_matrix(matrix.name, spec)
