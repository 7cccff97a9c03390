"""One line per finished job, with headline figures and an ETA (no TensorFlow)."""

from __future__ import annotations

from typing import Any

from bench.records import first_line, gpus_seen, probe_ok


def _eta(elapsed_s: float, index: int, total: int) -> str:
    remaining = (total - index) * elapsed_s / index
    minutes, seconds = divmod(round(remaining), 60)
    return f"{minutes}m{seconds:02d}s"


def record_line(record: dict[str, Any], index: int, total: int, elapsed_s: float) -> str:
    """e.g. '[3/10] bs128-per_epoch-float32-cpu r0 ok step 1.21 ms (p10 1.10, p90 1.40) ...'."""
    head = f"[{index}/{total}] {record['variant_id']} r{record['repeat']} {record['status']}"
    if record["status"] == "ok":
        step = record["summary"]["step_ms"]
        acc = record["accuracy"]
        head += (
            f" step {step['median']:.3f} ms (p10 {step['p10']:.3f}, p90 {step['p90']:.3f})"
            f" test acc {acc['test_accuracy']:.4f} job {record['job_s']:.0f} s"
        )
    else:
        head += f": {first_line(record['reason'])}"
    return f"{head} | ETA {_eta(elapsed_s, index, total)}"


def print_record(record: dict[str, Any], index: int, total: int, elapsed_s: float) -> None:
    print(record_line(record, index, total, elapsed_s), flush=True)


def probe_line(probe: dict[str, Any]) -> str:
    p = probe["probe"]
    if not probe_ok(probe):
        return (
            f"probe ({p['phase']}): {p['status']}: {first_line(p['reason'])}; "
            "the run goes on without this point's peak"
        )
    gpus = ", ".join(f"{b} {names or 'none'}" for b, names in gpus_seen(probe).items())
    peaks = ", ".join(
        f"{dev} {dt} {v / 1e9:.1f}"
        for dev, d in p["peak_flops_per_s"].items()
        for dt, v in d.items()
        if v
    )
    return (
        f"probe ({p.get('phase', 'start')}): {probe['machine']['cpu_model']} "
        f"x{probe['machine']['cpu_cores']}; GPUs {gpus}; "
        f"best matmul GFLOP/s: {peaks or 'not measured'}"
    )
