"""Landmark names and the one pose container, :class:`PoseSequence`.

Nothing here imports MediaPipe: the estimator (``formcheck.estimator``) is the
only module that does, and it converts MediaPipe results into a
``PoseSequence`` at the edge.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

import numpy as np

NUM_LANDMARKS = 33


class Landmark(enum.IntEnum):
    """The 33 BlazePose landmarks, by index. LEFT/RIGHT are the subject's sides."""

    NOSE = 0
    LEFT_EYE_INNER = 1
    LEFT_EYE = 2
    LEFT_EYE_OUTER = 3
    RIGHT_EYE_INNER = 4
    RIGHT_EYE = 5
    RIGHT_EYE_OUTER = 6
    LEFT_EAR = 7
    RIGHT_EAR = 8
    MOUTH_LEFT = 9
    MOUTH_RIGHT = 10
    LEFT_SHOULDER = 11
    RIGHT_SHOULDER = 12
    LEFT_ELBOW = 13
    RIGHT_ELBOW = 14
    LEFT_WRIST = 15
    RIGHT_WRIST = 16
    LEFT_PINKY = 17
    RIGHT_PINKY = 18
    LEFT_INDEX = 19
    RIGHT_INDEX = 20
    LEFT_THUMB = 21
    RIGHT_THUMB = 22
    LEFT_HIP = 23
    RIGHT_HIP = 24
    LEFT_KNEE = 25
    RIGHT_KNEE = 26
    LEFT_ANKLE = 27
    RIGHT_ANKLE = 28
    LEFT_HEEL = 29
    RIGHT_HEEL = 30
    LEFT_FOOT_INDEX = 31
    RIGHT_FOOT_INDEX = 32


class Side(str, enum.Enum):
    """A body side (the subject's), or both for bilateral exercises."""

    LEFT = "left"
    RIGHT = "right"
    BOTH = "both"

    @property
    def other(self) -> "Side":
        if self is Side.BOTH:
            return Side.BOTH
        return Side.RIGHT if self is Side.LEFT else Side.LEFT


# Landmarks of one leg and the trunk, per side (the subject's side).
LEG = {
    Side.LEFT: (Landmark.LEFT_HIP, Landmark.LEFT_KNEE, Landmark.LEFT_ANKLE,
                Landmark.LEFT_HEEL, Landmark.LEFT_FOOT_INDEX),
    Side.RIGHT: (Landmark.RIGHT_HIP, Landmark.RIGHT_KNEE, Landmark.RIGHT_ANKLE,
                 Landmark.RIGHT_HEEL, Landmark.RIGHT_FOOT_INDEX),
}

# Skeleton edges drawn by the overlay (pairs of landmarks).
SKELETON_EDGES: tuple[tuple[Landmark, Landmark], ...] = (
    (Landmark.LEFT_SHOULDER, Landmark.RIGHT_SHOULDER),
    (Landmark.LEFT_SHOULDER, Landmark.LEFT_ELBOW),
    (Landmark.LEFT_ELBOW, Landmark.LEFT_WRIST),
    (Landmark.RIGHT_SHOULDER, Landmark.RIGHT_ELBOW),
    (Landmark.RIGHT_ELBOW, Landmark.RIGHT_WRIST),
    (Landmark.LEFT_SHOULDER, Landmark.LEFT_HIP),
    (Landmark.RIGHT_SHOULDER, Landmark.RIGHT_HIP),
    (Landmark.LEFT_HIP, Landmark.RIGHT_HIP),
    (Landmark.LEFT_HIP, Landmark.LEFT_KNEE),
    (Landmark.LEFT_KNEE, Landmark.LEFT_ANKLE),
    (Landmark.LEFT_ANKLE, Landmark.LEFT_HEEL),
    (Landmark.LEFT_HEEL, Landmark.LEFT_FOOT_INDEX),
    (Landmark.LEFT_ANKLE, Landmark.LEFT_FOOT_INDEX),
    (Landmark.RIGHT_HIP, Landmark.RIGHT_KNEE),
    (Landmark.RIGHT_KNEE, Landmark.RIGHT_ANKLE),
    (Landmark.RIGHT_ANKLE, Landmark.RIGHT_HEEL),
    (Landmark.RIGHT_HEEL, Landmark.RIGHT_FOOT_INDEX),
    (Landmark.RIGHT_ANKLE, Landmark.RIGHT_FOOT_INDEX),
)


