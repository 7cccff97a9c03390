"""Sessions: `nox -s tests`, `bench`, `regress`, `benchmark`, `cli`, `lint`, `lock` (see README.md).

tests, bench, regress, benchmark and cli share one environment, `.nox/mnist-bench`, so TensorFlow is
installed once (CI runs `tests` then `regress`). It is built with uv when uv is available (on PATH,
$UV, or the `uv` package beside nox), else with venv + pip, and from `requirements.lock` when that
file exists (`nox -s lock` recompiles it with uv); `MNIST_BENCH_NO_LOCK=1` installs from the
pyproject's ranges instead. Each report states whether its environment matched the lock.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"
nox.options.default_venv_backend = "uv|virtualenv"
PYTHON = "3.11"
SHARED = Path(".nox/mnist-bench")
LOCK = Path("requirements.lock")
STAMP = SHARED / "mnist-bench-env.txt"
CACHE_ENV = {"MNIST_BENCH_CACHE": ".cache"}
RECIPE = b"uv --compile-bytecode"  # how _shared_env builds; change it to rebuild existing envs


def _uv() -> str | None:
    """uv as nox finds it: $UV, PATH, or the uv package installed beside nox."""
    for name in (os.environ.get("UV"), "uv"):
        if name and shutil.which(name):
            return shutil.which(name)
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return None


def _python311() -> str:
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    found = shutil.which(f"python{PYTHON}")
    if not found:
        raise RuntimeError(f"no Python {PYTHON} interpreter found")
    return found


def _shared_env(session: nox.Session) -> dict[str, str]:
    """Create or update .nox/mnist-bench; the environment variables that select it for session.run."""
    uv = _uv()
    use_lock = LOCK.is_file() and not os.environ.get("MNIST_BENCH_NO_LOCK")
    # RECIPE is part of the stamp so that an environment built the old way is rebuilt.
    inputs = [
        RECIPE,
        Path("pyproject.toml").read_bytes(),
        LOCK.read_bytes() if use_lock else b"no lock",
    ]
    wanted = hashlib.sha256(b"\0".join(inputs)).hexdigest()
    python = SHARED / "bin" / "python"
    if not (python.exists() and STAMP.is_file() and STAMP.read_text().strip() == wanted):
        session.log(f"building {SHARED} with {'uv' if uv else 'venv + pip'}")
        if uv:
            session.run(
                uv,
                "venv",
                "--quiet",
                "--allow-existing",
                "--python",
                PYTHON,
                str(SHARED),
                external=True,
            )
            # uv writes no .pyc by default (pip does), and PYTHONDONTWRITEBYTECODE=1 machines never
            # cache one: every job's fresh process then compiled TensorFlow's sources again
            # (`import tensorflow` 13-16 s instead of ~5 s on the 2-core dev machine).
            pip = [uv, "pip", "install", "--compile-bytecode", "--python", str(python)]
        else:
            if not python.exists():
                session.run(_python311(), "-m", "venv", str(SHARED), external=True)
            pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
        if use_lock:
            session.run(*pip, "-r", str(LOCK), external=True)
            session.run(*pip, "--no-deps", "-e", ".", external=True)
        else:
            session.run(*pip, "-e", ".[test,jax]", external=True)
        STAMP.write_text(wanted + "\n")
    env = {
        "VIRTUAL_ENV": str(SHARED.resolve()),
        "PATH": os.pathsep.join([str((SHARED / "bin").resolve()), os.environ.get("PATH", "")]),
        **CACHE_ENV,
    }
    if uv:
        env["UV"] = uv  # the A/B gate builds REF's environment with the same uv
    return env


def _run(session: nox.Session, tool: str, *args: str) -> None:
    env = _shared_env(session)
    session.run(str(SHARED / "bin" / tool), *args, env=env, external=True)


@nox.session(python=PYTHON, venv_backend="none")
def tests(session: nox.Session) -> None:
    """Run the pytest suite (fetches real MNIST once into .cache/).

    With JAX (a small CPU wheel) so a real JAX variant runs; without torch (~5 GB of CUDA wheels for
    a CPU job), whose tests skip and say so. `nox -s tests -- ...` passes options to pytest.
    """
    # Micro-benchmarks are `nox -s benchmark`'s job; timing them here would only slow CI down.
    _run(session, "pytest", "--ignore=tests/benchmarks", *session.posargs)


@nox.session(python=PYTHON, venv_backend="none")
def bench(session: nox.Session) -> None:
    """Measure the `default` matrix on real MNIST; writes reports/<run>/results.jsonl + REPORT.md."""
    _run(session, "mnist-bench", "run", *(session.posargs or ["--profile", "default"]))


@nox.session(python=PYTHON, venv_backend="none")
def benchmark(session: nox.Session) -> None:
    """pytest-benchmark micro-benchmarks of one train step, saved to .benchmarks/.

    Compare with a saved run of this machine: `nox -s benchmark -- --benchmark-compare
    --benchmark-compare-fail=median:15%`.
    """
    _run(
        session,
        "pytest",
        "tests/benchmarks",
        "--benchmark-only",
        "--benchmark-autosave",
        *session.posargs,
    )


@nox.session(python=PYTHON, venv_backend="none")
def regress(session: nox.Session) -> None:
    """Step-time gate, A/B against the merge base (0 pass, 1 regression, 2 cannot judge)."""
    _run(session, "mnist-bench", "regress", *session.posargs)


@nox.session(python=PYTHON, venv_backend="none", default=False)
def cli(session: nox.Session) -> None:
    """Any mnist-bench command in the shared environment: `nox -s cli -- merge A.jsonl B.jsonl -o ALL`."""
    _run(session, "mnist-bench", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff lint + format check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON, default=False)
def lock(session: nox.Session) -> None:
    """Recompile requirements.lock from pyproject.toml (dependencies + the test and jax extras) with uv."""
    uv = _uv()
    if uv is None:
        session.install("uv")
        uv = "uv"
    session.run(
        uv, "pip", "compile", "--quiet", "pyproject.toml", "--extra", "test", "--extra", "jax", "--universal",
        "--python-version", PYTHON, "-o", str(LOCK), external=True,
    )  # fmt: skip
