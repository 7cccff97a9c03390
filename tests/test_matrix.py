"""Matrix definitions: expansion in both modes, CLI overrides, and errors before anything runs."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest

from bench.plan import matrix
from bench.plan.matrix import MatrixError, apply_overrides, build_matrix, load_profile
from bench.plan.variant import Variant


def _ids(m: matrix.Matrix) -> list[str]:
    return [v.id for v in m.variants()]


def test_cross_product_expands_every_combination():
    m = build_matrix(
        "t",
        {
            "matrix": {"mode": "cross"},
            "axes": {"batch_size": [32, 64], "precision": ["float32", "mixed_bfloat16"]},
        },
    )
    assert _ids(m) == [
        "bs32-per_epoch-float32-cpu",
        "bs32-per_epoch-mixed_bfloat16-cpu",
        "bs64-per_epoch-float32-cpu",
        "bs64-per_epoch-mixed_bfloat16-cpu",
    ]


def test_ablation_is_the_baseline_plus_each_value_alone():
    m = build_matrix(
        "t", {"axes": {"batch_size": [32, 64, 128], "validation": ["per_epoch", "end_only"]}}
    )
    assert _ids(m) == [
        "bs32-per_epoch-float32-cpu",
        "bs64-per_epoch-float32-cpu",
        "bs128-per_epoch-float32-cpu",
        "bs32-end_only-float32-cpu",
    ]


def test_explicit_baseline_recentres_the_ablation():
    m = build_matrix("t", {"axes": {"batch_size": [32, 64]}, "baseline": {"batch_size": 64}})
    assert _ids(m) == ["bs64-per_epoch-float32-cpu", "bs32-per_epoch-float32-cpu"]


@pytest.mark.parametrize("name", matrix.profile_names())
def test_every_shipped_profile_expands_as_its_mode_says(name):
    """Bugs: expansion that zips the axes instead of crossing them, an ablation that changes two
    axes at once or drops a value, the baseline not first, two variants of one id (their records
    would merge), a variant that could not be rebuilt from its record, or a control that is not
    the baseline's twin right after it."""
    m = load_profile(name)
    variants = m.variants()
    ids = [v.id for v in variants]
    assert len(set(ids)) == len(ids)
    assert all(Variant.from_dict(v.to_dict()) == v for v in variants)
    if m.settings.aa_control:
        assert variants[1] == dataclasses.replace(variants[0], control=True)
    measured = [v for v in variants if not v.control]
    assert [v for v in variants if v.control] == ([variants[1]] if m.settings.aa_control else [])
    combos = [tuple(getattr(v, axis) for axis in m.axes) for v in measured]
    if m.mode == "cross":
        assert sorted(combos, key=repr) == sorted(itertools.product(*m.axes.values()), key=repr)
        return
    base = Variant(**m.baseline)
    assert measured[0] == base
    changed = [
        {a: getattr(v, a) for a in m.axes if getattr(v, a) != getattr(base, a)} for v in measured
    ]
    assert changed[0] == {} and all(len(c) == 1 for c in changed[1:])  # one axis at a time
    others = {(a, value) for a, values in m.axes.items() for value in values}
    assert {next(iter(c.items())) for c in changed[1:]} == others - set(m.baseline.items())


def test_default_profile_varies_each_of_its_four_axes_against_a_paired_control():
    """Bugs: an axis of `nox -s bench`'s four (batch size, validation, precision, device) left
    with a single value, so the run answers nothing about it; or the default run without the A/A
    control and the paired sets its verdicts rest on."""
    m = load_profile("default")
    variants = m.variants()
    for axis in ("batch_size", "validation", "precision", "device"):
        assert len({getattr(v, axis) for v in variants}) >= 2, axis
    assert m.settings.aa_control and variants[1].control
    assert m.settings.repeats >= 2 and m.settings.budget_s > 0


