"""GPU variants without a GPU here: which backend sees what, what skips, what may never run on CPU."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from bench import envinfo, records
from bench.measure import peak
from bench.plan.variant import Variant
from bench.report.markdown import gpu_line
from bench.report.tables import gpu_cell
from bench.run import skips


@pytest.fixture
def installed(monkeypatch):
    monkeypatch.setattr(envinfo, "missing_backend_modules", lambda backend: [])


def test_a_gpu_variant_runs_only_on_a_backend_that_sees_a_gpu(installed):
    seen = {"tensorflow": [], "jax": ["NVIDIA H200"], "torch": ["NVIDIA H200"]}
    assert skips.skip_reason(Variant(backend="jax", device="gpu"), seen) is None
    assert skips.skip_reason(Variant(backend="torch", device="gpu"), seen) is None
    assert "no GPU visible to TensorFlow" in str(skips.skip_reason(Variant(device="gpu"), seen))
    # A backend the probe did not list (not installed there) sees no GPU either.
    assert "no GPU visible to torch" in str(
        skips.skip_reason(Variant(backend="torch", device="gpu"), {"jax": ["A100"]})
    )
    # CPU variants never depend on the GPU list.
    assert skips.skip_reason(Variant(backend="jax"), {}) is None
    assert "not been verified" in str(
        skips.skip_reason(Variant(backend="jax", device="gpu", strategy="mirrored"), seen)
    )


def test_gpus_seen_reads_old_and_new_probes():
    assert records.gpus_seen({"probe": {"gpus": ["GPU:0"]}}) == {"tensorflow": ["GPU:0"]}
    new = {"probe": {"gpus": [], "gpus_by_backend": {"tensorflow": [], "jax": ["H200"]}}}
    assert records.gpus_seen(new) == {"tensorflow": [], "jax": ["H200"]}


def test_the_header_names_each_gpu_and_who_saw_it():
    assert gpu_line({"gpus": []}) == "none visible to TensorFlow"  # probes before backends
    assert gpu_line({"gpus": ["Tesla T4"]}) == "Tesla T4"
    assert gpu_line({"gpus": [], "gpus_by_backend": {"tensorflow": [], "jax": []}}) == (
        "none visible to TensorFlow, JAX"
    )
    both = {"gpus": [], "gpus_by_backend": {"jax": ["NVIDIA H200"], "torch": ["NVIDIA H200"]}}
    assert gpu_line(both) == "NVIDIA H200 (seen by JAX, torch); TensorFlow is not installed"


@pytest.mark.parametrize(
    ("installed_backends", "expected"),
    [(("jax", "torch"), "torch"), (("tensorflow", "jax", "torch"), "tensorflow")],
    ids=["no-tensorflow", "all"],
)
def test_the_probe_times_its_trials_on_tensorflow_else_torch_and_keeps_each_best(
    monkeypatch, installed_backends, expected
):
    # Bugs caught: a probe without TensorFlow that measures nothing (or imports it and crashes), a
    # machine with TensorFlow probed on torch (peaks no longer comparable with earlier reports),
    # the GPU trials skipped although the trial framework sees a GPU, and a "best" that is the
    # last size's figure or lost when one size is unsupported. The trials' arithmetic against a
    # real framework is the next test's; here each framework's trial is a call record.
    gpus = {b: ["H200"] for b in installed_backends}
    monkeypatch.setattr(peak, "visible_gpus", lambda: gpus)
    calls: dict[str, list[tuple[str, str, int]]] = {"tensorflow": [], "torch": []}
    flops = {  # (device, dtype, n) → figure; the smaller size is the faster one for float32
        ("cpu", "float32", 1024): 3e11,
        ("cpu", "float32", 2048): 2e11,
        ("cpu", "bfloat16", 1024): 1e11,
        ("cpu", "bfloat16", 2048): None,  # unsupported at the last size only: the first is best
        ("gpu", "float32", 2048): 5e13,
    }

    def recording(framework):
        def trial(device, dtype, n, budget_s):
            calls[framework].append((device, dtype, n))
            return flops.get((device, dtype, n))

        return trial

    for framework in calls:
        monkeypatch.setitem(peak.TRIALS, framework, recording(framework))
    got = peak.machine_probe()
    assert got["framework"] == expected
    every = [(d, t, n) for d in ("cpu", "gpu") for t in ("float32", "bfloat16", "float16")
             for n in peak.MATMUL_SIZES]  # fmt: skip
    assert calls == {f: every if f == expected else [] for f in calls}
    assert got["gpus_by_backend"] == gpus
    assert got["gpus"] == gpus.get("tensorflow", [])
    assert (got["tensorflow"] is None) is (expected == "torch")
    assert got["peak_flops_per_s"] == {
        "cpu": {"float32": 3e11, "bfloat16": 1e11, "float16": None},
        "gpu": {"float32": 5e13, "bfloat16": None, "float16": None},
    }


@pytest.mark.parametrize("framework", ["tensorflow", "torch"])
def test_a_probe_trial_times_a_materialised_matmul_and_counts_its_flops(framework, monkeypatch):
    """Bugs: a trial whose timed call returns a device tensor, so the clock would stop at dispatch
    (before the device finished); a wrong FLOP count or time unit; or a trial that swallows its
    framework's error and returns None for a dtype every CPU supports."""
    if envinfo.missing_backend_modules(framework):
        pytest.skip(f"{framework} is not installed here: pip install 'mnist-bench[{framework}]'")
    results = []

    def best_time(run, budget_s):
        results.append(run())  # the real matmul, once: what the clock would wait for
        return 0.5

    monkeypatch.setattr(peak, "_best_time", best_time)
    n = 256
    assert peak.TRIALS[framework]("cpu", "float32", n, 0.05) == 2 * n**3 / 0.5
    (value,) = results
    assert isinstance(value, float | np.floating), type(value)  # copied to the host
    assert value > 0  # a sum of products of numbers in [0, 1)


