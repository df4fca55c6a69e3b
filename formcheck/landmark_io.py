"""Write (and read back) landmark series as JSON, CSV or NPZ, atomically.

JSON layout (``formcheck pose -o OUT.json``)::

    {"fps": 29.97, "width": 480, "height": 854, "source": "clip.mp4",
     "landmark_names": ["nose", ...],
     "frames": [{"t": 0.0, "landmarks": [[x, y, z, visibility] x 33] or null,
                 "world": [[x, y, z] x 33] or null}, ...]}

x and y are normalised to the frame (0..1, y down), z is MediaPipe's relative
depth, ``world`` is in metres. CSV has one row per frame and landmark.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from formcheck.errors import OutputError
from formcheck.fsutil import folder_problem, usual_mode
from formcheck.pose import Landmark, PoseSequence


def check_output_path(path: Path, suffixes: tuple[str, ...] | None = None) -> None:
    """Fail early (before minutes of work) if ``path`` cannot be written."""
    if suffixes and path.suffix.lower() not in suffixes:
        raise OutputError(f"{path}: output must end in {', '.join(suffixes)}")
    problem = folder_problem(path.parent if str(path.parent) else Path("."))
    if problem:
        raise OutputError(f"cannot write {path}: {problem}")
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")


@contextlib.contextmanager
def atomic_output(path: Path, mode: str = "w") -> Iterator[io.IOBase]:
    """Open a temporary file beside ``path``; rename it over ``path`` on success.

    A failure (full disk, Ctrl-C) leaves no half-written ``path`` behind.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent or ".")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, usual_mode())  # mkstemp's file is private; the output should not be
        with os.fdopen(fd, mode, **({"newline": "", "encoding": "utf-8"} if "b" not in mode else {})) as f:
            yield f
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def pose_to_dict(seq: PoseSequence) -> dict:
    frames = []
    for i in range(len(seq)):
        if np.isnan(seq.xyz[i]).all():
            frames.append({"t": round(seq.timestamps_ms[i] / 1000.0, 4), "landmarks": None, "world": None})
            continue
        lm = np.concatenate([seq.xyz[i], seq.visibility[i][:, None]], axis=1)
        frames.append({
            "t": round(seq.timestamps_ms[i] / 1000.0, 4),
            "landmarks": [[_num(v) for v in row] for row in lm],
            "world": [[_num(v) for v in row] for row in seq.world[i]],
        })
    return {"fps": round(seq.fps, 3), "width": seq.width, "height": seq.height,
            "source": seq.meta.get("source"),
            "landmark_names": [lm.name.lower() for lm in Landmark], "frames": frames}


def _num(v: float) -> float | None:
    return None if not np.isfinite(v) else round(float(v), 5)


def dump_pose_json(seq: PoseSequence, f) -> None:
    """The landmarks JSON of ``formcheck pose``, compact, to an open text file."""
    json.dump(pose_to_dict(seq), f, separators=(",", ":"))


def write_pose(seq: PoseSequence, path: Path) -> None:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        with atomic_output(path) as f:
            dump_pose_json(seq, f)
    elif suffix == ".csv":
        with atomic_output(path) as f:
            w = csv.writer(f)
            w.writerow(["frame", "t", "landmark", "x", "y", "z", "visibility",
                        "world_x", "world_y", "world_z"])
            for i in range(len(seq)):
                t = round(seq.timestamps_ms[i] / 1000.0, 4)
                for lm in Landmark:
                    x, y, z = seq.xyz[i, lm]
                    wx, wy, wz = seq.world[i, lm]
                    w.writerow([i, t, lm.name.lower(), *(_csv(v) for v in (x, y, z, seq.visibility[i, lm],
                                                                         wx, wy, wz))])
    elif suffix == ".npz":
        with atomic_output(path, "wb") as f:
            np.savez_compressed(f, timestamps_ms=seq.timestamps_ms, xyz=seq.xyz, world=seq.world,
                                visibility=seq.visibility, width=seq.width, height=seq.height)
    else:
        raise OutputError(f"{path}: output must end in .json, .csv or .npz")


def _csv(v: float) -> str:
    return "" if not np.isfinite(v) else f"{v:.5f}"


def read_pose_npz(path: Path) -> PoseSequence:
    with np.load(path) as d:
        return PoseSequence(d["timestamps_ms"], d["xyz"], d["world"], d["visibility"],
                            int(d["width"]), int(d["height"]))
