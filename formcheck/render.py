"""Annotated outputs of a file: a second pass over the video, drawn from the final analysis.

:func:`render_annotated` writes the whole clip with the overlay (H.264,
yuv420p, every frame at its own timestamp, upright); :func:`save_snapshots`
writes one annotated PNG per rep, at its bottom frame. Both decode the video
again (:func:`formcheck.video.read_frames`) and draw the states of
:class:`formcheck.overlay.FileStates`: the smoothed pose and the judged reps,
never raw per-frame guesses.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from formcheck.errors import InputError, OutputError
from formcheck.fsutil import folder_problem
from formcheck.overlay import FileStates, FormOverlay, rep_mark
from formcheck.parallel import plan_segments, run_jobs
from formcheck.video import VideoWriter, concat_h264, partial_path, probe, read_frames

log = logging.getLogger(__name__)

Progress = Callable[[int], None]
# A decoded frame and the analysed one must be the same frame: their times may
# differ by rounding only.
_SAME_FRAME_MS = 1.0
WORKER_START_S = 0.3  # a spawned render worker's start-up before its first frame


def _render_fps_estimate(width: int, height: int) -> float:
    """Frames/s one process decodes, draws and encodes (bench/speed.py: ~60 at 1080x1920)."""
    return min(250.0, 60.0 * 1080 * 1920 / max(width * height, 1))


def _annotated(analysis, video_path: Path, overlay: FormOverlay, wanted: set[int] | None = None,
               start_ms: float | None = None, end_ms: float = np.inf):
    """(frame, annotated RGB image) for each frame (only ``wanted`` indices if
    given; only frames in [start_ms, end_ms) if given). ``frame.index`` is the
    frame's index in the analysis."""
    for frame, state in _states(analysis, video_path, wanted, start_ms, end_ms):
        yield frame, overlay.annotate(frame.image, state)


def _states(analysis, video_path: Path, wanted: set[int] | None = None,
            start_ms: float | None = None, end_ms: float = np.inf):
    """(frame, its FrameState) for each frame, as :func:`_annotated` selects them."""
    from dataclasses import replace

    states = FileStates(analysis)
    times = analysis.pose.timestamps_ms
    last = max(wanted) if wanted else None
    offset = int(np.searchsorted(times, start_ms - _SAME_FRAME_MS)) if start_ms else 0
    for frame in read_frames(video_path, start_ms=start_ms):
        if frame.t_ms >= end_ms:
            return
        frame = replace(frame, index=frame.index + offset)
        if last is not None and frame.index > last:
            return
        if wanted is not None and frame.index not in wanted:
            continue
        if frame.index >= len(states) or abs(times[frame.index] - frame.t_ms) > _SAME_FRAME_MS:
            raise InputError(f"{video_path}: frame {frame.index} at {frame.t_ms:.1f} ms is not "
                             f"in the analysis of {analysis.source or 'this clip'} "
                             "(was it analysed from another file?)")
        yield frame, states[frame.index]


def render_annotated(analysis, video_path: str | os.PathLike[str], out_path: str | os.PathLike[str],
                     progress: Progress | None = None, *, overlay: FormOverlay | None = None,
                     workers: int = 1) -> Path:
    """Write ``video_path`` with the overlay to ``out_path`` (.mp4/.mov/.m4v/.mkv).

    Same frame count, size and timestamps as the input, H.264 yuv420p (odd
    sizes padded by one pixel, see :class:`~formcheck.video.VideoWriter`),
    written atomically. ``progress(n)`` is called with frames done.
    ``workers`` > 1 renders time segments in that many processes and joins
    them without re-encoding (call from under ``if __name__ == "__main__":``).
    Raises :class:`OutputError` (bad path, writing failed) or :class:`InputError`.
    """
    video_path, out_path = Path(video_path), Path(out_path)
    if out_path.exists() and video_path.exists() and out_path.resolve() == video_path.resolve():
        raise OutputError(f"{out_path}: would overwrite the input video; choose another name")
    progress = progress or (lambda n: None)
    overlay = overlay or FormOverlay()
    info = analysis.info or probe(video_path)
    head_start = WORKER_START_S * _render_fps_estimate(info.width, info.height) / (info.fps or 30.0)
    segments = plan_segments(info.duration_s, workers if info.seekable else 1, head_start_s=head_start)
    if len(segments) == 1:
        written = _render_part(analysis, video_path, out_path, None, np.inf, overlay, out_path,
                               progress=progress)
    else:
        folder = out_path.parent
        parts = [folder / f".{out_path.stem}.part{k}.mp4" for k in range(len(segments))]
        try:
            jobs = [(analysis, video_path, part, start or None, end, overlay, out_path)
                    for part, (start, end) in zip(parts, segments)]
            written = sum(run_jobs(_render_part, jobs, progress))
            concat_h264(parts, out_path)
        finally:  # a failed or killed segment leaves its part, or its partial file
            for part in parts:
                part.unlink(missing_ok=True)
                partial_path(part).unlink(missing_ok=True)
    if written != len(analysis.pose):
        log.warning("%s: wrote %d frames, the analysis has %d", out_path, written, len(analysis.pose))
    return out_path


