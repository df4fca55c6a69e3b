"""Keep native libraries (MediaPipe, LiteRT/TFLite, OpenCV) from writing to the user's terminal.

They log straight to file descriptor 2, not through ``sys.stderr``: start-up
chatter, and warnings that may come at any frame (LiteRT's "Input tensor memory
is not aligned" shows whenever the allocator hands it a misaligned buffer,
which depends on the machine). A user mistake must still read as one line.

Two tools:

* :func:`quiet_native_stderr`, a context manager for library users: fd 2 goes
  to ``/dev/null`` for the duration.
* :func:`filter_native_stderr`, installed once by the ``formcheck`` command:
  ``sys.stderr`` keeps the real terminal, fd 2 becomes a pipe, and a small
  forked reader process passes on everything except the libraries' log lines
  (so a crash's last lines still come out). Spawned worker processes inherit
  the pipe, so their chatter is filtered too.

``FORMCHECK_DEBUG=1`` lets everything through.
"""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import os
import re
import select
import signal
import sys
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
    messages (errors, progress bars) go straight to the terminal and never
    through the filter. The filter is a forked reader process, not a thread: it
    outlives a crash of this process (a fatal check's last line, a segfault
    report still come out) and needs no GIL (a native call writing a lot while
    holding it cannot fill the pipe and hang). Call it first thing, before any
    thread exists. Needs ``os.fork`` (not on Windows): elsewhere the per-call
    :func:`quiet_native_stderr` still applies.
    """
    global _installed
    if _installed or debugging() or not hasattr(os, "fork"):
        return
    try:
        sys.stderr.flush()
        real = os.dup(2)
    except (OSError, ValueError, AttributeError):
        return
    read_end, write_end = os.pipe()
    ack_read, ack_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the reader
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the process it serves
            os.close(write_end)
            os.close(ack_read)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):  # hold no pipe of the caller's open (a consumer of stdout waits)
                os.dup2(devnull, fd)
            _pass_on(read_end, real, ack_write)
        finally:
            os._exit(0)
    os.close(read_end)
    os.close(ack_write)
    os.dup2(write_end, 2)
    os.close(write_end)
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    sys.stderr = open(real, "w", buffering=1, encoding=encoding, errors="backslashreplace",
                      closefd=False)
    if faulthandler.is_enabled():  # PYTHONFAULTHANDLER / -X faulthandler: report to the real fd
        faulthandler.enable(file=sys.stderr)
    _installed = True
    atexit.register(_drain, ack_read)


_DRAIN = b"\x00formcheck: drain\n"  # written at exit; the reader answers once all before it is out


def _drain(ack_read: int) -> None:
    """At exit: wait (briefly) until the reader has passed on everything written so far.

    Not until the pipe closes: processes that outlive this hook (multiprocessing's
    resource tracker) still hold it, and later lines are still passed on.
    """
    try:
        os.write(2, _DRAIN)
        if select.select([ack_read], [], [], 1.0)[0]:
            os.read(ack_read, 1)
    except OSError:
        pass


def _pass_on(read_end: int, real: int, ack: int) -> None:
    pending = b""
    while chunk := os.read(read_end, 65536):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line + b"\n" == _DRAIN:
                try:
                    os.write(ack, b".")
                except OSError:
                    pass
                continue
            _write_unless_log(line + b"\n", real)
    if pending:
        _write_unless_log(pending, real)


def _write_unless_log(line: bytes, real: int) -> None:
    if NATIVE_LOG_LINE.match(line):
        return
    try:
        os.write(real, line)
    except OSError:
        pass
