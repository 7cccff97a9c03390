"""The backend axis: the same model on TensorFlow, JAX and torch, each in its own process.

Backends that are not installed are skipped with the reason (`-ra` prints it): CI installs JAX but
not torch (~5 GB of CUDA wheels for a CPU job).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from bench import envinfo, records
from bench.plan.matrix import apply_overrides, build_matrix, load_profile
from bench.plan.settings import RunSettings
from bench.plan.shard import expected_cost_s, plan_shards
from bench.plan.variant import BACKENDS, Variant, VariantError
from bench.records import read_records
from bench.report import aggregate, markdown
from bench.run import runner, skips

REPO = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).parent / "fixtures" / "records.jsonl"


def require(backend: str) -> None:
    """Skip, saying why, when a backend's modules are not installed in this environment."""
    missing = envinfo.missing_backend_modules(backend)
    if missing:
        pytest.skip(
            f"{backend} backend not installed (no module {', '.join(missing)}): "
            f"pip install 'mnist-bench[{backend}]' to run this test"
        )


# --- the axis: ids, profiles, overrides -------------------------------------------------------


def test_backend_ids_omit_the_default_and_tag_jit_modes():
    assert Variant().id == "bs32-per_epoch-float32-cpu"
    assert Variant(backend="tensorflow").id == "bs32-per_epoch-float32-cpu"
    assert Variant(backend="jax").id == "bs32-per_epoch-float32-cpu-jax"
    assert Variant(backend="torch", jit_compile=True).id == "bs32-per_epoch-float32-cpu-torch-xla"
    assert Variant(backend="jax", jit_compile="auto").id == "bs32-per_epoch-float32-cpu-jax-jitauto"
    assert Variant.from_dict({"batch_size": 64}).backend == "tensorflow"  # old records
    with pytest.raises(VariantError, match=r"backend='mxnet': choose from \['tensorflow', 'jax'"):
        Variant(backend="mxnet")
    with pytest.raises(
        VariantError, match=r"jit_compile='yes': choose from \[false, true, 'auto'\]"
    ):
        Variant(jit_compile="yes")


def test_backend_axis_in_toml_and_set():
    m = build_matrix("t", {"matrix": {"mode": "cross"}, "axes": {"backend": ["tensorflow", "jax"]}})
    assert [v.id for v in m.variants()] == [
        "bs32-per_epoch-float32-cpu",
        "bs32-per_epoch-float32-cpu-jax",
    ]
    m = apply_overrides(load_profile("quick"), ["backend=jax,torch", "jit_compile=auto"])
    assert {(v.backend, v.jit_compile) for v in m.variants()} == {
        ("jax", "auto"),
        ("torch", "auto"),
    }


def test_backends_profile_crosses_batch_backend_and_precision():
    m = load_profile("backends")
    variants = m.variants()
    assert len(variants) == 2 * 3 * 2 and m.settings.repeats == 5
    assert {v.backend for v in variants} == set(BACKENDS)
    assert {v.jit_compile for v in variants} == {"auto"}
    assert {(v.epochs, v.validation, v.device) for v in variants} == {(1, "per_epoch", "cpu")}
    shards = plan_shards(variants, 3, repeats=5)
    assert all(s.variants[0] == variants[0] for s in shards)  # each shard its own baseline
    dealt = sorted(v.id for s in shards for v in s.variants[1:])
    assert dealt == sorted(v.id for v in variants[1:])


def test_shard_costs_follow_the_measured_backend_order():
    def cost(**kw: object) -> float:
        return expected_cost_s(Variant(**kw))  # type: ignore[arg-type]

    jax, tf, torch = (cost(backend=b, jit_compile="auto") for b in ("jax", "tensorflow", "torch"))
    assert jax < tf < torch
    assert cost(backend="jax", jit_compile=False) > torch  # op-by-op JAX is the slowest
    assert cost(backend="torch", jit_compile=True) > cost(backend="tensorflow") + 30  # compiling


# --- skips: decided in the parent, without importing any framework ---------------------------


def test_backend_not_installed_is_skipped_with_the_reason(monkeypatch):
    monkeypatch.setattr(
        envinfo.importlib.util, "find_spec", lambda name: None if name == "torch" else object()
    )
    reason = skips.skip_reason(Variant(backend="torch"), {})
    assert reason == (
        "backend torch is not installed here (no module torch); pip install 'mnist-bench[torch]'"
    )
    assert skips.skip_reason(Variant(backend="jax"), {}) is None


@pytest.mark.parametrize(
    ("variant", "needle"),
    [
        (
            Variant(backend="jax", device="gpu"),
            "no GPU visible to JAX (jax.devices('gpu') has none)",
        ),
        (Variant(backend="torch", strategy="multi_worker"), "only the tensorflow backend has"),
        (Variant(backend="torch", strategy="mirrored"), "no keras.distribution backend for torch"),
        (
            Variant(backend="torch", steps_per_execution=2),
            "`steps_per_execution` must be 1 with the PyTorch backend",
        ),
    ],
    ids=["jax-gpu", "torch-multi_worker", "torch-mirrored", "torch-spe"],
)
def test_combinations_a_backend_cannot_run_are_skipped(variant, needle, monkeypatch):
    monkeypatch.setattr(envinfo, "missing_backend_modules", lambda backend: [])
    assert needle in str(skips.skip_reason(variant, {"tensorflow": ["GPU:0"]}))


