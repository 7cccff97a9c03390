"""`mnist-bench trend run|report|export`: options and trend.toml to the trend's functions. No TF."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (pyproject.toml's dependencies)
    import tomli as tomllib

from bench import outputs
from bench.gate import trend, trend_export, trend_render, trend_run
from bench.plan.gate_variants import AB_VARIANTS, GateVariant
from bench.run import gate_ref

CONFIG = "trend.toml"
KEYS = ("anchor", "history", "variants")
VARIANT_KEYS = {f.name for f in dataclasses.fields(GateVariant)}


def config(root: Path) -> dict[str, Any]:
    """trend.toml at the repository root: the stated anchor, where the history is kept, and the
    variants to measure (default: the A/B gate's)."""
    path = root / CONFIG
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise trend.TrendError(f"{path}: not readable TOML ({exc})") from None
    unknown = sorted(set(data) - set(KEYS))
    bad = [k for k in ("anchor", "history") if k in data and not isinstance(data[k], str)]
    if unknown or bad:
        raise trend.TrendError(
            f"{path}: keys {unknown or bad} are not allowed or not strings; it holds anchor and "
            "history (strings) and optionally [[variants]] tables"
        )
    data["variants"] = _variants(path, data.get("variants"))
    return data


def _variants(path: Path, given: Any) -> tuple[GateVariant, ...]:
    """[[variants]] tables as GateVariants (name, batch_size, precision, train_images, epochs)."""
    if given is None:
        return AB_VARIANTS
    if not isinstance(given, list) or not given or not all(isinstance(v, dict) for v in given):
        raise trend.TrendError(f"{path}: variants must be [[variants]] tables, one per variant")
    out = []
    for v in given:
        if set(v) - VARIANT_KEYS or not {"name", "batch_size", "precision", "train_images"} <= set(
            v
        ):
            raise trend.TrendError(
                f"{path}: a variant {v!r} needs name, batch_size, precision, train_images (and "
                f"optionally epochs), nothing else"
            )
        out.append(GateVariant(**v))
    return tuple(out)


def main(args: argparse.Namespace) -> int:
    root = gate_ref.repo_root(Path.cwd()) or Path.cwd()
    conf = config(root)
    given = args.history or conf.get("history")
    if not given:
        raise trend.TrendError(f"no history file: name one, or set `history` in {CONFIG}")
    history = Path(given) if args.history else root / given
    if args.action == "report":
        out = Path(args.out) if args.out else history.parent
        print(trend_render.write_report(history, out, force=args.force))
        return 0
    if args.action == "export":
        doc = trend_export.export(trend.read_history(history), args.format)
        text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
        if args.output:
            outputs.write_atomic(
                outputs.check_output(args.output, inputs=[history], force=args.force), text
            )
        else:
            sys.stdout.write(text)
        return 0
    anchor = args.anchor or conf.get("anchor")
    if not anchor:
        raise trend.TrendError(f"no anchor: give --anchor REF, or set `anchor` in {CONFIG}")
    commits = tuple(args.commits) or (() if args.between or args.new_anchor else ("HEAD",))
    request = trend_run.Request(
        history=history,
        anchor=anchor,
        commits=commits,
        new_anchor=args.new_anchor,
        between=tuple(args.between) if args.between else None,
        python=args.python,
        variants=conf.get("variants", AB_VARIANTS),
        rounds=args.rounds,
        data=args.data,
    )
    return trend_run.run(request)