def test_best_time_is_the_fastest_timed_call_after_the_warm_up(monkeypatch):
    """Bugs: the warm-up (trace) call timed, the mean or the last call taken instead of the
    fastest, or fewer than 3 calls when the budget is spent."""
    clock = SimpleNamespace(now=0.0)
    durations = iter([0.125, 0.5, 0.25, 0.375, 0.3125])  # the first is the warm-up (exact binary)

    def run():
        clock.now += next(durations)

    monkeypatch.setattr(peak, "time", SimpleNamespace(perf_counter=lambda: clock.now))
    assert peak._best_time(run, budget_s=0.0) == 0.25  # 3 calls though the budget is spent
    assert next(durations) == 0.3125  # and no fourth


def test_gpu_memory_is_shown_in_mib_and_dashed_where_none_was_measured():
    assert gpu_cell({"gpu_peak_bytes": 3 * 2**20}) == "3.0"
    assert gpu_cell({"gpu_peak_bytes": None}) == gpu_cell({}) == "–"


def _model_on(device: str):
    value = SimpleNamespace(device=device)
    return SimpleNamespace(weights=[SimpleNamespace(value=value)])


@pytest.mark.parametrize("where", ["cpu", "cuda:0"])
def test_a_gpu_variant_whose_variables_are_on_the_cpu_fails(monkeypatch, where):
    from bench.measure import backend

    monkeypatch.setattr(backend.keras.backend, "backend", lambda: "torch")
    assert backend.variable_device(_model_on(where)) == where
    backend.check_device(_model_on(where), "cpu")  # a CPU variant is never refused
    if where == "cpu":
        with pytest.raises(backend.WrongDevice, match="asks for the GPU but torch put"):
            backend.check_device(_model_on(where), "gpu")
    else:
        backend.check_device(_model_on(where), "gpu")
