"""The A/B gate's decision on literal numbers: per-round figures, the bootstrap CI, the rule, the table.

Pure: no TensorFlow, no processes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.gate import ab_rule as ab
from bench.gate import render as gate_render
from bench.gate.verdicts import EXIT_PASS, EXIT_REGRESSION, EXIT_UNMEASURED, exit_code
from tests.conftest import load_script


def test_round_figures_median_leaves_out_warmup_and_wall_keeps_the_stall():
    # Steps 10 ms (trace), 2 ms (warm-up), then 1, 1 and a 3 ms stall.
    median_ms, wall_ms = ab.round_figures(
        [[10, 2, 1, 1, 3]], [0.010, 0.012, 0.013, 0.014, 0.017], warmup=2
    )
    assert median_ms == 1.0
    assert wall_ms == pytest.approx(5 / 3)  # (17 − 12 ms) over the 3 steps after the warm-up


def test_round_figures_span_epochs_and_refuse_too_few_steps():
    # Two epochs: the wall time runs across the boundary, warm-up only in epoch 1.
    median_ms, wall_ms = ab.round_figures(
        [[9, 1, 1], [2, 1, 1]], [0.009, 0.010, 0.011, 0.020, 0.021, 0.022], 1
    )
    assert median_ms == 1.0
    assert wall_ms == pytest.approx(13 / 5)  # (22 − 9 ms) / 5: the 7 ms epoch gap is in it
    with pytest.raises(ab.ABError, match="too few"):
        ab.round_figures([[5, 1]], [0.005, 0.006], warmup=1)


def test_round_figures_leave_out_the_turns_of_an_interleaved_run(monkeypatch):
    monkeypatch.setattr(ab, "WALL_WINDOW", 4)
    # Steps of 1 ms; after 4 steps the probe waited 50 ms for its turn, which the next step's
    # interval holds (51 ms); after 6 a 3 ms stall of the code's own, after 8 a 20 ms turn.
    steps = [[10, 1, 1, 1, 51, 1, 4, 1, 21, 1]]
    ends = [0.010, 0.011, 0.012, 0.013, 0.064, 0.065, 0.069, 0.070, 0.091, 0.092]
    pauses = [[4, 0.050], [8, 0.020]]
    # Windows 2-4, 4-8, 8-10: the waits are left out, the stall stays in its window.
    assert ab.window_walls(ends, 2, pauses, 4) == pytest.approx([1.0, 1.75, 1.0])
    median_ms, wall_ms = ab.round_figures(steps, ends, warmup=2, pauses=pauses)
    assert median_ms == 1.0  # the 51 and 21 ms steps are left out, the 4 ms one is not
    assert wall_ms == 1.0  # the median window
    # Windows of 2: 2-4, 4-6, 6-8, 8-10; a wait before the warm-up's end or after the last step
    # subtracts nothing.
    assert ab.window_walls(ends, 2, pauses, 2) == pytest.approx([1.0, 1.0, 2.5, 1.0])
    assert ab.window_walls(ends, 5, [[1, 0.05], [10, 0.1]], 100) == pytest.approx([(92 - 64) / 5])
    # Not interleaved: one window, the whole span, whatever WALL_WINDOW says.
    assert ab.round_figures(steps, ends, 2)[1] == pytest.approx((92 - 11) / 8)


def test_figures_reads_a_probe_response_and_refuses_a_failed_one():
    response = {
        "ok": True,
        "runs": [
            {
                "name": "v",
                "step_ms": [[10, 2, 1, 1, 3]],
                "batch_end_s": [0.01, 0.012, 0.013, 0.014, 0.017],
            }
        ],
    }
    assert ab.figures(response, 2) == {"v": {"median_ms": 1.0, "wall_ms": pytest.approx(5 / 3)}}
    with pytest.raises(ab.ABError, match="side process failed: boom"):
        ab.figures({"ok": False, "error": "boom"}, 2)


def test_median_ci_is_the_order_statistic_interval():
    a = [1.0] * 6
    b = [1.00, 1.02, 1.04, 1.06, 1.08, 1.10]
    ratio, low, high = ab.median_ci(a, b)
    assert ratio == pytest.approx(1.05)  # median of the six ratios
    assert (low, high) == pytest.approx((1.00, 1.10))  # 6 rounds: smallest and largest, 96.9 %
    # 12 rounds: the 3rd smallest and 3rd largest (96.1 %); order of the rounds does not matter.
    twelve = [1.00, 1.11, 1.01, 1.10, 1.02, 1.09, 1.03, 1.08, 1.04, 1.07, 1.05, 1.06]
    assert ab.median_ci([1.0] * 12, twelve) == pytest.approx((1.055, 1.02, 1.09))
    # Equal ratios: no spread at all. Scale-free: only B/A matters.
    assert ab.median_ci([2.0] * 5, [2.2] * 5) == pytest.approx((1.1, 1.1, 1.1))


def test_median_ci_coverage_is_binomial():
    assert ab.coverage(6, 1) == pytest.approx(1 - 2 / 64)
    assert ab.coverage(6, 2) == pytest.approx(1 - 2 * 7 / 64)  # the old bootstrap's ~78 %
    assert ab.coverage(12, 3) == pytest.approx(1 - 2 * 79 / 4096)
    assert ab.coverage(ab.MIN_ROUNDS, 1) >= ab.LEVEL > ab.coverage(ab.MIN_ROUNDS - 1, 1)


def test_default_rounds_are_the_fewest_where_one_stray_round_cannot_set_the_ci():
    """Bug: DEFAULT_ROUNDS lowered to 6 or 7 (the CI's bound is then the extreme round, so one
    disturbed round decides, as run 39's missed stall did), raised past the need (rounds of budget
    for no second order statistic), or median_ci reading the wrong order statistic."""
    n = ab.DEFAULT_ROUNDS
    assert ab.MIN_ROUNDS <= n <= ab.MAX_ROUNDS
    assert ab.order_k(n) >= 2 > ab.order_k(n - 1)  # the fewest with a 2nd order statistic
    assert ab.coverage(n, ab.order_k(n)) >= ab.LEVEL
    # Every round 10 % slower but one stray round at half the time: with n rounds the CI still
    # starts at 1.10; with one round fewer the stray round is its lower bound.
    stray = [0.5, *[1.10] * (n - 1)]
    assert ab.median_ci([1.0] * n, stray)[1:] == pytest.approx((1.10, 1.10))
    assert ab.median_ci([1.0] * (n - 1), stray[:-1])[1] == 0.5


def test_order_statistics_and_their_words_match_the_binomial_tables():
    """Bug: order_k or ci_text off by one (e.g. the 4th … 13th of 16 where coverage gives the 5th)."""
    rounds = (4, 5, 6, 7, 8, 9, 10, 11, 12, 16)
    assert [ab.order_k(n) for n in rounds] == [0, 1, 1, 1, 2, 2, 2, 3, 3, 5]
    assert ab.ci_text(8) == "the 2nd smallest to the 2nd largest of the 8 ratios, coverage 93.0%"
    assert ab.ci_text(6) == "the smallest to the largest of the 6 ratios, coverage 96.9%"
    assert ab.ci_text(12).startswith("the 3rd smallest to the 3rd largest of the 12 ratios")
    assert ab.ci_text(40).startswith("the 15th smallest")
    assert ab.ci_text(70).startswith("the 28th smallest")
    assert ab.ci_text(55).startswith("the 21st smallest")


def test_the_ci_figures_in_ab_rules_comments_are_what_order_k_gives():
    """Bug: a comment or docstring states a CI for some round count that order_k does not give
    (it said '4th … 13th' for 16 rounds, where order_k gives the 5th … 12th)."""
    source = Path(ab.__file__).read_text()
    text = " ".join(" ".join(line.split("#", 1)) for line in source.splitlines()).split()
    text = " ".join(text)
    pattern = r"the (?:\d+\w\w )?smallest to the (?:\d+\w\w )?largest of the (\d+) ratios, coverage [\d.]+%"
    stated = [(m.group(0), int(m.group(1))) for m in re.finditer(pattern, text)]
    assert len(stated) >= 3, stated  # the MIN, DEFAULT and MAX comments
    for words, n in stated:
        assert words == ab.ci_text(n), f"ab_rule.py says {words!r}; order_k gives {ab.ci_text(n)!r}"
    assert {n for _, n in stated} >= {ab.MIN_ROUNDS, ab.DEFAULT_ROUNDS, ab.MAX_ROUNDS}


def test_one_disturbed_round_in_eight_cannot_hide_a_regression():
    # Illustrative, not measured: the second campaign's missed stall (run 39, bs32 wall per step:
    # +6.8, +13.7, +16.4, +16.0, +11.7, +1.3 %) passed with 6 rounds because its lower bound was the
    # +1.3 % round. With 8 rounds one such round is the smallest and the bound the next one.
    missed = [1.068, 1.137, 1.164, 1.160, 1.117, 1.013]
    ratio, low, high = ab.median_ci([1.0] * 6, missed)
    assert ab.verdict(ratio, low, high, ab.ratio_spread([1.0] * 6, missed)) == ab.PASS
    eight = [*missed, 1.10, 1.09]
    ratio, low, high = ab.median_ci([1.0] * 8, eight)
    assert low == pytest.approx(1.068)
    assert ab.verdict(ratio, low, high, ab.ratio_spread([1.0] * 8, eight)) == ab.REGRESSION
    # Two low rounds of eight still hold it back: the CI then reaches below +3 %.
    two_low = [*missed, 1.10, 1.02]
    ratio, low, high = ab.median_ci([1.0] * 8, two_low)
    assert ab.verdict(ratio, low, high, ab.ratio_spread([1.0] * 8, two_low)) == ab.PASS


def test_too_few_rounds_are_refused_with_the_fix():
    ab.check_rounds(ab.MIN_ROUNDS)
    with pytest.raises(ab.ABError, match=r"--rounds 4: the A/B gate needs at least 5 for a 90% CI"):
        ab.check_rounds(4)


def test_median_ci_holds_the_proof_campaigns_false_alarm():
    # Run 24 of the 2026-11-26 proof (halved machine, same code both sides): bs512 median step B/A
    # per round. The bootstrap CI was +3.1 … +10.0 %: REGRESSION. The order-statistic CI holds 1.
    ratios = [1.079, 1.073, 1.033, 1.103, 1.100, 0.983]
    ratio, low, high = ab.median_ci([1.0] * 6, ratios)
    assert low < 1 < ratio - ab.FLOOR + 1
    assert ab.verdict(ratio, low, high, ab.ratio_spread([1.0] * 6, ratios)) == ab.PASS


def test_median_ci_is_paired():
    # Round 2 ran on a machine twice as slow for both sides: pairing cancels it.
    a, b = [1.0, 2.0, 1.0, 2.0, 1.0], [1.1, 2.2, 1.1, 2.2, 1.1]
    assert ab.median_ci(a, b) == pytest.approx((1.1, 1.1, 1.1))


def test_median_ci_refuses_unpaired_or_too_few_rounds():
    with pytest.raises(ab.ABError, match="equally many"):
        ab.median_ci([1] * 5, [1] * 4)
    with pytest.raises(ab.ABError, match="at least 5"):
        ab.median_ci([1] * 4, [1] * 4)
    with pytest.raises(ab.ABError, match="level"):
        ab.median_ci([1] * 5, [1] * 5, level=1.0)
    with pytest.raises(ab.ABError, match="too few for a 99% CI"):
        ab.median_ci([1] * 5, [1] * 5, level=0.99)


@pytest.mark.parametrize(
    ("ratio", "low", "high", "expected"),
    [
        (1.10, 1.06, 1.14, ab.REGRESSION),  # +10 %, CI clear of 1
        (1.30, 1.04, 1.50, ab.REGRESSION),  # wide, but beyond the margin and the floor
        (1.30, 1.02, 1.50, ab.NOISY),  # not clear of the 3 % margin, and +20 % not ruled out
        (1.08, 1.02, 1.12, ab.PASS),  # slower, but maybe by no more than builds differ
        (1.04, 1.01, 1.07, ab.PASS),  # resolved, but under the 5 % floor
        (1.10, 0.99, 1.18, ab.PASS),  # CI holds 1 and rules out +20 %
        (1.10, 0.97, 1.25, ab.NOISY),  # CI holds 1 and +25 %: cannot say
        (1.00, 0.79, 1.21, ab.NOISY),
        (1.04, 0.95, 1.19, ab.PASS),  # wide, but +20 % ruled out
        (0.90, 0.85, 0.95, ab.FASTER),
        (0.90, 0.85, 0.98, ab.PASS),
        (0.97, 0.95, 0.99, ab.PASS),  # faster, but under the floor
    ],
)
def test_verdict_rule(ratio, low, high, expected):
    assert ab.verdict(ratio, low, high) == expected


# An A/A run on the shared dev machine under load 4–6 (bs512 median step ms, rounds in order).
LOADED_A = [8.351, 15.622, 10.041, 8.053, 9.475, 9.918]
LOADED_B = [19.849, 23.737, 15.968, 7.615, 11.697, 17.034]


def test_the_loaded_machines_a_a_run_is_too_noisy_not_a_regression():
    ratio, low, high = ab.median_ci(LOADED_A, LOADED_B)
    spread = ab.ratio_spread(LOADED_A, LOADED_B)
    assert ratio - 1 > ab.FLOOR and low < 1  # +55 %, but one round had B faster
    assert high > 1 + ab.CEILING
    assert spread == pytest.approx(0.2303, abs=1e-4)  # 1.4826 · 0.2415 / 1.5549
    assert ab.verdict(ratio, low, high, spread) == ab.NOISY


def test_the_spread_guard_holds_back_a_change_within_the_scatter():
    # Every round slower, but pairs scattering 20 %: +20 % is within 3 spreads, so cannot judge.
    ones, scattered = [1.0] * 6, [1.02, 1.10, 1.30, 1.45, 1.60, 1.05]
    ratio, low, high = ab.median_ci(ones, scattered)
    assert low > 1 and ratio - 1 > ab.FLOOR
    assert ab.ratio_spread(ones, scattered) == pytest.approx(0.204, abs=1e-3)
    assert ab.verdict(ratio, low, high, ab.ratio_spread(ones, scattered)) == ab.NOISY
    # A change far beyond the scatter is a regression (here the B side 3× slower).
    tripled = [3 * b for b in LOADED_B]
    ratio, low, high = ab.median_ci(LOADED_A, tripled)
    assert ab.verdict(ratio, low, high, ab.ratio_spread(LOADED_A, tripled)) == ab.REGRESSION


@pytest.mark.parametrize(
    ("ratio", "low", "high", "spread", "expected"),
    [
        (1.10, 1.06, 1.14, 0.10, ab.REGRESSION),  # spread at the limit: the plain rule
        (1.25, 1.06, 1.40, 0.11, ab.NOISY),  # noisy and +25 % < 3 × 11 %
        (1.40, 1.06, 1.60, 0.11, ab.REGRESSION),  # noisy but +40 % > 33 %
        (1.00, 0.85, 1.15, 0.12, ab.PASS),  # scattered pairs, but the CI rules out +20 %
        (1.02, 0.85, 1.25, 0.12, ab.NOISY),  # … and here it does not
        (0.60, 0.50, 0.70, 0.12, ab.FASTER),
        (0.80, 0.70, 0.90, 0.12, ab.NOISY),  # faster by the CI, but within 3 spreads
    ],
)
def test_verdict_with_spread(ratio, low, high, spread, expected):
    assert ab.verdict(ratio, low, high, spread) == expected


def _rounds(a: list[float], b: list[float], metric_b: list[float] | None = None) -> list[dict]:
    """Per-round figures of one variant 'v': median from a/b, wall from a/metric_b (default b)."""
    walls = metric_b or b
    return [
        {
            "A": {"v": {"median_ms": x, "wall_ms": x}},
            "B": {"v": {"median_ms": y, "wall_ms": w}},
        }
        for x, y, w in zip(a, b, walls, strict=True)
    ]


def test_compare_rounds_judges_median_and_wall_separately():
    a = [2.0, 2.1, 1.9, 2.0, 2.0, 2.2]
    same = list(a)
    stalled = [x * 1.12 for x in a]  # median unmoved, wall +12 %
    rows = ab.compare_rounds(_rounds(a, same, stalled), ["v"])
    assert [(r.metric, r.verdict) for r in rows] == [
        ("median_ms", ab.PASS),
        ("wall_ms", ab.REGRESSION),
    ]
    assert rows[1].change == pytest.approx(0.12)
    assert rows[1].a_ms == pytest.approx(2.0) and rows[1].b_ms == pytest.approx(2.24)
    assert exit_code([r.verdict for r in rows]) == EXIT_REGRESSION


def test_compare_rounds_missing_variant_or_rounds_cannot_be_judged():
    rounds = _rounds([1.0] * 5, [1.0] * 5)
    del rounds[1]["B"]["v"]
    rows = ab.compare_rounds(rounds, ["v"])
    assert {r.verdict for r in rows} == {ab.NOT_MEASURED}
    assert exit_code([r.verdict for r in rows]) == EXIT_UNMEASURED
    rows = ab.compare_rounds(_rounds([1.0] * 4, [1.0] * 4), ["v"])
    assert {r.verdict for r in rows} == {ab.NOT_MEASURED}
    assert exit_code([]) == EXIT_UNMEASURED
    rows = ab.compare_rounds(_rounds([1.0] * 5, [1.0] * 5), ["v"])
    assert exit_code([r.verdict for r in rows]) == EXIT_PASS


def test_ab_table_shows_both_metrics_the_rule_and_the_outcome():
    a = [2.0, 2.1, 1.9, 2.0, 2.0, 2.2]
    rows = ab.compare_rounds(_rounds(a, list(a), [x * 1.12 for x in a]), ["v"])
    meta = {
        "ref": "abc1234567 (merge base of HEAD and origin/main)",
        "rounds": 6,
        "sides": {
            "A": {"label": "A (REF abc1234567)", "versions": {"tensorflow": "2.20.0"}},
            "B": {"label": "B (working tree)", "versions": {"tensorflow": "2.21.0"}},
        },
        "env": {"installer": "uv", "from_lock": True, "build_s": 6.0, "reused": False},
        "elapsed_s": 80.0,
    }
    text = gate_render.render_ab(rows, meta)
    lines = text.splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[:4]]
    assert cells[0] == [
        "variant", "metric", "A ms", "B ms", "change B/A", "90% CI", "pair spread", "verdict",
    ]  # fmt: skip
    assert cells[2] == [
        "v",
        "median step",
        "2.000",
        "2.000",
        "+0.0%",
        "+0.0% … +0.0%",
        "0.0%",
        "pass",
    ]
    assert cells[3] == [
        "v", "wall per step", "2.000", "2.240", "+12.0%", "+12.0% … +12.0%", "0.0%", "REGRESSION",
    ]  # fmt: skip
    assert (
        "A = abc1234567 (merge base of HEAD and origin/main); B = this working tree. 6 rounds"
        in text
    )
    assert "lower bound is above +3% and the change above +5%" in text
    assert "(the smallest to the largest of the 6 ratios, coverage 96.9%)" in text
    assert "side A (REF abc1234567): tensorflow 2.20.0" in text
    assert "REF environment: uv, from its requirements.lock, built in 6 s" in text
    assert lines[-1] == "gate: REGRESSION (exit 1)"


def test_proof_campaign_resumes_only_under_the_same_rule(tmp_path):
    import json

    prover = load_script("prove_ab_gate")
    args = prover._parser().parse_args([])
    meta = prover.campaign_meta(args, prover.regress.AB_VARIANTS)
    kept_meta = meta | {"commit": {"id": "old", "dirty": False}, "full_against": {"ref": "HEAD"}}
    (tmp_path / "results.json").write_text(json.dumps({"meta": kept_meta, "runs": [{"a": 1}]}))
    fresh = dict(meta)
    assert prover.resume(tmp_path, fresh) == [{"a": 1}]
    assert fresh["commits"] == [kept_meta["commit"], meta["commit"]]
    assert fresh["full_against"] == {"ref": "HEAD"}
    other = meta | {"rule": meta["rule"] | {"margin": 0.01}}
    (tmp_path / "results.json").write_text(json.dumps({"meta": other, "runs": []}))
    with pytest.raises(ValueError, match="differs in one of"):
        prover.resume(tmp_path, dict(meta))
    (tmp_path / "results.json").write_text('{"meta": ')  # a campaign killed mid-write
    with pytest.raises(ValueError, match=r"cannot read .*results\.json"):
        prover.resume(tmp_path, dict(meta))


def test_proof_campaign_refuses_a_bad_resume_before_loading_the_data(tmp_path, monkeypatch, capsys):
    import mnist_models.data

    def no_data(*args, **kwargs):
        raise AssertionError("load_mnist ran before --resume was checked")

    monkeypatch.setattr(mnist_models.data, "load_mnist", no_data)
    (tmp_path / "results.json").write_text('{"meta": ')
    prover = load_script("prove_ab_gate")
    with pytest.raises(SystemExit) as exit_info:
        prover.main(["--out", str(tmp_path), "--resume"])
    assert exit_info.value.code == 2
    assert "--resume: cannot read" in capsys.readouterr().err


def test_rows_decided_at_the_default_rounds_keep_their_verdict_through_extra_rounds():
    # Catches: extra rounds (added for a noisy row) re-judging a row that already passed, which
    # would give every pass a second look and raise the false-alarm rate above the proof's.
    passed = ab.ABRow("v", "median_ms", "pass", ratio=1.01)
    noisy = ab.ABRow("v", "wall_ms", "too noisy", ratio=1.10)
    rows, decided = ab.keep_decided([passed, noisy], {}, ab.DEFAULT_ROUNDS - 1)
    assert decided == {}  # before the default rounds nothing is settled
    rows, decided = ab.keep_decided([passed, noisy], {}, ab.DEFAULT_ROUNDS)
    assert decided == {("v", "median_ms"): passed}
    later = ab.ABRow("v", "median_ms", "REGRESSION", ratio=1.06)
    resolved = ab.ABRow("v", "wall_ms", "pass", ratio=1.02)
    rows, decided = ab.keep_decided([later, resolved], decided, ab.DEFAULT_ROUNDS + 1)
    assert [r.verdict for r in rows] == ["pass", "pass"]  # the first kept, the noisy one judged
    assert set(decided) == {("v", "median_ms"), ("v", "wall_ms")}


def test_plan_rounds_sizes_the_gate_by_time():
    # Catches: a slow machine running 8 rounds whatever the budget, or extra rounds without end.
    noisy = [ab.ABRow("v", "wall_ms", "too noisy")]
    calm = [ab.ABRow("v", "wall_ms", "pass")]
    assert ab.plan_rounds(0, 0.0, [], 100.0) == ab.MIN_ROUNDS
    assert ab.plan_rounds(5, 50.0, calm, 100.0) == 3  # 10 s a round: 50 s left, 3 to reach 8
    assert ab.plan_rounds(5, 80.0, calm, 100.0) == 1  # 16 s a round: one more fits
    assert ab.plan_rounds(5, 99.0, calm, 100.0) == 0
    assert ab.plan_rounds(8, 80.0, calm, 200.0) == 0  # decided: no extra round
    assert ab.plan_rounds(8, 80.0, noisy, 200.0) == 1
    assert ab.plan_rounds(8, 80.0, noisy, 85.0) == 0  # no time left for one
    assert ab.plan_rounds(ab.MAX_ROUNDS, 1.0, noisy, 1e9) == 0
