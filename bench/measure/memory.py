"""The job process's own peak resident memory."""

from __future__ import annotations

import re
import resource
import sys
from pathlib import Path

_VMHWM = re.compile(r"^VmHWM:\s+(\d+)\s+kB$", re.MULTILINE)


def peak_rss() -> tuple[int, str]:
    """(peak resident bytes of this process since it was exec'd, how that was read).

    Not ru_maxrss where /proc exists: Linux carries the parent's high-water mark across fork + exec
    into the child's ru_maxrss; VmHWM in /proc/self/status belongs to the address space exec
    created. Elsewhere, ru_maxrss: bytes on macOS, KiB on other Unixes.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        found = _VMHWM.search(status.read_text())
        if found:
            return int(found.group(1)) * 1024, "VmHWM"
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (maxrss if sys.platform == "darwin" else maxrss * 1024), "ru_maxrss"
