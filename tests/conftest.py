"""Shared fixtures: where the clips are, and the pose of a clip computed once.

Running the pose model over a clip costs about a second per 30 frames, so the
raw landmarks of each clip are cached on disk (pytest's cache folder), keyed
by the clip's bytes and the source of every module that produces them: a
change to the decoder, the estimator, the tracker or the model recomputes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_videos"
SHARED = Path(os.environ.get("FORMCHECK_SHARED", REPO.parent / "shared"))
REAL = SHARED / "clips" / "real"
SYNTH = SHARED / "clips" / "synthetic"
_PRODUCERS = ["video.py", "estimator.py", "tracking.py", "extract.py", "pose.py", "models.py"]


def shared_clip(name: str) -> Path:
    """A clip from ../shared/clips (real/ or synthetic/); skips the test if absent."""
    for folder in (REAL, SYNTH):
        if (folder / name).is_file():
            return folder / name
    if (SAMPLES / name).is_file():
        return SAMPLES / name
    pytest.skip(f"{name} not available (../shared/clips is absent)")


def _key(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    pkg = REPO / "formcheck"
    for name in _PRODUCERS:
        h.update((pkg / name).read_bytes())
    return h.hexdigest()[:24]


def cached_pose(path: Path, cache_dir: Path):
    """Raw PoseSequence of a clip, from the disk cache or the real pipeline."""
    from formcheck.extract import extract_pose
    from formcheck.landmark_io import read_pose_npz, write_pose

    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"{path.stem}-{_key(path)}.npz"
    if target.is_file():
        return read_pose_npz(target)
    seq = extract_pose(path)
    write_pose(seq, target)
    return read_pose_npz(target)


@pytest.fixture(scope="session")
def pose_cache_dir(request, tmp_path_factory) -> Path:
    cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
    return Path(cache.mkdir("formcheck_pose")) if cache else tmp_path_factory.mktemp("formcheck_pose")


@pytest.fixture(scope="session")
def pose_of(pose_cache_dir):
    """pose_of(path) -> raw PoseSequence (cached)."""
    return lambda path: cached_pose(Path(path), pose_cache_dir)


@pytest.fixture(scope="session")
def analysis_of(pose_of):
    """analysis_of(path, exercise=None) -> Analysis from the cached raw pose."""
    from formcheck.analysis import analyze_pose
    from formcheck.video import probe

    memo: dict = {}

    def run(path, exercise=None):
        key = (str(path), exercise)
        if key not in memo:
            memo[key] = analyze_pose(pose_of(path), exercise=exercise, info=probe(path),
                                     source=str(path))
        return memo[key]

    return run


def load_gt(path: Path) -> dict:
    return json.loads(path.with_suffix("").with_suffix(".gt.json").read_text())


def read_tsv(path: Path) -> list[dict]:
    """Rows of a labels file (``../shared/clips/real``); skips the test if it is absent."""
    if not path.is_file():
        pytest.skip(f"{path.name} not available (../shared/clips is absent)")
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:] if line.strip()]


def pixel_error(seq, gt: dict, names=("hip", "knee", "ankle", "shoulder")) -> np.ndarray:
    """Per-frame, per-joint 2D distance (px) between landmarks and GT joint centres."""
    from formcheck.pose import Landmark as L

    mp = {"hipR": L.RIGHT_HIP, "hipL": L.LEFT_HIP, "kneeR": L.RIGHT_KNEE, "kneeL": L.LEFT_KNEE,
          "ankleR": L.RIGHT_ANKLE, "ankleL": L.LEFT_ANKLE, "shoulderR": L.RIGHT_SHOULDER,
          "shoulderL": L.LEFT_SHOULDER}
    px = seq.pixels()
    errs = []
    for key, lm in mp.items():
        if not key.startswith(names):
            continue
        g = np.array([f["j2d"][key] for f in gt["frames"]], dtype=float)
        errs.append(np.linalg.norm(px[: len(g), lm] - g, axis=1))
    return np.stack(errs, axis=1)
