"""File-system checks shared by every writer."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def folder_problem(folder: Path) -> str | None:
    """Why files cannot be created in ``folder``, or None if they can.

    Tries to create (and remove) a file there: permission bits alone say
    nothing for root, read-only mounts or pseudo file systems such as /sys.
    """
    if not folder.is_dir():
        return f"folder {folder} does not exist"
    try:
        fd, probe = tempfile.mkstemp(prefix=".formcheck-probe-", dir=folder)
    except OSError as exc:
        return f"no file can be created in folder {folder} ({exc.strerror or exc})"
    os.close(fd)
    os.unlink(probe)
    return None


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, for a moment, for every thread)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def usual_mode(folder: bool = False) -> int:
    """The permissions ``open()`` / ``mkdir()`` would give under the current umask.

    ``tempfile.mkstemp``/``mkdtemp`` create private (0600/0700) files; outputs
    written through them and renamed get these modes instead.
    """
    return (0o777 if folder else 0o666) & ~_umask()
