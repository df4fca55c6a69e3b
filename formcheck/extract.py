"""Video file -> one person's raw landmark series (:class:`PoseSequence`).

Decode (PyAV, real timestamps, rotation applied) -> PoseLandmarker (VIDEO
mode) -> SubjectTracker -> arrays. Frames stream through: memory does not
grow with the clip beyond the landmark arrays (about 2 KB a frame).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from formcheck.errors import NoPersonError
from formcheck.estimator import EstimatorSettings, PoseEstimator
from formcheck.pose import NUM_LANDMARKS, PoseSequence
from formcheck.tracking import SubjectTracker, TrackerSettings
from formcheck.video import VideoInfo, probe, read_frames

Progress = Callable[[int], None]  # called with the number of frames just done


def _no_progress(_: int) -> None:
    return None


def extract_pose(
    path: str | Path,
    *,
    estimator: EstimatorSettings | None = None,
    tracker: TrackerSettings | None = None,
    progress: Progress = _no_progress,
    info: VideoInfo | None = None,
    require_person: bool = True,
) -> PoseSequence:
    """Run the pose model over a clip and follow one person through it.

    Raises InputError for files that are not decodable video, and
    NoPersonError if no person is found in any frame (when ``require_person``).
    """
    info = info or probe(path)
    times: list[float] = []
    xyz: list[np.ndarray] = []
    world: list[np.ndarray] = []
    vis: list[np.ndarray] = []
    missing3 = np.full((NUM_LANDMARKS, 3), np.nan)
    missing1 = np.full(NUM_LANDMARKS, np.nan)
    subject = SubjectTracker(info.width, info.height, tracker)
    with PoseEstimator(estimator) as model:
        for frame in read_frames(path):
            candidates = model.process(frame.image, frame.t_ms)
            idx = subject.update(candidates, frame.t_ms)
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
    seq = PoseSequence(np.array(times), np.array(xyz).reshape(-1, NUM_LANDMARKS, 3),
                       np.array(world).reshape(-1, NUM_LANDMARKS, 3),
                       np.array(vis).reshape(-1, NUM_LANDMARKS), info.width, info.height,
                       meta={"source": str(path), "rejected_candidates": subject.rejected})
    if require_person and not seq.detected.any():
        raise NoPersonError(f"no person found in any of the {len(seq)} frames of {Path(path).name}")
    return seq
