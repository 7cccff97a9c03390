"""The reference side of the A/B gate: which commit, its checkout, and its own environment. No TF.

- ``default_ref``: the merge base of HEAD with ``origin/main`` (what a pull request is measured
  against); when that is missing or is HEAD itself (a build of main, where the merge base is the
  commit under test), ``HEAD~1``. A shallow clone whose history stops short of the merge base has
  no REF (never a HEAD~1 that is not the base); the gate then says to fetch the history.
- ``checkout``: ``git worktree add --detach`` into a temporary folder, removed afterwards.
- ``build_env``: a virtual environment with REF's own dependencies, so a PR that changes a pin is
  measured with each side's pins: ``uv venv`` + ``uv pip install`` (REF's ``requirements.lock`` when
  it has one, then REF itself without dependencies; else REF with the ranges in its pyproject).
  Without uv: ``python -m venv`` + pip, the same steps, slower.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ENTRY_POINT = "bench/gate_probe.py"
LOCK_FILE = "requirements.lock"
UPSTREAM = "origin/main"
GIT_TIMEOUT_S = 60
INSTALL_TIMEOUT_S = 1800
STAMP = "mnist-bench-ref.json"


class RefError(RuntimeError):
    """REF cannot be checked out or installed; the message says what failed."""


def git(*args: str, cwd: Path | str | None = None) -> str | None:
    """git's stdout (stripped), or None when git is missing or the command fails."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def repo_root(cwd: Path | str | None = None) -> Path | None:
    """The top of the git work tree containing `cwd`, or None outside one (or without git)."""
    top = git("rev-parse", "--show-toplevel", cwd=cwd)
    return Path(top) if top else None


def resolve(ref: str, cwd: Path | str | None = None) -> str | None:
    """The full commit id `ref` names, or None."""
    return git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=cwd)


def default_ref(cwd: Path | str | None = None) -> tuple[str, str] | None:
    """(commit, how it was chosen) for `regress` without --against, or None if neither exists."""
    head = resolve("HEAD", cwd)
    if head is None:
        return None
    if resolve(UPSTREAM, cwd):
        base = git("merge-base", "HEAD", UPSTREAM, cwd=cwd)
        if base and base != head:
            return base, f"merge base of HEAD and {UPSTREAM}"
        if base is None and is_shallow(cwd):
            return None  # the base is beyond the fetched history: HEAD~1 would be a wrong REF
    parent = resolve("HEAD~1", cwd)
    if parent:
        why = "HEAD~1 (HEAD is on main)" if resolve(UPSTREAM, cwd) else f"HEAD~1 (no {UPSTREAM})"
        return parent, why
    return None


def is_shallow(cwd: Path | str | None = None) -> bool:
    """Whether this clone's history is cut short (``git clone --depth``, CI's default checkout)."""
    return git("rev-parse", "--is-shallow-repository", cwd=cwd) == "true"


def has_entry_point(commit: str, cwd: Path | str | None = None) -> bool:
    """Whether `commit` has the gate's stable entry point (bench/gate_probe.py)."""
    return git("cat-file", "-e", f"{commit}:{ENTRY_POINT}", cwd=cwd) is not None


def short(commit: str) -> str:
    return commit[:10]


@contextlib.contextmanager
def checkout(commit: str, cwd: Path | str | None = None) -> Iterator[Path]:
    """A detached ``git worktree`` of `commit` in a temporary folder, removed on exit."""
    parent = Path(tempfile.mkdtemp(prefix="mnist-bench-ref-"))
    path = parent / "tree"
    if git("worktree", "add", "--detach", str(path), commit, cwd=cwd) is None:
        shutil.rmtree(parent, ignore_errors=True)
        raise RefError(f"git worktree add of {short(commit)} failed")
    try:
        yield path
    finally:
        git("worktree", "remove", "--force", str(path), cwd=cwd)
        shutil.rmtree(parent, ignore_errors=True)
        git("worktree", "prune", cwd=cwd)


def find_uv() -> list[str] | None:
    """The uv command: $UV (as nox sets it), `uv` on PATH, the `uv` package's binary; or None."""
    named = os.environ.get("UV")
    if named and shutil.which(named):
        return [named]
    on_path = shutil.which("uv")
    if on_path:
        return [on_path]
    try:
        from uv import find_uv_bin  # type: ignore[import-not-found]

        return [find_uv_bin()]
    except (ImportError, FileNotFoundError):
        return None


@dataclass(frozen=True)
class RefEnv:
    """A built environment for one commit: its interpreter, how it was built and how long it took."""

    python: str
    installer: str
    from_lock: bool
    build_s: float
    reused: bool


def _fingerprint(tree: Path, commit: str, python: str) -> str:
    lock = tree / LOCK_FILE
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:16] if lock.is_file() else "none"
    # The real interpreter: after nox rebuilds the working tree's env with another Python, REF's is
    # rebuilt with it too, instead of the A/B comparing two Pythons.
    return f"{commit}:{digest}:{os.path.realpath(python)}"


def _run(cmd: list[str], log: Callable[[str], None]) -> None:
    log("  $ " + " ".join(cmd))
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RefError(f"{cmd[0]} failed: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-1500:]
        raise RefError(f"`{' '.join(cmd[:4])} …` exited {done.returncode}: {tail}")


def build_env(
    tree: Path,
    commit: str,
    env_dir: Path,
    *,
    python: str = sys.executable,
    log: Callable[[str], None] = print,
) -> RefEnv:
    """Install the checkout `tree` of `commit` into `env_dir` (reused when built for the same commit)."""
    start = time.perf_counter()
    bin_python = env_dir / "bin" / "python"
    stamp = env_dir / STAMP
    fingerprint = _fingerprint(tree, commit, python)
    lock = tree / LOCK_FILE
    if bin_python.exists() and stamp.is_file():
        old = json.loads(stamp.read_text())
        if old.get("fingerprint") == fingerprint:
            return RefEnv(
                str(bin_python),
                old["installer"],
                old["from_lock"],
                time.perf_counter() - start,
                True,
            )
    if env_dir.exists():
        shutil.rmtree(env_dir)
    uv = find_uv()
    if uv:
        installer = "uv"
        _run([*uv, "venv", "--quiet", "--python", python, str(env_dir)], log)
        # Precompiled: each gate round is a fresh process importing TensorFlow (noxfile.py says why).
        pip = [*uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", str(bin_python)]
    else:
        installer = "pip"
        _run([python, "-m", "venv", str(env_dir)], log)
        pip = [str(bin_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if lock.is_file():
        _run([*pip, "-r", str(lock)], log)
        _run([*pip, "--no-deps", str(tree)], log)
    else:
        _run([*pip, str(tree)], log)
    record = {"fingerprint": fingerprint, "installer": installer, "from_lock": lock.is_file()}
    stamp.write_text(json.dumps(record) + "\n")
    return RefEnv(
        str(bin_python), installer, lock.is_file(), time.perf_counter() - start, reused=False
    )
