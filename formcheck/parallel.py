"""Run per-segment jobs of one clip on every core, with progress.

Used by pose extraction and annotated rendering: each job handles a time
segment of the clip. The first job runs in the calling process (no start-up,
no extra copy of the libraries in memory); the others run in spawned worker
processes (MediaPipe and FFmpeg threads do not survive a fork) and report
frames done through a queue that the caller drains into its progress
callback while it works on its own segment.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import queue
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Progress = Callable[[int], None]

MIN_SEGMENT_S = 4.0  # shorter segments spend too much of their time starting up
_PROGRESS_EVERY = 10
_QUEUE = None  # the progress queue, inherited by each worker process


def plan_segments(duration_s: float | None, workers: int,
                  head_start_s: float = 0.0) -> list[tuple[float, float]]:
    """[start_ms, end_ms) of each segment; one segment when the clip is short.

    Segment 0 runs in the calling process and starts at once; the others lose
    ``head_start_s`` of clip time to starting a process (and any warm-up), so
    segment 0 is made longer by that much minus its share: all finish together.
    """
    if not duration_s or workers <= 1:
        return [(0.0, np.inf)]
    n = int(min(workers, max(1, duration_s // MIN_SEGMENT_S)))
    if n == 1:
        return [(0.0, np.inf)]
    lead = min(max(head_start_s, 0.0), 0.5 * duration_s / n)
    first = duration_s / n + lead * (n - 1) / n
    rest = (duration_s - first) / (n - 1)
    bounds = [0.0] + [1000.0 * (first + rest * k) for k in range(n - 1)] + [np.inf]
    return [(bounds[k], bounds[k + 1]) for k in range(n)]


def _init_worker(progress_queue) -> None:
    global _QUEUE
    _QUEUE = progress_queue
    _one_cv_thread()


def _one_cv_thread() -> int:
    """Every core already runs a segment: OpenCV's own threads would only contend.
    Returns the previous thread count."""
    import cv2

    before = cv2.getNumThreads()
    if os.environ.get("FC_CV_THREADS") != "many":
        cv2.setNumThreads(1)
    return before


def _call(func: Callable[..., Any], args: tuple) -> Any:
    """Worker side: run ``func(*args, progress=...)`` reporting every few frames."""
    done = [0]

    def report(n: int) -> None:
        done[0] += n
        if done[0] >= _PROGRESS_EVERY:
            _QUEUE.put(done[0])
            done[0] = 0

    result = func(*args, progress=report)
    if done[0]:
        _QUEUE.put(done[0])
    return result


def run_jobs(func: Callable[..., Any], jobs: Sequence[tuple], progress: Progress) -> list[Any]:
    """``[func(*job, progress=...) for job in jobs]``: the first job here, each other
    one in its own process, all at once. A failing job's exception is raised."""
    if len(jobs) == 1:
        return [func(*jobs[0], progress=progress)]
    ctx = mp.get_context("spawn")
    progress_queue = ctx.Queue()
    pool = cf.ProcessPoolExecutor(max_workers=len(jobs) - 1, mp_context=ctx,
                                  initializer=_init_worker, initargs=(progress_queue,))
    try:
        futures = [pool.submit(_call, func, job) for job in jobs[1:]]
        pending = 0

        def here(n: int) -> None:  # the caller's own job: its frames, and the workers'
            nonlocal pending
            progress(n)
            pending += n
            if pending >= _PROGRESS_EVERY:
                pending = 0
                _drain(progress_queue, progress)

        cv_threads = _one_cv_thread()
        try:
            first = func(*jobs[0], progress=here)
        finally:
            import cv2

            cv2.setNumThreads(cv_threads)
        waiting = set(futures)
        while waiting:
            done, waiting = cf.wait(waiting, timeout=0.2, return_when=cf.FIRST_COMPLETED)
            _drain(progress_queue, progress)
            for f in done:
                if f.exception() is not None:
                    raise f.exception()
        _drain(progress_queue, progress)
        return [first, *(f.result() for f in futures)]
    except BaseException:
        # A failed or interrupted clip: stop the other segments now, not after their work.
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _drain(progress_queue, progress: Progress) -> None:
    while True:
        try:
            progress(progress_queue.get_nowait())
        except queue.Empty:
            return
