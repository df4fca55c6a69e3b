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
        return f"folder {folder} is not writable ({exc.strerror or exc})"
    os.close(fd)
    os.unlink(probe)
    return None
