"""Whether an environment came from requirements.lock, as records state it and reports print it."""

from __future__ import annotations

from importlib import metadata

from bench import envinfo
from bench.report.markdown import environment_line


def test_lock_status_compares_every_applicable_pin_with_what_is_installed(tmp_path):
    pytest_version = metadata.version("pytest")
    lock = tmp_path / "requirements.lock"
    lock.write_text(
        "# compiled by uv\n"
        f"pytest=={pytest_version}\n"
        "    # via mnist-bench (pyproject.toml)\n"
        "colorama==0.0.1 ; sys_platform == 'win32'\n"  # not for this platform: ignored
    )
    status = envinfo.lock_status(tmp_path)
    assert status["from_lock"] is True and status["pins"] == 1
    assert status["lock"] == "requirements.lock" and len(str(status["lock_sha256"])) == 12
    lock.write_text(lock.read_text() + "numpy==0.0.1\nno-such-package-xyz==1.0\n")
    status = envinfo.lock_status(tmp_path)
    assert status["from_lock"] is False
    assert status["differ"] == [
        "no-such-package-xyz missing (lock 1.0)",
        f"numpy {metadata.version('numpy')} (lock 0.0.1)",
    ]
    assert envinfo.lock_status(tmp_path / "nowhere") == {"lock": None, "from_lock": None}


def test_machine_info_carries_the_lock_status():
    assert set(envinfo.machine_info()["environment"]) >= {"lock", "from_lock"}  # type: ignore[arg-type]


def test_report_header_line_says_whether_the_run_came_from_the_lock():
    assert environment_line(None) == []  # records from before the lock: nothing claimed
    assert environment_line({"lock": None, "from_lock": None}) == [
        "- **Environment:** not from a lock (no requirements.lock beside the source)"
    ]
    ok = {"lock": "requirements.lock", "lock_sha256": "abc", "pins": 49, "from_lock": True}
    assert environment_line(ok) == [
        "- **Environment:** from the lock: all 49 pins of `requirements.lock` (sha256 abc) installed"
    ]
    off = ok | {"from_lock": False, "differ": ["numpy 2.5 (lock 2.4)"]}
    assert environment_line(off) == [
        "- **Environment:** not from the lock `requirements.lock` (sha256 abc): numpy 2.5 (lock 2.4)"
    ]
