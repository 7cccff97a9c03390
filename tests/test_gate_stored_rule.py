"""The gate's comparison logic on literal numbers: spread, threshold, verdicts, baseline file, table.

No TensorFlow: bench.gate.stored_rule is pure, and the CLI checks the baseline before it loads TF.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import stats
from bench.cli import main
from bench.gate import baseline as gate_baseline
from bench.gate import render as gate_render
from bench.gate import stored_rule, verdicts
from bench.plan.gate_variants import ROUND_LISTS

REPO = Path(__file__).resolve().parent.parent
QUIET = [1.0, 1.0, 1.0, 1.0, 1.0]  # MAD 0: the threshold is the floor
WIDE = [1.0, 1.1, 0.9, 1.2, 0.8]  # median 1.0, MAD 0.1 → spread 0.14826
NOISY = [1.0, 1.3, 0.7, 1.6, 0.4]  # median 1.0, MAD 0.3 → threshold ≈ 0.748 against QUIET


def entry(ratios: list[float], harness_ms: float = 2.0) -> dict:
    """One variant's per-round lists with these ratios."""
    return {
        "ratios": list(ratios),
        "harness_ms": [harness_ms] * len(ratios),
        "calibration_ms": [harness_ms / r for r in ratios],
    }


def measured(**variants: list[float]) -> dict:
    """What bench.measure.stored_rounds.measure returns, with these per-round ratios."""
    return {
        "rounds": 5,
        "warmup_steps": 10,
        "threads": {"intra_op": 1, "inter_op": 1},
        "data": {"source": "cache"},
        "variants": {name: entry(ratios) for name, ratios in variants.items()},
    }


def baseline(**variants: list[float]) -> dict:
    machine = {"cpu_model": "Test CPU", "cpu_cores": 2, "versions": {"tensorflow": "2.21.0"}}
    commit = {"id": "abc", "dirty": False}
    return gate_baseline.make_baseline(
        measured(**variants), machine, commit, "2026-01-01T00:00:00+00:00"
    )


def test_spread_and_error_of_the_median_on_literal_numbers():
    assert stats.relative_spread(QUIET) == 0.0
    assert stats.relative_spread(WIDE) == pytest.approx(0.14826)
    assert stats.relative_spread([2 * r for r in WIDE]) == pytest.approx(0.14826)  # relative
    assert stats.median_error(WIDE) == pytest.approx(0.0830987, rel=1e-5)  # 1.2533·s/√5


def test_threshold_is_the_floor_when_quiet_and_k_sigma_when_noisy():
    assert stored_rule.threshold(QUIET, QUIET) == 0.15
    assert stored_rule.threshold(WIDE, QUIET) == pytest.approx(0.249296, rel=1e-5)  # 3 · 0.0831
    assert stored_rule.threshold(WIDE, WIDE) == pytest.approx(0.352558, rel=1e-5)  # 3 · √2 · 0.0831
    assert stored_rule.threshold(WIDE, QUIET, k=1.0) == 0.15  # 0.083 is under the floor
    assert stored_rule.threshold(QUIET, QUIET, floor=0.05) == 0.05


@pytest.mark.parametrize(
    ("current", "verdict"),
    [
        ([1.1] * 5, verdicts.PASS),
        ([1.14] * 5, verdicts.PASS),
        ([1.16] * 5, verdicts.REGRESSION),
        ([1.3] * 5, verdicts.REGRESSION),
        ([0.8] * 5, verdicts.FASTER),
        (NOISY, verdicts.NOISY),  # threshold 75% > ceiling 25%: it cannot tell
        ([2 * r for r in NOISY], verdicts.REGRESSION),  # +100% is beyond even that noise
    ],
)
def test_verdicts(current, verdict):
    row = stored_rule.judge("v", entry(current), entry(QUIET))
    assert row.verdict == verdict
    assert row.baseline_ratio == 1.0
    assert row.change == pytest.approx(stats.median(current) - 1)


def test_a_wide_spread_raises_the_threshold_enough_to_pass_a_20_percent_change():
    row = stored_rule.judge("v", entry([1.2 * r for r in WIDE]), entry(WIDE))
    assert row.change == pytest.approx(0.2)
    assert row.threshold == pytest.approx(0.352558, rel=1e-5)
    assert row.verdict == verdicts.NOISY  # 35% > ceiling: passing it would be dishonest
    lenient = stored_rule.judge("v", entry([1.2 * r for r in WIDE]), entry(WIDE), ceiling=0.5)
    assert lenient.verdict == verdicts.PASS


