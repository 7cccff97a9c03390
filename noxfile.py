"""Sessions: `nox -s tests`, `nox -s bench`, `nox -s lint` (see README.md)."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"
PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the pytest suite (fetches real MNIST once into .cache/)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs, env={"MNIST_BENCH_CACHE": ".cache"})


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Measure the `default` matrix on real MNIST; writes reports/<run>/results.jsonl + REPORT.md."""
    session.install("-e", ".")
    args = session.posargs or ["--profile", "default"]
    session.run("mnist-bench", "run", *args)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff lint + format check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
