"""Silence native libraries (MediaPipe, TFLite, OpenCV) that write to fd 2 directly.

Their start-up chatter and warnings are not for users: a user mistake must
read as one line. ``FORMCHECK_DEBUG=1`` lets everything through.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence MediaPipe's C++/TFLite start-up chatter (written to fd 2, not sys.stderr)."""
    if os.environ.get("FORMCHECK_DEBUG"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except OSError:  # no real fd 2 (embedded interpreters): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