def test_missing_variants_on_either_side_cannot_be_judged():
    base = baseline(a=QUIET, b=QUIET)
    rows = stored_rule.compare(base, measured(a=QUIET, c=QUIET))
    assert [(r.variant, r.verdict) for r in rows] == [
        ("a", verdicts.PASS),
        ("b", verdicts.NOT_MEASURED),
        ("c", verdicts.NO_BASELINE),
    ]
    assert verdicts.exit_code(rows) == verdicts.EXIT_UNMEASURED
    # A regression found is a finding even when another variant could not be judged.
    rows = stored_rule.compare(base, measured(a=[1.5] * 5))
    assert verdicts.exit_code(rows) == verdicts.EXIT_REGRESSION
    assert verdicts.exit_code(stored_rule.compare(base, measured(a=QUIET, b=[0.5] * 5))) == 0
    assert verdicts.exit_code([]) == verdicts.EXIT_UNMEASURED


def test_ratios_measured_another_way_do_not_compare():
    base = baseline(a=QUIET, b=QUIET)
    now = measured(a=[1.3] * 5, b=QUIET)
    for doc in (base, now):
        for entry in doc["variants"].values():
            entry.update(batch_size=32, precision="float32", train_images=19200, timed_steps=590)
    assert verdicts.exit_code(stored_rule.compare(base, now)) == verdicts.EXIT_REGRESSION
    now["variants"]["b"]["train_images"] = 6400
    rows = stored_rule.compare(base, now)
    assert [r.verdict for r in rows] == [verdicts.REGRESSION, verdicts.CHANGED]
    now["threads"] = {"intra_op": 0, "inter_op": 0}  # the baseline pinned one thread each
    rows = stored_rule.compare(base, now)
    assert [r.verdict for r in rows] == [verdicts.CHANGED, verdicts.CHANGED]
    assert verdicts.exit_code(rows) == verdicts.EXIT_UNMEASURED
    assert "note: the gate's setup" in gate_render.render_table(rows, base, {})


def test_compare_rejects_a_floor_above_the_ceiling_and_a_bad_measurement():
    with pytest.raises(stored_rule.GateError, match="floor"):
        stored_rule.compare(baseline(a=QUIET), measured(a=QUIET), floor=0.3, ceiling=0.2)
    bad = measured(a=QUIET)
    bad["variants"]["a"]["ratios"][0] = float("nan")
    with pytest.raises(
        stored_rule.GateError, match=r"measurement: variant 'a'.*not a finite number"
    ):
        stored_rule.compare(baseline(a=QUIET), bad)


def test_baseline_round_trips_through_its_file(tmp_path):
    path = tmp_path / "sub" / "gate.json"
    doc = baseline(a=WIDE)
    gate_baseline.write_baseline(path, doc)
    assert gate_baseline.read_baseline(path) == doc
    assert doc["variants"]["a"]["median_ratio"] == 1.0
    assert doc["variants"]["a"]["relative_spread"] == pytest.approx(0.14826)
    assert not list(path.parent.glob("*.tmp"))


def _corrupt(doc: dict, edit: str) -> dict:
    variant = doc["variants"]["a"]
    if edit == "schema":
        doc["schema"] = "something-else"
    elif edit == "version":
        doc["schema_version"] = 2
    elif edit == "no-variants":
        doc["variants"] = {}
    elif edit == "negative":
        variant["ratios"][1] = -1.0
    elif edit == "bool":
        variant["harness_ms"][0] = True
    elif edit == "lengths":
        variant["calibration_ms"].pop()
    elif edit == "few-rounds":
        for key in ROUND_LISTS:
            if key in variant:
                variant[key] = variant[key][:2]
    elif edit == "not-a-list":
        variant["ratios"] = "1.0, 1.1"
    return doc


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("schema", "'schema' is 'something-else'"),
        ("version", "schema_version 2 is not supported"),
        ("no-variants", "'variants' must be a non-empty object"),
        ("negative", "'ratios' holds -1.0, not a positive number"),
        ("bool", "'harness_ms' holds True, not a finite number"),
        ("lengths", "per-round lists differ in length"),
        ("few-rounds", "2 rounds, the gate needs 3"),
        ("not-a-list", "'ratios' must be a list of numbers"),
    ],
)
def test_a_damaged_baseline_is_one_clear_error(tmp_path, edit, message):
    path = tmp_path / "gate.json"
    path.write_text(json.dumps(_corrupt(baseline(a=WIDE), edit)))
    with pytest.raises(
        stored_rule.GateError, match=re.escape(f"baseline {path}") + ".*" + re.escape(message)
    ) as info:
        gate_baseline.read_baseline(path)
    assert "\n" not in str(info.value)


