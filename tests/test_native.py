"""The ``formcheck`` command keeps native libraries' log lines off the terminal.

MediaPipe, LiteRT and OpenCV write to fd 2 directly, at start-up and at any
frame (LiteRT warns about misaligned input tensors depending on the machine's
allocator). These tests write such lines from native-level fd 2 in a real
process, and in a spawned worker, and check that only they are dropped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

LOG_LINES = (
    b"WARNING: Logging before InitGoogle() is written to STDERR\n"
    b"W0000 00:00:1796146779.363767   18665 inference_runner_litert.cc:1433] Input tensor memory "
    b"is not aligned according to LiteRt's memory alignment requirements.\n"
    b"I0000 00:00:1733161412.571838   42 gl_context.cc:357] GL version: 3.2\n"
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
    b"[ WARN:0@0.010] global cap_v4l.cpp:999 open VIDEOIO(V4L2:/dev/video0): can't open camera\n"
)


def run(code: str, folder: Path, *, debug: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))  # this checkout
    env.pop("FORMCHECK_DEBUG", None)
    if debug:
        env["FORMCHECK_DEBUG"] = "1"
    script = folder / "program.py"  # a file, so that the spawned worker can import its function
    script.write_text(textwrap.dedent(code))
    return subprocess.run([sys.executable, str(script)], capture_output=True, env=env,
                          timeout=120)


PROGRAM = f"""
import multiprocessing as mp, os, sys
from formcheck._native import filter_native_stderr

LOG = {LOG_LINES!r}

def worker():
    os.write(2, LOG + b"worker kept\\n")

if __name__ == "__main__":
    filter_native_stderr()
    os.write(2, LOG)
    os.write(2, b"F0000 00:00:1.5 12 graph.cc:88] Check failed: fatal lines are kept\\n")
    p = mp.get_context("spawn").Process(target=worker)
    p.start(); p.join()
    print("error: python's own line", file=sys.stderr)
    sys.exit(3)
"""


def test_native_log_lines_are_dropped_and_everything_else_is_kept(tmp_path):
    r = run(PROGRAM, tmp_path)
    assert r.returncode == 3
    lines = sorted(r.stderr.decode().splitlines())
    assert lines == ["F0000 00:00:1.5 12 graph.cc:88] Check failed: fatal lines are kept",
                     "error: python's own line", "worker kept"], r.stderr


def test_formcheck_debug_lets_everything_through(tmp_path):
    r = run(PROGRAM, tmp_path, debug=True)
    err = r.stderr.decode()
    assert "Input tensor memory is not aligned" in err
    assert err.count("Logging before InitGoogle") == 2  # the main process and the worker


def test_the_command_installs_the_filter():
    # formcheck and python -m formcheck both go through formcheck.cli.main
    r = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import os, sys
        sys.argv = ["formcheck", "--help"]
        import formcheck._native as native
        from formcheck.cli import main
        try:
            main()
        except SystemExit:
            pass
        os.write(2, b"W0000 00:00:1.0 1 x.cc:1] dropped\\n")
        print("installed", native._installed, file=sys.stderr)
    """)], capture_output=True, text=True, timeout=120)
    assert "installed True" in r.stderr
    assert "dropped" not in r.stderr
    assert "analyze" in r.stdout


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_stderr_stays_a_terminal_for_progress_bars(tmp_path):
    leader, follower = os.openpty()
    script = tmp_path / "tty.py"
    script.write_text(textwrap.dedent("""
        import sys
        from formcheck._native import filter_native_stderr
        before = sys.stderr.isatty()
        filter_native_stderr()
        print("tty", before, sys.stderr.isatty(), file=sys.stderr)
    """))
    env = {k: v for k, v in os.environ.items() if k != "FORMCHECK_DEBUG"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    try:
        r = subprocess.run([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=follower,
                           env=env, timeout=120)
        os.close(follower)
        follower = -1
        assert r.returncode == 0
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 1024)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert b"tty True True" in seen, seen


def test_the_last_lines_are_passed_on_while_a_child_still_holds_the_pipe(tmp_path):
    # multiprocessing's resource tracker outlives the exit hooks holding fd 2: the exit hook
    # must not wait for the pipe to close, and what was written must still come out
    r = run("""
        import os, subprocess, sys
        from formcheck._native import filter_native_stderr
        filter_native_stderr()
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2)"],
                         stdout=subprocess.DEVNULL)
        os.write(2, b"I0000 00:00:1.0 1 x.cc:1] dropped\\nlast words\\n")
    """, tmp_path)
    assert r.returncode == 0
    assert r.stderr.decode() == "last words\n"


def test_a_crash_still_shows_its_last_native_lines(tmp_path):
    # a failed CHECK in the model logs an F line and aborts: the process dies at once, so the
    # line must not depend on this process living on to pass it on
    r = run("""
        import os
        from formcheck._native import filter_native_stderr
        filter_native_stderr()
        os.write(2, b"W0000 00:00:1.0 1 x.cc:1] dropped\\n")
        os.write(2, b"F0000 00:00:1.5 12 graph.cc:88] Check failed: the crash says why\\n")
        os.abort()
    """, tmp_path)
    assert r.returncode != 0
    assert r.stderr.decode().strip().splitlines() == [
        "F0000 00:00:1.5 12 graph.cc:88] Check failed: the crash says why"]


def test_a_segfault_report_reaches_the_terminal(tmp_path):
    r = run("""
        import ctypes, faulthandler
        from formcheck._native import filter_native_stderr
        faulthandler.enable()
        filter_native_stderr()
        ctypes.string_at(0)
    """, tmp_path)
    assert r.returncode != 0 and "Fatal Python error" in r.stderr.decode()
