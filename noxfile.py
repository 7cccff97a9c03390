"""Sessions: `nox -s tests`, `bench`, `regress`, `benchmark`, `cli`, `lint`, `lock` (see README.md).

tests, bench, regress, benchmark, cli and lint share one environment, `.nox/mnist-bench`, so
TensorFlow is installed once (CI runs `lint`, `tests`, then `regress`). It is built with the Python
running nox when pyproject.toml's classifiers list it, else with the newest listed one on PATH;
with uv when uv is available (on PATH, $UV, or the `uv` package beside nox), else with venv + pip;
and from `requirements.lock` when that file exists (`nox -s lock` recompiles it with uv for every
listed Python); `MNIST_BENCH_NO_LOCK=1` installs from the pyproject's ranges instead. Each report
states whether its environment matched the lock.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"
nox.options.default_venv_backend = "uv|virtualenv"
# The Pythons TensorFlow's pinned range ships wheels for: pyproject.toml's classifiers, read once here.
PYTHONS = nox.project.python_versions(nox.project.load_toml("pyproject.toml"))
SHARED = Path(".nox/mnist-bench")
LOCK = Path("requirements.lock")
STAMP = SHARED / "mnist-bench-env.txt"
CACHE_ENV = {"MNIST_BENCH_CACHE": ".cache"}
RECIPE = b"uv --compile-bytecode"  # how _shared_env builds; change it to rebuild existing envs
LOCK_EXTRAS = ("test", "jax", "lint")  # what requirements.lock pins beside the dependencies


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


def _probe(python: str | Path) -> tuple[str, str] | None:
    """`python`'s real executable and full version ("3.12.1"), or None when it does not run.

    A pyenv shim for a version that is not selected exits non-zero; its answer is skipped.
    """
    code = (
        "import os, platform, sys\n"
        "print(os.path.realpath(sys.executable))\n"
        "print(platform.python_version())"
    )
    try:
        done = subprocess.run(
            [str(python), "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.splitlines()  # one a line, as a path may hold spaces
    if done.returncode != 0 or len(lines) != 2:
        return None
    return lines[0], lines[1]


def _interpreter(session: nox.Session) -> tuple[str, str]:
    """The Python to build the shared env with (a real executable, not a venv's) and its version.

    nox's own when pyproject.toml lists it (`pipx run nox` / `uvx nox` run on Ubuntu 24.04's 3.12
    or Debian 13's 3.13), else the newest listed `pythonX.Y` on PATH that runs.
    """
    if f"{sys.version_info.major}.{sys.version_info.minor}" in PYTHONS:
        # realpath: under pipx or uvx, sys.executable is a throwaway venv's link to the real one.
        return os.path.realpath(sys.executable), platform.python_version()
    for minor in reversed(PYTHONS):
        found = shutil.which(f"python{minor}")
        probed = _probe(found) if found else None
        if probed and probed[1].startswith(f"{minor}."):
            return probed
    session.error(
        f"mnist-bench needs Python {', '.join(PYTHONS)} (those TensorFlow ships wheels for); nox "
        f"runs on {platform.python_version()} and no python{PYTHONS[0]} … python{PYTHONS[-1]} "
        f"on PATH runs. Install one, or let uv fetch one: `uvx --python {PYTHONS[-1]} nox -s ...`"
    )


def _shared_env(session: nox.Session) -> dict[str, str]:
    """Create or update .nox/mnist-bench; the environment variables that select it for session.run."""
    uv = _uv()
    base, version = _interpreter(session)
    use_lock = LOCK.is_file() and not os.environ.get("MNIST_BENCH_NO_LOCK")
    # RECIPE is part of the stamp so that an environment built the old way is rebuilt, and the
    # Python's version so that running nox with another Python rebuilds it with that one.
    inputs = [
        RECIPE,
        f"python {version}".encode(),
        Path("pyproject.toml").read_bytes(),
        LOCK.read_bytes() if use_lock else b"no lock",
    ]
    wanted = hashlib.sha256(b"\0".join(inputs)).hexdigest()
    python = SHARED / "bin" / "python"
    if not (python.exists() and STAMP.is_file() and STAMP.read_text().strip() == wanted):
        session.log(f"building {SHARED} with Python {version} and {'uv' if uv else 'venv + pip'}")
        built_with = _probe(python) if python.exists() else None
        if python.exists() and (built_with is None or built_with[1] != version):
            # Another Python's packages would stay behind in lib/pythonX.Y; a broken env goes too.
            shutil.rmtree(SHARED)
        if uv:
            session.run(
                uv,
                "venv",
                "--quiet",
                "--allow-existing",
                "--python",
                base,
                str(SHARED),
                external=True,
            )
            # uv writes no .pyc by default (pip does), and PYTHONDONTWRITEBYTECODE=1 machines never
            # cache one: every job's fresh process would compile TensorFlow's sources again.
            pip = [uv, "pip", "install", "--compile-bytecode", "--python", str(python)]
        else:
            if not python.exists():
                session.run(base, "-m", "venv", str(SHARED), external=True)
            pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
        if use_lock:
            session.run(*pip, "-r", str(LOCK), external=True)
            session.run(*pip, "--no-deps", "-e", ".", external=True)
        else:
            session.run(*pip, "-e", f".[{','.join(LOCK_EXTRAS)}]", external=True)
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


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """Run the pytest suite (fetches real MNIST once into .cache/).

    With JAX (a small CPU wheel) so a real JAX variant runs; without torch (~5 GB of CUDA wheels for
    a CPU job), whose tests skip and say so. `nox -s tests -- ...` passes options to pytest.
    """
    # Micro-benchmarks are `nox -s benchmark`'s job; timing them here would only slow CI down.
    _run(session, "pytest", "--ignore=tests/benchmarks", *session.posargs)


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """Measure the `default` matrix on real MNIST; writes reports/<run>/results.jsonl + REPORT.md."""
    _run(session, "mnist-bench", "run", *(session.posargs or ["--profile", "default"]))


@nox.session(venv_backend="none")
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


@nox.session(venv_backend="none")
def regress(session: nox.Session) -> None:
    """Step-time gate, A/B against the merge base (0 pass, 1 regression, 2 cannot judge)."""
    _run(session, "mnist-bench", "regress", *session.posargs)


@nox.session(venv_backend="none", default=False)
def cli(session: nox.Session) -> None:
    """Any mnist-bench command in the shared environment: `nox -s cli -- merge A.jsonl B.jsonl -o ALL`."""
    _run(session, "mnist-bench", *session.posargs)


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    """ruff lint + format check, with the ruff requirements.lock pins (the `lint` extra)."""
    _run(session, "ruff", "check", ".")
    _run(session, "ruff", "format", "--check", ".")


@nox.session(default=False)
def lock(session: nox.Session) -> None:
    """Recompile requirements.lock with uv: the dependencies and LOCK_EXTRAS, for every listed Python.

    `--universal` from the oldest listed Python gives each package the markers that pick its pin on
    every later one (e.g. numpy 2.2 on 3.10, where newer numpy has no wheels).
    """
    uv = _uv()
    if uv is None:
        session.install("uv")
        uv = "uv"
    extras = [arg for extra in LOCK_EXTRAS for arg in ("--extra", extra)]
    session.run(
        uv, "pip", "compile", "--quiet", "pyproject.toml", *extras, "--universal",
        "--python-version", PYTHONS[0], "-o", str(LOCK), external=True,
    )  # fmt: skip