def test_unreadable_baselines_say_how_to_fix_them(tmp_path):
    with pytest.raises(
        stored_rule.GateError,
        match=r"does not exist; make one with .*--update-baseline --baseline PATH",
    ):
        gate_baseline.read_baseline(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": "mnist-bench/gate-baseline",\n  "variants": ')
    with pytest.raises(stored_rule.GateError, match=r"not valid JSON \(.* at line 2, column 15\)"):
        gate_baseline.read_baseline(broken)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(stored_rule.GateError, match="cannot be read"):
        gate_baseline.read_baseline(binary)
    with pytest.raises(stored_rule.GateError, match="cannot be read"):
        gate_baseline.read_baseline(tmp_path)  # a directory
    with pytest.raises(stored_rule.GateError, match="expected a JSON object, got list"):
        broken.write_text("[]")
        gate_baseline.read_baseline(broken)


def test_write_refuses_an_invalid_document(tmp_path):
    doc = _corrupt(baseline(a=WIDE), "negative")
    with pytest.raises(stored_rule.GateError, match="new baseline"):
        gate_baseline.write_baseline(tmp_path / "gate.json", doc)
    assert not (tmp_path / "gate.json").exists()


def test_table_shows_every_variant_the_formula_and_the_outcome():
    base = baseline(a=QUIET, b=QUIET)
    rows = stored_rule.compare(base, measured(a=[1.2] * 5, c=QUIET))
    text = gate_render.render_table(rows, base, {"cpu_model": "Other CPU", "cpu_cores": 4})
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()[:5]]
    assert cells[0][:5] == ["variant", "baseline ratio", "current ratio", "change", "threshold"]
    assert cells[0][-1] == "verdict"
    assert cells[2] == [
        "a",
        "1.000",
        "1.200",
        "+20.0%",
        "15.0%",
        "0.0% / 0.0%",
        "2.000 → 2.000",
        "REGRESSION",
    ]
    assert cells[3] == ["b", "–", "–", "–", "–", "– / –", "– → –", "not measured"]
    assert cells[4] == ["c", "–", "1.000", "–", "–", "– / 0.0%", "– → 2.000", "no baseline"]
    assert "threshold = max(15%, 3 · √(e_now² + e_base²))" in text
    assert "baseline: 2026-01-01T00:00:00+00:00 on Test CPU, 2 cores" in text
    assert "this run: Other CPU, 4 cores" in text
    assert "note: no baseline for a measured variant" in text
    assert text.splitlines()[-1] == "gate: REGRESSION (exit 1)"


def test_baseline_summary_table():
    text = gate_render.render_baseline(baseline(a=WIDE))
    row = [c.strip() for c in text.splitlines()[2].strip("|").split("|")]
    assert row == ["a", "1.000", "14.8%", "2.000 / 2.000", "5"]


def test_cli_reports_a_corrupt_baseline_as_exit_2_without_loading_tensorflow(tmp_path):
    bad = tmp_path / "gate.json"
    bad.write_text("{not json")
    code = (
        "import sys\nfrom bench.cli import main\n"
        f"rc = main(['regress', '--baseline', {str(bad)!r}])\n"
        "assert 'tensorflow' not in sys.modules, 'loaded TensorFlow before checking the baseline'\n"
        "sys.exit(rc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"mnist-bench regress: could not measure: baseline {bad} is not valid JSON "
        "(Expecting property name enclosed in double quotes at line 1, column 2); "
        f"{stored_rule.UPDATE_HINT}"
    ]


def test_cli_rejects_too_few_rounds(capsys):
    with pytest.raises(SystemExit) as info:
        main(["regress", "--rounds", "2"])
    assert info.value.code == 2
    assert "'2': need an integer >= 3" in capsys.readouterr().err
