"""Who measured: machine, versions and commit, gathered without importing any framework."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

# Every Keras backend's packages are listed; those not installed are recorded as None.
PACKAGES = ("tensorflow", "keras", "jax", "jaxlib", "torch", "numpy", "pandas", "mnist-bench")
# The modules each backend needs importable (checked without importing them).
BACKEND_MODULES = {"tensorflow": ("tensorflow",), "jax": ("jax", "jaxlib"), "torch": ("torch",)}
LOCK_FILE = "requirements.lock"  # compiled by uv from pyproject.toml (noxfile.py: `nox -s lock`)
SOURCE_ROOT = Path(__file__).resolve().parents[1]


def package_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def missing_backend_modules(backend: str) -> list[str]:
    """The modules a Keras backend needs that this environment lacks (found, never imported)."""
    return [m for m in BACKEND_MODULES[backend] if importlib.util.find_spec(m) is None]


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo, else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """Cores this process may run on (affinity), which is what TF's thread pools see."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _meminfo_bytes(key: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def memory_bytes() -> int | None:
    """Total RAM from /proc/meminfo."""
    return _meminfo_bytes("MemTotal")


def available_memory_bytes() -> int | None:
    """RAM the kernel could give new processes now (MemAvailable), or None where it cannot say."""
    return _meminfo_bytes("MemAvailable")


def git_commit(cwd: str | os.PathLike[str] | None = None) -> dict[str, object]:
    """HEAD commit and whether the work tree had uncommitted changes."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"id": commit, "dirty": bool(status) if status is not None else None}


def _lock_pins(text: str) -> dict[str, str]:
    """{normalised name: version} of the `name==version [; marker]` lines whose marker holds here."""
    try:
        from packaging.markers import Marker
    except ImportError:  # without packaging, lines with a marker are left out
        Marker = None  # type: ignore[assignment,misc]
    pins = {}
    for line in text.splitlines():
        spec, _, marker = line.partition(";")
        if "==" not in spec or line.startswith((" ", "#")):
            continue
        if marker.strip() and (Marker is None or not Marker(marker.strip()).evaluate()):
            continue
        name, version = (part.strip() for part in spec.split("==", 1))
        pins[name.lower().replace("_", "-").replace(".", "-")] = version
    return pins


def lock_status(root: Path = SOURCE_ROOT) -> dict[str, object]:
    """Whether this environment is what the lock pins: every pin installed at its version.

    Read from what is installed, not from how it was installed, so it holds however the environment
    was made (nox, uv, pip). ``from_lock`` is None when there is no lock file beside the source.
    """
    path = root / LOCK_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {"lock": None, "from_lock": None}
    pins = _lock_pins(text)
    differ = []
    for name, pinned in sorted(pins.items()):
        installed = package_version(name)
        if installed != pinned:
            differ.append(f"{name} {installed or 'missing'} (lock {pinned})")
    return {
        "lock": LOCK_FILE,
        "lock_sha256": hashlib.sha256(text.encode()).hexdigest()[:12],
        "pins": len(pins),
        "from_lock": not differ,
        "differ": differ[:5],
    }


def machine_info() -> dict[str, object]:
    """Host facts recorded with every result."""
    return {
        "hostname": platform.node(),
        "system": platform.system(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_cores": usable_cores(),
        "memory_bytes": memory_bytes(),
        "python": platform.python_version(),
        "versions": {p: package_version(p) for p in PACKAGES},
        "environment": lock_status(),
    }