def test_tf_only_skips_do_not_apply_to_jax_data_parallel(monkeypatch):
    monkeypatch.setattr(envinfo, "missing_backend_modules", lambda backend: [])
    assert (
        skips.skip_reason(Variant(backend="jax", strategy="mirrored", jit_compile=True), {}) is None
    )
    # "auto" resolves to no XLA under a tf.distribute strategy, so it runs.
    assert skips.skip_reason(Variant(strategy="mirrored", jit_compile="auto"), {}) is None
    assert "XLA cannot compile" in str(
        skips.skip_reason(Variant(strategy="mirrored", jit_compile=True), {})
    )


FRAMEWORK_MODULES = ("tensorflow", "keras", "jax", "jaxlib", "torch")
_MACHINE_INFO = f"""
import json, sys
from bench import envinfo
versions = envinfo.machine_info()["versions"]
imported = [m for m in {FRAMEWORK_MODULES!r} if m in sys.modules]
print(json.dumps({{"versions": versions, "imported": imported}}))
"""


def test_envinfo_lists_every_backend_version_without_importing_it():
    # Bugs caught: envinfo (or a module it pulls in) importing a framework to ask its version,
    # which costs the parent seconds and fixes Keras' backend before a worker chooses it; and a
    # version other than the installed distribution's (e.g. a module's __version__, or None).
    # A fresh interpreter: this one has long imported TensorFlow for other tests.
    proc = subprocess.run(
        [sys.executable, "-c", _MACHINE_INFO],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["imported"] == []

    def installed(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    assert set(FRAMEWORK_MODULES) <= set(got["versions"])
    assert got["versions"] == {p: installed(p) for p in got["versions"]}
    assert got["versions"]["tensorflow"]  # installed here, so listed with its version


# --- reports: backend rows, old records, the method line --------------------------------------


def _with_a_jax_twin() -> list[dict]:
    """The fixture records plus a copy of the baseline's repeats relabelled as a jax run."""
    recs = read_records(FIXTURE)
    base = aggregate.summarize_run(recs).baseline
    twins = []
    for r in recs:
        if r["kind"] == "variant" and r["variant_id"] == base:
            twin = json.loads(json.dumps(r))
            twin["variant"] |= {"backend": "jax", "jit_compile": False}
            twin["variant_id"] = Variant.from_dict(twin["variant"]).id
            twin["backend"] = {
                "name": "jax",
                "version": "0.10.2",
                "jit_compile": {"requested": False, "resolved": False},
                "execution": "eager, op by op (no jax.jit)",
                "warnings": [],
            }
            twins.append(twin)
    return recs + twins


def test_old_records_read_as_tensorflow_and_a_backend_table_appears():
    recs = read_records(FIXTURE)
    summary = aggregate.summarize_run(recs)
    assert {r["backend"] for r in summary.rows} == {"tensorflow"}
    assert "backend" not in summary.comparisons

    recs = _with_a_jax_twin()
    (entry,) = aggregate.summarize_run(recs).comparisons["backend"]
    assert entry["value"] == "jax" and entry["row"]["execution"] == "eager, op by op (no jax.jit)"
    text = markdown.render_markdown(recs)
    assert "### backend" in text
    assert "runs as (vs baseline)" in text
    assert "eager, op by op (no jax.jit) vs tf.function graph, no XLA" in text
    assert (
        "jax 0.10.2: eager, op by op (no jax.jit) (`jit_compile=False` → False; 1 variant)" in text
    )
    assert "for every backend's variants (the probe is TensorFlow's)" in text


def test_a_jit_mode_change_never_passes_for_a_backend_change():
    recs = _with_a_jax_twin()
    for r in recs:
        if r["kind"] == "variant" and r["variant"].get("backend") == "jax":
            r["variant"]["jit_compile"] = True
    assert "backend" not in aggregate.summarize_run(recs).comparisons


# --- real runs, each backend in its own process ----------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_same_model_every_policy_and_a_synchronised_clock_on_each_backend(backend):
    require(backend)
    env = dict(os.environ, KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-m", "tests.backend_check", backend],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["backend"] == backend
    low = {"float32": "float32", "mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}
    for policy, facts in got["policies"].items():
        assert facts["params"] == 118_282, policy
        assert facts["param_bytes"] == 473_128 and facts["param_kib"] == "462.04 KB", policy
        assert facts["variable_dtypes"] == ["float32"], policy
        assert facts["compute_dtypes"] == ["float32", *[low[policy]] * 2, "float32"], policy
        # Adam's two float32 slots per parameter, plus a few scalars (and the loss scale's).
        assert 2 * 473_128 <= facts["optimizer_bytes"] < 2 * 473_128 + 64, policy
        # The clock's argument: Keras hands a per-batch callback Python floats, so the step's
        # outputs were computed (and waited for) before the clock reads the time.
        assert facts["log_types"] == ["float"], policy
        assert facts["steps_timed"] == 8 and facts["loss_finite"], policy
        # With no GPU visible the variables are on the CPU, whatever each backend calls it.
        assert not {"cuda", "gpu"} & set(str(facts["variable_device"]).lower().split(":")), policy
        # jit_compile="auto": jax.jit on JAX; eager on torch; no XLA for TensorFlow on a CPU.
        assert facts["jit_resolved"] is (backend == "jax"), policy
    assert got["policies"]["mixed_float16"]["optimizer"] == "LossScaleOptimizer"
    # Seeding, building and fitting never pulled TensorFlow into a JAX or torch job.
    assert got["tensorflow_imported"] is (backend == "tensorflow")


def test_the_backend_cannot_be_chosen_after_keras_was_imported(monkeypatch):
    from bench.run.worker import choose_backend

    monkeypatch.setitem(sys.modules, "keras", object())
    with pytest.raises(RuntimeError, match=r"Keras was imported before the backend \(jax\)"):
        choose_backend("jax")


def test_backend_warnings_and_non_propagating_logs_are_kept_for_the_record():
    import logging
    import warnings

    from bench.measure.backend import captured_warnings

    dynamo = logging.getLogger("torch._test_dynamo")  # like torch._dynamo: does not propagate
    dynamo.propagate = False
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with captured_warnings() as caught:
            warnings.warn("a python warning\nits second line", UserWarning, stacklevel=1)
            dynamo.warning("hit config.recompile_limit (8)\n   function: 'cond'\n   more")
            for _ in range(2):
                logging.getLogger("jax._test").warning("said twice")
    assert caught == [
        "UserWarning: a python warning — its second line",
        "torch._test_dynamo: hit config.recompile_limit (8) — function: 'cond'",
        "jax._test: said twice",
    ]


def test_a_process_on_another_backend_refuses_the_variant(small_mnist):
    from bench.measure.backend import BackendMismatch
    from bench.measure.train import run_variant

    with pytest.raises(
        BackendMismatch, match="asks for backend 'jax' but Keras runs on 'tensorflow'"
    ):
        run_variant(Variant(backend="jax"), small_mnist)


@pytest.mark.slow
def test_real_one_epoch_runs_through_the_runner_on_jax_and_torch(tmp_path):
    """The CI's real JAX run (plus DataParallel over 2 CPU devices); torch where installed."""
    require("jax")
    out = tmp_path / "results.jsonl"
    variants = [
        Variant(batch_size=100, backend="jax", jit_compile="auto"),
        Variant(batch_size=100, backend="jax", strategy="mirrored", replicas=2),
        Variant(batch_size=100, backend="torch"),
    ]
    settings = RunSettings(repeats=1, warmup_steps=2, timeout_s=600)
    ctx = runner.RunContext(run_id="t", profile="t", settings=settings, hook="tests.hooks:small")
    runner.run_plan(ctx, variants, out, measure_peak=False)
    got = {r["variant_id"]: r for r in records.variant_records(records.read_records(out))}

    jax = got["bs100-per_epoch-float32-cpu-jax-jitauto"]
    assert jax["status"] == "ok", jax.get("reason")
    assert jax["backend"]["name"] == "jax" and jax["backend"]["version"]
    assert jax["backend"]["jit_compile"] == {"requested": "auto", "resolved": True}
    assert jax["backend"]["execution"] == "jax.jit: the whole step compiled by XLA"
    assert jax["model"]["params"] == 118_282 and jax["model"]["param_bytes"] == 473_128
    assert jax["memory"]["peak_rss_bytes"] > 100 * 2**20 and jax["memory"]["gpu_peak_bytes"] is None
    assert jax["timing"]["steps_per_epoch"] == 20 and 0.5 < jax["accuracy"]["test_accuracy"] <= 1
    assert jax["machine"]["versions"]["jax"]

    dp = got["bs100-per_epoch-float32-cpu-jax-mirrored2"]
    assert dp["status"] == "ok", dp.get("reason")
    assert dp["distribution"]["keras_distribution"] == "DataParallel"
    assert (dp["distribution"]["replicas"], dp["distribution"]["per_replica_batch"]) == (2, 50)
    assert len(dp["distribution"]["local_devices"]) == 2

    torch = got["bs100-per_epoch-float32-cpu-torch"]
    if envinfo.missing_backend_modules("torch"):
        assert torch["status"] == "skipped" and "backend torch is not installed" in torch["reason"]
    else:
        assert torch["status"] == "ok", torch.get("reason")
        assert torch["backend"]["jit_compile"] == {"requested": False, "resolved": False}
        assert torch["model"]["params"] == 118_282

    text = markdown.render_markdown(records.read_records(out))
    assert f"jax {jax['backend']['version']}: jax.jit: the whole step compiled by XLA" in text