@dataclass(frozen=True)
class PoseSequence:
    """Landmarks of one person over time. NaN where no person was found.

    Attributes:
        timestamps_ms: (T,) presentation time of each frame, ms, strictly increasing.
        xyz: (T, 33, 3) image landmarks: x and y normalised to the frame width
            and height (x right, y down, 0..1), z MediaPipe's relative depth.
        world: (T, 33, 3) MediaPipe world landmarks in metres, origin between
            the hips, axes aligned with the camera (x image right, y down, z away
            from the camera); noisy in depth.
        visibility: (T, 33) MediaPipe visibility score, 0..1.
        width, height: frame size in pixels (after rotation), used to turn
            normalised coordinates into pixels so that angles are true.
    """

    timestamps_ms: np.ndarray
    xyz: np.ndarray
    world: np.ndarray
    visibility: np.ndarray
    width: int
    height: int
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        t = np.asarray(self.timestamps_ms, dtype=np.float64)
        n = t.shape[0]
        object.__setattr__(self, "timestamps_ms", t)
        for name, shape in (("xyz", (n, NUM_LANDMARKS, 3)),
                            ("world", (n, NUM_LANDMARKS, 3)),
                            ("visibility", (n, NUM_LANDMARKS))):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.shape != shape:
                raise ValueError(f"PoseSequence.{name} has shape {arr.shape}, expected {shape}")
            object.__setattr__(self, name, arr)
        if t.ndim != 1:
            raise ValueError("timestamps_ms must be one-dimensional")
        if n > 1 and not np.all(np.diff(t) > 0):
            raise ValueError("timestamps_ms must be strictly increasing")
        if self.width <= 0 or self.height <= 0:
            raise ValueError("width and height must be positive")

    # -- construction -----------------------------------------------------
    @classmethod
    def empty(cls, timestamps_ms: np.ndarray, width: int, height: int) -> "PoseSequence":
        """A sequence with every frame missing (all NaN)."""
        n = len(timestamps_ms)
        nan3 = np.full((n, NUM_LANDMARKS, 3), np.nan)
        return cls(np.asarray(timestamps_ms, float), nan3, nan3.copy(),
                   np.full((n, NUM_LANDMARKS), np.nan), width, height)

    @classmethod
    def concatenate(cls, parts: list["PoseSequence"]) -> "PoseSequence":
        if not parts:
            raise ValueError("nothing to concatenate")
        first = parts[0]
        return cls(
            np.concatenate([p.timestamps_ms for p in parts]),
            np.concatenate([p.xyz for p in parts]),
            np.concatenate([p.world for p in parts]),
            np.concatenate([p.visibility for p in parts]),
            first.width, first.height, dict(first.meta))

    # -- numpy-like access --------------------------------------------------
    def __len__(self) -> int:
        return int(self.timestamps_ms.shape[0])

    def __getitem__(self, index) -> "PoseSequence":
        """Select frames like numpy: ``seq[10:40]``, ``seq[mask]``, ``seq[[1, 5]]``."""
        if isinstance(index, (int, np.integer)):
            index = slice(int(index), int(index) + 1 if index != -1 else None)
        return replace(self, timestamps_ms=self.timestamps_ms[index], xyz=self.xyz[index],
                       world=self.world[index], visibility=self.visibility[index])

    def with_arrays(self, **arrays) -> "PoseSequence":
        """A copy with some arrays replaced (e.g. smoothed ``xyz``)."""
        return replace(self, **arrays)

    # -- derived views ------------------------------------------------------
    @property
    def times_s(self) -> np.ndarray:
        return self.timestamps_ms / 1000.0

    @property
    def detected(self) -> np.ndarray:
        """(T,) True where a person was found in the frame."""
        return ~np.isnan(self.xyz[:, :, 0]).all(axis=1)

    @property
    def detection_rate(self) -> float:
        return float(self.detected.mean()) if len(self) else 0.0

    def pixels(self) -> np.ndarray:
        """(T, 33, 2) image landmarks in pixels (x right, y down)."""
        scale = np.array([self.width, self.height], dtype=np.float64)
        return self.xyz[:, :, :2] * scale

    def px(self, landmark: Landmark) -> np.ndarray:
        """(T, 2) one landmark in pixels."""
        return self.xyz[:, int(landmark), :2] * np.array([self.width, self.height], float)

    @property
    def fps(self) -> float:
        """Mean frame rate from the timestamps (for display only, never for timing)."""
        if len(self) < 2:
            return 0.0
        return float((len(self) - 1) / ((self.timestamps_ms[-1] - self.timestamps_ms[0]) / 1000.0))
