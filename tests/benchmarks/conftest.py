"""Micro-benchmarks run only with --benchmark-only (`nox -s benchmark`), each TF pool on one thread."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip these unless asked for: a plain `pytest` run should not spend minutes timing steps."""
    if config.getoption("benchmark_only", default=False):
        return
    skip = pytest.mark.skip(reason="micro-benchmark: run `nox -s benchmark`")
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def one_thread() -> dict[str, int]:
    """TF's pools on one thread each, as the regression gate measures (less noise, any core count)."""
    from bench.measure import threads

    try:
        threads.pin_threads(1)
    except ValueError as exc:
        pytest.skip(str(exc))
    return threads.thread_settings()