def test_expansion_keeps_one_variant_per_id_where_a_setting_does_not_apply():
    """Bug: duplicates kept by dataclass equality instead of id; validation_split means nothing
    to per_epoch, so its two per_epoch combinations are one job (and would share records)."""
    m = build_matrix(
        "t",
        {
            "matrix": {"mode": "cross"},
            "axes": {"validation": ["per_epoch", "split"], "validation_split": [0.2, 0.3]},
        },
    )
    assert _ids(m) == [
        "bs32-per_epoch-float32-cpu",
        "bs32-split-float32-cpu-vs0.2",
        "bs32-split-float32-cpu-vs0.3",
    ]


def test_seed_profile_is_the_walkthroughs_run_its_option_and_a_control():
    """Catches: the seed profile drifting from the walkthrough (batch, epochs, learning rate), or
    losing its end_only arm or A/A control."""
    m = load_profile("seed")
    ids = [v.id for v in m.variants()]
    assert ids == [
        "bs32-per_epoch-float32-cpu-e30",
        "bs32-per_epoch-float32-cpu-e30-control",
        "bs32-end_only-float32-cpu-e30",
    ]
    assert {v.learning_rate for v in m.variants()} == {0.01}
    assert m.settings.repeats >= 5


def test_to_target_profile_times_four_batches_and_both_learning_rates():
    """Catches: a to-target arm missing, the two learning rates sharing one id, or an arm that
    does not validate every epoch."""
    m = load_profile("to-target")
    ids = {v.id for v in m.variants()}
    assert ids == {
        "bs32-per_epoch-float32-cpu-e30",
        "bs32-per_epoch-float32-cpu-e30-control",
        "bs128-per_epoch-float32-cpu-e30",
        "bs512-per_epoch-float32-cpu-e30",
        "bs2048-per_epoch-float32-cpu-e30",
        "bs32-per_epoch-float32-cpu-e30-lr0.001",
    }
    assert m.settings.targets == (0.98,) and m.settings.repeats >= 5


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("epochs=0", "epochs=0: must be an integer >= 1"),
        ("target_accuracy=1", "target_accuracy=1: must be a number in (0, 1)"),
        ("target_accuracy=0", "target_accuracy=0: must be a number in (0, 1)"),
        ("targets=0.98,1.5", "targets=[0.98, 1.5]: must be a list of at most 10 numbers in (0, 1)"),
        ("learning_rate=0", "learning_rate=0: must be a positive finite number"),
        ("learning_rate=-0.01", "learning_rate=-0.01: must be a positive finite number"),
        ("learning_rate=inf", "learning_rate=inf: must be a positive finite number"),
        ("learning_rate=nan", "learning_rate=nan: must be a positive finite number"),
        ("learning_rate=fast", "learning_rate='fast': must be a positive finite number"),
        ("validation=per_epoch,end_only", "validates 'end_only'; use validation = \"per_epoch\""),
    ],
)
def test_to_target_bad_input_names_the_field(override, needle):
    """Catches: a learning rate, target or epoch count the run cannot use reaching the workers,
    or a to-target run whose arms never validate mid-run (nothing to time)."""
    with pytest.raises(MatrixError) as err:
        apply_overrides(load_profile("to-target"), [override])
    assert needle in str(err.value)


def test_overrides_replace_axes_and_run_settings():
    m = apply_overrides(load_profile("quick"), ["batch_size=64,256", "repeats=3", "epochs=2"])
    assert {v.batch_size for v in m.variants()} == {64, 256}
    assert {v.epochs for v in m.variants()} == {2}
    assert m.settings.repeats == 3