def _render_part(analysis, video_path: Path, out_path: Path, start_ms: float | None, end_ms: float,
                 overlay: FormOverlay, shown_as: Path, progress: Progress) -> int:
    """Render the frames in [start_ms, end_ms) to ``out_path`` (``shown_as`` in errors: the
    file the user asked for); returns the frames written."""
    info = analysis.info or probe(video_path)
    whole = start_ms is None and end_ms == np.inf
    with VideoWriter(out_path, info.width, info.height, fps_hint=info.fps or 30.0,
                     b_frames=whole, shown_as=shown_as) as writer:
        for frame, image in _in_background(_annotated(analysis, video_path, overlay,
                                                      start_ms=start_ms, end_ms=end_ms)):
            writer.write(image, frame.t_ms)
            progress(1)
    return writer.frames_written


def _in_background(items, depth: int = 8):
    """Run a generator in a thread, ``depth`` items ahead: decoding and drawing
    (which release the GIL in FFmpeg and OpenCV) overlap with encoding."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put(item)
            q.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            q.put(exc)

    thread = threading.Thread(target=produce, daemon=True, name="formcheck-render-decode")
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


def snapshot_name(rep) -> str:
    """``rep01_right_fault.png`` (``..._partial.png`` appended for a partial rep)."""
    partial = "_partial" if rep.rep.partial else ""
    return f"rep{rep.index:02d}_{rep.side.value}_{rep.worst.value}{partial}.png"


def save_snapshots(analysis, video_path: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                   *, overlay: FormOverlay | None = None) -> list[Path]:
    """One annotated PNG per rep (partial ones included) at its bottom frame, in
    ``out_dir`` (created if missing), each written atomically. Returns the paths
    in rep order."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot create the snapshot folder ({exc.strerror or exc})") from None
    problem = folder_problem(out_dir)
    if problem:
        raise OutputError(f"{out_dir}: {problem}")
    by_frame: dict[int, list] = {}
    for r in analysis.reps:
        by_frame.setdefault(r.rep.bottom_index, []).append(r)
    written: dict[int, Path] = {}
    overlay = overlay or FormOverlay()
    thresholds = analysis.settings.thresholds
    if by_frame:
        for frame, state in _states(analysis, Path(video_path), set(by_frame)):
            for r in by_frame[frame.index]:
                # the picture of this rep: its own verdict in the panel and the count with it
                # (the video's frame there still shows the rep before, still under way)
                done = sum(not x.rep.partial for x in analysis.reps if x.index <= r.index)
                own = dataclasses.replace(state, last=rep_mark(r, thresholds), rep_count=done,
                                          current=rep_mark(r, thresholds))
                written[r.index] = _write_png(overlay.annotate(frame.image, own),
                                              out_dir / snapshot_name(r))
    return [written[r.index] for r in analysis.reps if r.index in written]


def _write_png(rgb: np.ndarray, path: Path) -> Path:
    partial = path.with_name(f".{path.stem}.partial.png")
    try:
        if not cv2.imwrite(str(partial), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise OSError("OpenCV could not write the image")
        os.replace(partial, path)
    except (OSError, cv2.error) as exc:
        partial.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write the snapshot ({exc})") from None
    return path
