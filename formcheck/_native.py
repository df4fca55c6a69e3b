"""Keep native libraries (MediaPipe, LiteRT/TFLite, OpenCV) from writing to the user's terminal.

They log straight to file descriptor 2, not through ``sys.stderr``: start-up
chatter, and warnings that may come at any frame (LiteRT's "Input tensor memory
is not aligned" shows whenever the allocator hands it a misaligned buffer,
which depends on the machine). A user mistake must still read as one line.

Two tools:

* :func:`quiet_native_stderr`, a context manager for library users: fd 2 goes
  to ``/dev/null`` for the duration.
* :func:`filter_native_stderr`, installed once by the ``formcheck`` command:
  ``sys.stderr`` keeps the real terminal, fd 2 becomes a pipe, and a thread
  passes on everything except the libraries' log lines. Spawned worker
  processes inherit the pipe, so their chatter is filtered too.

``FORMCHECK_DEBUG=1`` lets everything through.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import select
import sys
import threading
from collections.abc import Iterator

# absl/glog ("W0000 00:00:1796146779.363767   18665 file.cc:1433] ..."), its preamble,
# TFLite's "INFO: Created TensorFlow Lite XNNPACK delegate", OpenCV's "[ WARN:0@0.01] ...".
# Fatal lines (F0000 ...) are kept: they come just before a crash and say why.
NATIVE_LOG_LINE = re.compile(
    rb"^(?:[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\]]*\] "
    rb"|WARNING: Logging before InitGoogle\(\)"
    rb"|(?:INFO|WARNING|VERBOSE): "
    rb"|\[ ?(?:WARN|INFO|DEBUG|VERBOSE):\d+@)"
)

_installed = False


def debugging() -> bool:
    return bool(os.environ.get("FORMCHECK_DEBUG"))


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Send fd 2 to /dev/null while the block runs (native start-up chatter).

    Under :func:`filter_native_stderr` this still silences what the filter
    would not know as a log line; ``sys.stderr`` is not fd 2 then and stays open.
    """
    if debugging():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded interpreters): nothing to silence
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


def filter_native_stderr() -> None:
    """Route fd 2 through a filter that drops native log lines, for the whole process.

    ``sys.stderr`` is re-opened on a copy of the original fd 2, so Python's own
    messages (errors, progress bars) go straight to the terminal, never through
    the thread, and are never lost at exit. Not on Windows (no ``select`` on
    pipes there): the per-call :func:`quiet_native_stderr` still applies.
    """
    global _installed
    if _installed or debugging() or os.name == "nt":
        return
    try:
        sys.stderr.flush()
        real = os.dup(2)
    except (OSError, ValueError, AttributeError):
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    sys.stderr = open(real, "w", buffering=1, encoding=encoding, errors="backslashreplace",
                      closefd=False)
    stop = threading.Event()
    thread = threading.Thread(target=_pass_on, args=(read_end, real, stop),
                              name="native-stderr", daemon=True)
    thread.start()
    _installed = True

    def finish() -> None:
        # Late writes (destructors at shutdown) go nowhere. Processes that
        # outlive this hook (multiprocessing's resource tracker) still hold the
        # pipe, so do not wait for its end: pass on what is there, then stop.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:
            pass
        stop.set()
        thread.join(timeout=1.0)

    atexit.register(finish)


def _pass_on(read_end: int, real: int, stop: threading.Event) -> None:
    pending = b""
    while True:
        ready, _, _ = select.select([read_end], [], [], 0.05)
        if not ready:
            if stop.is_set():
                break
            continue
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            _write_unless_log(line + b"\n", real)
    if pending:
        _write_unless_log(pending, real)
    os.close(read_end)


def _write_unless_log(line: bytes, real: int) -> None:
    if NATIVE_LOG_LINE.match(line):
        return
    try:
        os.write(real, line)
    except OSError:
        pass
