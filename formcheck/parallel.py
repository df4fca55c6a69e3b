"""Run per-segment jobs in worker processes, with progress, for one clip.

Used by pose extraction and annotated rendering: each job handles a time
segment of the clip; jobs report frames done through a queue that the parent
drains into its progress callback. Workers are spawned, not forked (MediaPipe
and FFmpeg threads do not survive a fork).
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


def plan_segments(duration_s: float | None, workers: int) -> list[tuple[float, float]]:
    """[start_ms, end_ms) of each segment; one segment when the clip is short."""
    if not duration_s or workers <= 1:
        return [(0.0, np.inf)]
    n = int(min(workers, max(1, duration_s // MIN_SEGMENT_S)))
    bounds = [duration_s * 1000.0 * k / n for k in range(n)] + [np.inf]
    return [(bounds[k], bounds[k + 1]) for k in range(n)]


def _init_worker(progress_queue) -> None:
    global _QUEUE
    _QUEUE = progress_queue
    if os.environ.get("FC_CV_THREADS") != "many":
        import cv2

        cv2.setNumThreads(1)  # every core already runs a worker: OpenCV's own threads only contend


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
    """``[func(*job, progress=...) for job in jobs]``, each in its own process."""
    ctx = mp.get_context("spawn")
    progress_queue = ctx.Queue()
    with cf.ProcessPoolExecutor(max_workers=len(jobs), mp_context=ctx, initializer=_init_worker,
                                initargs=(progress_queue,)) as pool:
        futures = [pool.submit(_call, func, job) for job in jobs]
        pending = set(futures)
        try:
            while pending:
                done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
                _drain(progress_queue, progress)
                for f in done:
                    exc = f.exception()
                    if exc is not None:
                        raise exc
        finally:
            for f in pending:
                f.cancel()
        _drain(progress_queue, progress)
        return [f.result() for f in futures]


def _drain(progress_queue, progress: Progress) -> None:
    while True:
        try:
            progress(progress_queue.get_nowait())
        except queue.Empty:
            return