def test_validation_settings_show_in_the_id():
    assert Variant(validation="split", validation_split=0.2).id == "bs32-split-float32-cpu-vs0.2"
    assert Variant(validation="freq", validation_freq=3).id == "bs32-freq-float32-cpu-vf3"
    assert (
        Variant(steps_per_execution=4, jit_compile=True).id == "bs32-per_epoch-float32-cpu-spe4-xla"
    )
    assert Variant(validation_split=0.2).id == "bs32-per_epoch-float32-cpu"  # irrelevant here


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"axes": {"batch_sise": [32]}}, "unknown axis 'batch_sise'; allowed axes: ['batch_size'"),
        (
            {"axes": {"validation": ["every_epoch"]}},
            "axes.validation: validation='every_epoch': choose from ['per_epoch', 'end_only', 'split', 'freq']",
        ),
        (
            {"axes": {"precision": ["float16"]}},
            "precision='float16': choose from ['float32', 'mixed_float16', 'mixed_bfloat16']",
        ),
        ({"axes": {"device": ["tpu"]}}, "device='tpu': choose from ['cpu', 'gpu']"),
        ({"axes": {"batch_size": [0]}}, "batch_size=0: must be an integer in 1..60000"),
        ({"axes": {"batch_size": [60001]}}, "batch_size=60001: must be an integer in 1..60000"),
        (
            {"axes": {"batch_size": [58000], "validation": ["split"]}},
            "batch_size=58000: larger than the 54000 training images",
        ),
        ({"axes": {"validation_split": [1.0]}}, "validation_split=1.0: must be in (0, 1)"),
        ({"axes": {"validation_split": [0]}}, "validation_split=0: must be in (0, 1)"),
        ({"axes": {"batch_size": []}}, "axes.batch_size: empty list"),
        (
            {"matrix": {"mode": "diagonal"}},
            "matrix.mode='diagonal': choose from ['cross', 'ablation']",
        ),
        ({"run": {"repeats": 0}}, "run.repeats=0: must be an integer >= 1"),
        ({"run": {"repetitions": 2}}, "unknown run setting(s) ['repetitions']"),
        ({"axis": {}}, "unknown section(s) ['axis']"),
    ],
)
def test_bad_matrix_input_names_the_field_and_the_allowed_values(spec, message):
    with pytest.raises(MatrixError) as err:
        build_matrix("t", spec)
    assert message in str(err.value)


def test_unknown_profile_lists_the_shipped_ones():
    with pytest.raises(
        MatrixError, match=r"unknown profile 'defualt'; choose from \['backends', 'default', "
    ):
        load_profile("defualt")


def test_malformed_toml_is_reported(tmp_path: Path):
    path = tmp_path / "mine.toml"
    path.write_text("[axes]\nbatch_size = [32,\n")
    with pytest.raises(MatrixError, match=r"mine.toml: malformed TOML"):
        load_profile(str(path))


def test_bad_override_is_reported():
    with pytest.raises(MatrixError, match="expected KEY=VALUE"):
        apply_overrides(load_profile("quick"), ["batch_size"])
    with pytest.raises(MatrixError, match="--set colour: unknown"):
        apply_overrides(load_profile("quick"), ["colour=red"])


def test_cli_rejects_bad_input_before_running(capsys):
    from bench.cli import main

    assert main(["run", "--profile", "quick", "--set", "batch_size=-1", "--list"]) == 2
    assert "batch_size=-1: must be an integer in 1..60000" in capsys.readouterr().err


def test_cli_list_prints_variants_without_running(capsys, monkeypatch):
    from bench import envinfo
    from bench.cli import main

    monkeypatch.setattr(envinfo, "available_memory_bytes", lambda: 16 * 2**30)  # the worker cap
    assert main(["run", "--profile", "default", "--list"]) == 0
    out = capsys.readouterr().out
    assert "bs32-per_epoch-float32-cpu\n" in out and "bs32-per_epoch-float32-gpu\n" in out
    assert "bs32-per_epoch-float32-cpu-control\n" in out
    # Catches: --list printing the one-job-after-another model instead of the paired run's, or
    # no estimate at all. The figure is the paired model's for this profile (bench.run.estimate).
    from bench.plan.matrix import load_profile
    from bench.run import estimate, pairs

    matrix = load_profile("default")
    variants = matrix.variants()
    cap = pairs.worker_cap(matrix.settings)
    expected = estimate.estimate(variants, matrix.settings, variants[0].id, cap)
    assert f"expected ~{expected.total_s / 60:.1f} min on a 2-core CPU" in out
    assert expected.minimum_sets and expected.extra_sets  # the stopping rule's sets are in it
    assert f"until budget_s = {matrix.settings.budget_s:g} s of sets" in out
    assert "start-ups side by side" in out
