"""scripts/ab_margin.py: the committed margin summary is a pure function of its raw gate records."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MARGIN = REPO / "reports" / "gate-margin"


def _script():
    spec = importlib.util.spec_from_file_location("ab_margin", REPO / "scripts" / "ab_margin.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_summary_regenerates_byte_for_byte_from_its_records():
    # Catches: a SUMMARY.md edited by hand, or a renderer change that rewrites history.
    kept = json.loads((MARGIN / "results.json").read_text(encoding="utf-8"))
    assert _script().render(kept["runs"], kept["meta"]) == (MARGIN / "SUMMARY.md").read_text(
        encoding="utf-8"
    )


def test_round_ratios_are_b_over_a_per_round_from_the_figures():
    # Catches: A/B inverted, or rounds mixed across variants.
    doc = {
        "measured": {
            "figures": [
                {"A": {"v": {"median_ms": 2.0}}, "B": {"v": {"median_ms": 2.2}}},
                {"A": {"v": {"median_ms": 4.0}}, "B": {"v": {"median_ms": 3.0}}},
            ]
        }
    }
    assert _script().round_ratios(doc) == {"v median_ms": [1.1, 0.75]}
