"""Video file -> one person's raw landmark series (:class:`PoseSequence`).

Decode (PyAV, real timestamps, rotation applied) -> PoseLandmarker (VIDEO
mode) -> SubjectTracker -> arrays. Frames stream through: memory does not
grow with the clip beyond the landmark arrays (about 2 KB a frame).

One landmarker uses one core. With ``workers > 1`` the clip is cut into
time segments, each tracked in its own process from a short warm-up before
its start (so the tracker has settled when its frames begin), and the
segments are stitched in time order: every core works on one clip, and the
result matches a sequential pass within landmark noise (tests/test_speed.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from formcheck.errors import InputError, NoPersonError
from formcheck.estimator import EstimatorSettings, PoseEstimator
from formcheck.parallel import plan_segments, run_jobs
from formcheck.pose import NUM_LANDMARKS, PoseSequence
from formcheck.tracking import SubjectTracker, TrackerSettings, hip_and_torso
from formcheck.video import VideoInfo, probe, read_frames

Progress = Callable[[int], None]  # called with the number of frames just done
log = logging.getLogger(__name__)

POSE_MAX_SIDE_PX = 960  # frames are scaled down to this before the model (it sees 256x256 crops);
# a 1080x1920 phone frame then costs a quarter of the conversion work, landmarks are normalised
MIN_SIDE_PX = 96  # below this a whole body is a few pixels wide: the detector finds nobody
WARMUP_S = 1.0  # frames tracked before a segment starts, then dropped
WORKER_START_S = 0.4  # a spawned worker's start-up before its first frame (measured here)
MODEL_FPS = 50.0  # frames/s of the full model on one core here (bench/speed.py)


def _no_progress(_: int) -> None:
    return None


def default_workers() -> int:
    """Cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class _Part:
    times: np.ndarray
    xyz: np.ndarray
    world: np.ndarray
    vis: np.ndarray
    rejected: int
    warm_times: np.ndarray  # the warm-up frames, tracked and dropped: the seam check's evidence
    warm_xyz: np.ndarray


def _track(path: str, width: int, height: int, estimator: EstimatorSettings | None,
           tracker: TrackerSettings | None, start_ms: float | None, keep_from_ms: float,
           end_ms: float, progress: Progress) -> _Part:
    """Track frames from ``start_ms``; keep those in [keep_from_ms, end_ms)."""
    times, xyz, world, vis, warm_times, warm_xyz = [], [], [], [], [], []
    missing3 = np.full((NUM_LANDMARKS, 3), np.nan)
    missing1 = np.full(NUM_LANDMARKS, np.nan)
    subject = SubjectTracker(width, height, tracker)
    with PoseEstimator(estimator) as model:
        for frame in read_frames(path, start_ms=start_ms, max_side=POSE_MAX_SIDE_PX):
            if frame.t_ms >= end_ms:
                break
            candidates = model.process(frame.image, frame.t_ms)
            idx = subject.update(candidates, frame.t_ms)
            if frame.t_ms < keep_from_ms:
                warm_times.append(frame.t_ms)
                warm_xyz.append(missing3 if idx is None else candidates.xyz[idx])
                continue
            times.append(frame.t_ms)
            if idx is None:
                xyz.append(missing3)
                world.append(missing3)
                vis.append(missing1)
            else:
                xyz.append(candidates.xyz[idx])
                world.append(candidates.world[idx])
                vis.append(candidates.visibility[idx])
            progress(1)
    return _Part(np.array(times, dtype=np.float64), np.array(xyz).reshape(-1, NUM_LANDMARKS, 3),
                 np.array(world).reshape(-1, NUM_LANDMARKS, 3),
                 np.array(vis).reshape(-1, NUM_LANDMARKS), subject.rejected,
                 np.array(warm_times, dtype=np.float64), np.array(warm_xyz).reshape(-1, NUM_LANDMARKS, 3))


def extract_pose(
    path: str | Path,
    *,
    estimator: EstimatorSettings | None = None,
    tracker: TrackerSettings | None = None,
    progress: Progress = _no_progress,
    info: VideoInfo | None = None,
    require_person: bool = True,
    workers: int = 1,
) -> PoseSequence:
    """Run the pose model over a clip and follow one person through it.

    ``workers``: processes to use (segments of at least ``MIN_SEGMENT_S``).
    Raises InputError for files that are not decodable video, and
    NoPersonError if no person is found in any frame (when ``require_person``).
    """
    info = info or probe(path)
    if min(info.width, info.height) < MIN_SIDE_PX:
        raise InputError(f"{Path(path).name}: the video is too small ({info.width}x{info.height} "
                         f"pixels); formcheck needs at least {MIN_SIDE_PX} pixels on the short side")
    # A worker segment loses its warm-up and its process start to the first one.
    fps = info.fps or 30.0
    if not info.seekable:  # segments would start wherever the seek lands: frames lost
        workers = 1
    segments = plan_segments(info.duration_s, workers,
                             head_start_s=WARMUP_S + WORKER_START_S * MODEL_FPS / fps)
    if len(segments) == 1:
        parts = [_track(str(path), info.width, info.height, estimator, tracker, None, 0.0, np.inf,
                        progress)]
    else:
        parts = _parallel(str(path), info, estimator, tracker, segments, progress)
        seam = next((k for k in range(1, len(parts)) if not _same_person(parts[k - 1], parts[k], info)),
                    None)
        if seam is not None:  # a segment started on somebody else: follow by continuity instead
            log.warning("%s: segment %d started on another person; tracking the clip in one pass",
                        path, seam + 1)
            parts = [_track(str(path), info.width, info.height, estimator, tracker, None, 0.0, np.inf,
                            _no_progress)]
    seq = PoseSequence(np.concatenate([p.times for p in parts]),
                       np.concatenate([p.xyz for p in parts]),
                       np.concatenate([p.world for p in parts]),
                       np.concatenate([p.vis for p in parts]), info.width, info.height,
                       meta={"source": str(path), "segments": len(parts),
                             "rejected_candidates": sum(p.rejected for p in parts)})
    if require_person and not seq.detected.any():
        raise NoPersonError(f"no person found in any of the {len(seq)} frames of {Path(path).name}")
    return seq


def _same_person(before: _Part, after: _Part, info: VideoInfo, max_jump_torso: float = 0.5) -> bool:
    """Whether ``after``'s warm-up followed the person ``before`` ends on (same frames, same hips).

    Undecidable (too few frames seen by both) counts as the same person.
    """
    if not len(after.warm_times) or not len(before.times):
        return True
    idx = np.clip(np.searchsorted(before.times, after.warm_times), 0, len(before.times) - 1)
    same_t = np.abs(before.times[idx] - after.warm_times) < 1.0  # the same decoded frame
    aspect = info.width / info.height
    hip_a, torso = hip_and_torso(before.xyz[idx], aspect)
    hip_b, _ = hip_and_torso(after.warm_xyz, aspect)
    both = same_t & np.isfinite(hip_a).all(axis=1) & np.isfinite(hip_b).all(axis=1) & (torso > 0)
    if both.sum() < 5:
        return True
    jump = np.linalg.norm(hip_a[both] - hip_b[both], axis=1) / torso[both]
    return bool(np.median(jump) <= max_jump_torso)


def _parallel(path: str, info: VideoInfo, estimator, tracker, segments, progress: Progress) -> list[_Part]:
    jobs = []
    for start, end in segments:
        warm = max(start - WARMUP_S * 1000.0, 0.0) if start > 0 else None
        jobs.append((path, info.width, info.height, estimator, tracker, warm, start, end))
    return run_jobs(_track, jobs, progress)
