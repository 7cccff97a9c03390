"""GPU variants without a GPU here: which backend sees what, what skips, what may never run on CPU."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bench import records
from bench.measure import peak
from bench.plan.variant import Variant
from bench.report.markdown import gpu_line
from bench.report.tables import gpu_cell
from bench import envinfo
from bench.run import runner


@pytest.fixture
def installed(monkeypatch):
    monkeypatch.setattr(envinfo, "missing_backend_modules", lambda backend: [])


def test_a_gpu_variant_runs_only_on_a_backend_that_sees_a_gpu(installed):
    seen = {"tensorflow": [], "jax": ["NVIDIA H200"], "torch": ["NVIDIA H200"]}
    assert runner.skip_reason(Variant(backend="jax", device="gpu"), seen) is None
    assert runner.skip_reason(Variant(backend="torch", device="gpu"), seen) is None
    assert "no GPU visible to TensorFlow" in str(runner.skip_reason(Variant(device="gpu"), seen))
    # A backend the probe did not list (not installed there) sees no GPU either.
    assert "no GPU visible to torch" in str(
        runner.skip_reason(Variant(backend="torch", device="gpu"), {"jax": ["A100"]})
    )
    # CPU variants never depend on the GPU list.
    assert runner.skip_reason(Variant(backend="jax"), {}) is None
    assert "not been verified" in str(
        runner.skip_reason(Variant(backend="jax", device="gpu", strategy="mirrored"), seen)
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


def test_a_probe_without_tensorflow_times_its_trials_with_torch(monkeypatch):
    monkeypatch.setattr(peak, "visible_gpus", lambda: {"jax": ["H200"], "torch": ["H200"]})
    calls = []

    def fake_trial(device, dtype, n, budget_s):
        calls.append((device, dtype, n))
        return None if dtype == "float16" and device == "cpu" else 1e12 * n / 1024

    monkeypatch.setitem(peak.TRIALS, "torch", fake_trial)
    got = peak.probe()
    assert got["framework"] == "torch" and got["tensorflow"] is None and got["gpus"] == []
    assert got["gpus_by_backend"] == {"jax": ["H200"], "torch": ["H200"]}
    assert len(calls) == 2 * 3 * 2  # cpu and gpu, three dtypes, two sizes
    assert got["peak_flops_per_s"]["gpu"]["float32"] == 2e12
    assert got["peak_flops_per_s"]["cpu"]["float16"] is None


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
