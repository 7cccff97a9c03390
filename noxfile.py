"""Sessions: `nox -s tests`, `bench`, `lint`, `benchmark`, `regress` (see README.md)."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"
PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the pytest suite (fetches real MNIST once into .cache/).

    With JAX (a small CPU wheel) so a real JAX variant runs; without torch (~5 GB of CUDA wheels for
    a CPU job), whose tests skip and say so. `nox -s tests -- ...` passes options to pytest.
    """
    session.install("-e", ".[test,jax]")
    # Micro-benchmarks are `nox -s benchmark`'s job; timing them here would only slow CI down.
    session.run(
        "pytest",
        "--ignore=tests/benchmarks",
        *session.posargs,
        env={"MNIST_BENCH_CACHE": ".cache"},
    )


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Measure the `default` matrix on real MNIST; writes reports/<run>/results.jsonl + REPORT.md."""
    session.install("-e", ".")
    args = session.posargs or ["--profile", "default"]
    session.run("mnist-bench", "run", *args)


@nox.session(python=PYTHON)
def benchmark(session: nox.Session) -> None:
    """pytest-benchmark micro-benchmarks of one train step, saved to .benchmarks/.

    Compare with a saved run of this machine: `nox -s benchmark -- --benchmark-compare
    --benchmark-compare-fail=median:15%`.
    """
    session.install("-e", ".[test]")
    session.run(
        "pytest",
        "tests/benchmarks",
        "--benchmark-only",
        "--benchmark-autosave",
        *session.posargs,
        env={"MNIST_BENCH_CACHE": ".cache"},
    )


@nox.session(python=PYTHON)
def regress(session: nox.Session) -> None:
    """Step-time regression gate vs reports/baseline/gate.json (0 pass, 1 regression, 2 unjudged)."""
    session.install("-e", ".")
    session.run("mnist-bench", "regress", *session.posargs, env={"MNIST_BENCH_CACHE": ".cache"})


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff lint + format check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
