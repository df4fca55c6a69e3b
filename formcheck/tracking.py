"""Follow one person: choose the main subject and keep identity by continuity.

The pose model may return several people per frame (``num_poses > 1``), or,
tracking one, jump to a bystander when it loses the subject. The
:class:`SubjectTracker` picks the most complete, largest person at the start
(or after a long loss), then accepts in each frame only the candidate that
continues the subject's path: a candidate whose hip centre jumps by more than
``max_jump_torso`` torso lengths (plus what the subject could move in the time
since last seen), or whose size changes abruptly, is somebody else, and the
frame is left empty rather than filled with the wrong person.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from formcheck.estimator import Candidates
from formcheck.pose import LEG, Landmark, Side

_HIPS = [int(Landmark.LEFT_HIP), int(Landmark.RIGHT_HIP)]
_SHOULDERS = [int(Landmark.LEFT_SHOULDER), int(Landmark.RIGHT_SHOULDER)]
_LEGS = [int(i) for side in (Side.LEFT, Side.RIGHT) for i in LEG[side][:3]]


@dataclass(frozen=True)
class TrackerSettings:
    max_jump_torso: float = 0.6  # per frame at rest; a hip centre moves far less than this
    speed_torso_per_s: float = 4.0  # allowance per second unseen (a brisk step)
    max_scale_change: float = 0.35  # relative change of torso length between frames
    reacquire_after_s: float = 1.0  # after this long without the subject, pick afresh


def hip_and_torso(xyz: np.ndarray, aspect: float) -> tuple[np.ndarray, np.ndarray]:
    """Hip centre (K, 2) and torso length (K,) of K people's normalised landmarks (K, 33, 3),
    in an isotropic frame (x in units of the frame height; ``aspect`` = width / height)."""
    scale = np.array([aspect, 1.0])
    hip = xyz[:, _HIPS, :2].mean(axis=1) * scale
    shoulder = xyz[:, _SHOULDERS, :2].mean(axis=1) * scale
    return hip, np.linalg.norm(shoulder - hip, axis=1)


def _features(c: Candidates, aspect: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hip centre (K, 2), torso length (K,), completeness score (K,) in an isotropic frame."""
    hip, torso = hip_and_torso(c.xyz, aspect)
    pts = c.xyz[:, :, :2] * np.array([aspect, 1.0])
    height = np.nanmax(pts[:, :, 1], axis=1) - np.nanmin(pts[:, :, 1], axis=1)
    legs_visible = np.nan_to_num(c.visibility[:, _LEGS]).mean(axis=1)
    return hip, torso, height * (0.25 + legs_visible)


class SubjectTracker:
    """Stateful: feed each frame's candidates in time order, get the subject's index."""

    def __init__(self, width: int, height: int, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self.aspect = width / height
        self.reset()

    def reset(self) -> None:
        self._hip: np.ndarray | None = None
        self._torso = 0.0
        self._last_t = -np.inf
        self.rejected = 0  # candidates refused as somebody else

    def update(self, candidates: Candidates, t_ms: float) -> int | None:
        """Index of the subject among ``candidates``, or None if not in this frame."""
        if len(candidates) == 0:
            return None
        s = self.settings
        hip, torso, score = _features(candidates, self.aspect)
        ok = np.isfinite(hip).all(axis=1) & (torso > 0)
        if not ok.any():
            return None
        t_s = t_ms / 1000.0
        unseen_s = t_s - self._last_t
        if self._hip is None or unseen_s > s.reacquire_after_s:
            idx = int(np.argmax(np.where(ok, score, -np.inf)))
        else:
            jump = np.linalg.norm(hip - self._hip, axis=1) / self._torso
            allowed = s.max_jump_torso + s.speed_torso_per_s * unseen_s
            scale_change = np.abs(torso / self._torso - 1.0)
            fits = ok & (jump <= allowed) & (scale_change <= s.max_scale_change + unseen_s)
            if not fits.any():
                self.rejected += 1
                return None
            idx = int(np.argmin(np.where(fits, jump, np.inf)))
        self._hip, self._torso, self._last_t = hip[idx], float(torso[idx]), t_s
        return idx
