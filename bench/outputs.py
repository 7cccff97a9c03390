"""Files the CLI writes: checked before any work, written atomically, never over an input.

Every output goes through here. ``check_output`` runs before the expensive part of a command and
refuses a path that is one of the command's inputs (even with ``--force``), an existing file (unless
``force``), a directory, or a place where no file can be created. ``write_atomic`` then writes a
unique temp file in the same directory, syncs it and renames it over the target, so a reader or a
crash sees the old file or the new one, never half of either, and no other file is ever touched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

Writer = Callable[[IO[bytes]], None]
FORCE_ADVICE = "pass --force to overwrite it, or choose another path"


class OutputError(ValueError):
    """An output cannot or must not be written; the message names the path and what to do."""


def _same_path(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)  # hard links and symlinks included
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def check_dir_writable(directory: str | os.PathLike[str], *, target: str | None = None) -> None:
    """Raise OutputError unless files can be created in `directory` (or in what it would be made in).

    A directory that does not exist yet is checked through its nearest existing ancestor, which is
    left as it was: this only creates and removes one empty temp file. `target` names the file
    the caller means to write, for the message.
    """
    d = Path(directory)
    name = target or str(d)
    existing = d
    try:
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            where = "" if name == str(existing) else f"{name}: "
            raise OutputError(f"{where}{existing} is a file, not a directory")
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".mnist-bench-check-")
    except OSError as exc:
        raise OutputError(f"{name}: cannot write in {existing} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


def check_output(
    path: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    force: bool = False,
    advice: str = FORCE_ADVICE,
) -> Path:
    """Raise OutputError unless `path` may be written by this command; returns it as a Path.

    `advice` ends the message about an existing file (commands without --force say their own).
    """
    p = Path(path)
    for item in inputs:
        if item is not None and _same_path(p, Path(item)):
            raise OutputError(
                f"{p} is an input of this command; refusing to overwrite it (choose another path)"
            )
    if p.is_dir():
        raise OutputError(f"{p} is a directory; give a file path")
    if os.path.lexists(p) and not force:
        raise OutputError(f"{p} already exists; {advice}")
    check_dir_writable(p.parent, target=str(p))
    return p


def _file_mode() -> int:
    """Permissions a plain open() would give a new file (mkstemp makes them 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: str | os.PathLike[str], data: str | bytes | Writer) -> Path:
    """Write text (UTF-8), bytes, or whatever `data(fh)` writes, to `path` atomically."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, str):
                fh.write(data.encode("utf-8"))
            elif isinstance(data, bytes):
                fh.write(data)
            else:
                data(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return p
