"""The MediaPipe edge: PoseLandmarker in, plain numpy candidates out.

Nothing past this module sees a MediaPipe type. Every frame gives up to
``num_poses`` candidate people (:class:`Candidates`); ``formcheck.tracking``
chooses the one person to follow.
"""

from __future__ import annotations

import logging
import os
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from formcheck._native import quiet_native_stderr
from formcheck.errors import ModelError
from formcheck.models import resolve_model
from formcheck.pose import NUM_LANDMARKS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EstimatorSettings:
    """Settings of the pose model. Defaults are MediaPipe's, except num_poses."""

    model: str = "full"  # a model name (formcheck models) or a .task path
    # 1: the detector runs only when tracking is lost (2 would run it every frame: 19 vs
    # 34 frames/s here) and landmarks are ~0.9 deg closer to the ground truth; the
    # SubjectTracker refuses a jump to another person.
    num_poses: int = 1
    min_detection_confidence: float = 0.5
    min_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5

    def __post_init__(self) -> None:
        if not 1 <= self.num_poses <= 6:
            raise ValueError("num_poses must be between 1 and 6")
        for name in ("min_detection_confidence", "min_presence_confidence",
                     "min_tracking_confidence"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")


@dataclass(frozen=True)
class Candidates:
    """The people found in one frame, as arrays (K = number found, may be 0).

    xyz: (K, 33, 3) normalised image coordinates; world: (K, 33, 3) metres;
    visibility: (K, 33).
    """

    xyz: np.ndarray
    world: np.ndarray
    visibility: np.ndarray

    def __len__(self) -> int:
        return int(self.xyz.shape[0])

    @classmethod
    def none(cls) -> "Candidates":
        return cls(np.zeros((0, NUM_LANDMARKS, 3)), np.zeros((0, NUM_LANDMARKS, 3)),
                   np.zeros((0, NUM_LANDMARKS)))


def _to_candidates(result) -> Candidates:
    """Convert a MediaPipe PoseLandmarkerResult (the only place that reads one)."""
    people = result.pose_landmarks or []
    if not people:
        return Candidates.none()
    xyz = np.array([[(lm.x, lm.y, lm.z) for lm in person] for person in people], dtype=np.float64)
    vis = np.array([[lm.visibility if lm.visibility is not None else np.nan for lm in person]
                    for person in people], dtype=np.float64)
    worlds = result.pose_world_landmarks or []
    if len(worlds) == len(people):
        world = np.array([[(lm.x, lm.y, lm.z) for lm in person] for person in worlds], dtype=np.float64)
    else:
        world = np.full_like(xyz, np.nan)
    return Candidates(xyz, world, vis)


def _import_mediapipe() -> None:
    """Import MediaPipe without the plotting and audio libraries its package drags in.

    ``mediapipe/__init__`` imports every task: its drawing utilities import
    matplotlib.pyplot (0.4 s here) and its audio recorder sounddevice (0.06 s),
    though pose landmarking uses neither. Placeholders stand in for them during
    the import (sounddevice's absence mediapipe handles itself) and are removed
    right after, so a later ``import matplotlib`` gets the real one; only
    mediapipe's own ``plot_landmarks`` (never called here) loses its plotting.
    Every worker process starts half a second sooner.
    """
    if "mediapipe" in sys.modules:
        return
    placeholders: dict[str, types.ModuleType | None] = {}
    if "matplotlib" not in sys.modules:
        placeholders["matplotlib"] = types.ModuleType("matplotlib")
        placeholders["matplotlib.pyplot"] = types.ModuleType("matplotlib.pyplot")
    if "sounddevice" not in sys.modules:
        placeholders["sounddevice"] = None  # import raises ImportError, which mediapipe catches
    sys.modules.update(placeholders)
    try:
        import mediapipe  # noqa: F401
    finally:
        for name in placeholders:
            sys.modules.pop(name, None)


class PoseEstimator:
    """MediaPipe PoseLandmarker for a stream of RGB frames with timestamps.

    ``mode="video"`` (files and cameras: the detector is skipped while a person
    is tracked) or ``"image"`` (every frame independent). Use as a context
    manager; timestamps passed to :meth:`process` must increase.
    """

    def __init__(self, settings: EstimatorSettings | None = None, *, mode: str = "video") -> None:
        self.settings = settings or EstimatorSettings()
        if mode not in ("video", "image"):
            raise ValueError("mode must be 'video' or 'image'")
        self.mode = mode
        self.model_path: Path = resolve_model(self.settings.model)
        self._landmarker = None
        self._last_ts = -1

    def __enter__(self) -> "PoseEstimator":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")  # keep MediaPipe's C++ logs quiet
        _import_mediapipe()
        import mediapipe as mp
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        s = self.settings
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=(vision.RunningMode.VIDEO if self.mode == "video"
                          else vision.RunningMode.IMAGE),
            num_poses=s.num_poses,
            min_pose_detection_confidence=s.min_detection_confidence,
            min_pose_presence_confidence=s.min_presence_confidence,
            min_tracking_confidence=s.min_tracking_confidence,
        )
        try:
            with quiet_native_stderr():
                self._landmarker = vision.PoseLandmarker.create_from_options(options)
                # The first inference prints more start-up warnings: run it here, silenced.
                warmup = mp.Image(image_format=mp.ImageFormat.SRGB,
                                  data=np.zeros((64, 64, 3), np.uint8))
                if self.mode == "image":
                    self._landmarker.detect(warmup)
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"cannot load pose model {self.model_path}: {exc}") from None
        self._last_ts = -1
        self._first = self.mode == "video"

    def close(self) -> None:
        if self._landmarker is not None:
            with quiet_native_stderr():  # mediapipe 1.2.3 logs "DestroyAccelerator" to fd 2
                self._landmarker.close()
            self._landmarker = None

    def process(self, rgb: np.ndarray, t_ms: float) -> Candidates:
        """Run the model on one RGB uint8 frame (H, W, 3) shown at ``t_ms``."""
        import mediapipe as mp

        if self._landmarker is None:
            self.open()
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        if self.mode == "image":
            return _to_candidates(self._landmarker.detect(image))
        # VIDEO mode wants strictly increasing integer milliseconds.
        ts = max(int(round(t_ms)), self._last_ts + 1)
        self._last_ts = ts
        if self._first:
            self._first = False
            with quiet_native_stderr():
                return _to_candidates(self._landmarker.detect_for_video(image, ts))
        return _to_candidates(self._landmarker.detect_for_video(image, ts))
