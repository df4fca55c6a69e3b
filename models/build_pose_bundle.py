"""Rebuild models/pose_landmarker_full.task from the mediapipe 0.10.21 wheel.

The newest mediapipe (1.x) ships no model files, and Google's official
``.task`` bundles come from a host that offline machines cannot reach. The
mediapipe 0.10.21 wheel on the package index still carries the BlazePose GHUM
3D "full" models as bare ``.tflite`` files. The Tasks API refuses them until
image-input metadata (normalisation) is written into each, so this script:

1. takes the two files out of the wheel (``pip download --no-deps
   mediapipe==0.10.21`` if no wheel is given),
2. writes image-input metadata: detector mean 127.5 / std 127.5 (input range
   [-1, 1]); landmark model mean 0 / std 255 (range [0, 1]),
3. zips them as ``pose_detector.tflite`` + ``pose_landmarks_detector.tflite``
   (the layout of Google's ``pose_landmarker_*.task``).

Run it in a throw-away environment: mediapipe 0.10.21 pins numpy<2 and pulls
in jax. ::

    python3 -m venv /tmp/mpold && /tmp/mpold/bin/pip install mediapipe==0.10.21
    /tmp/mpold/bin/python models/build_pose_bundle.py [--wheel mediapipe-0.10.21-*.whl]

then update the sha256 in formcheck/models.py and models/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

DETECTOR = "mediapipe/modules/pose_detection/pose_detection.tflite"
LANDMARKS = "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"
HERE = Path(__file__).resolve().parent
ALIGNMENT = 4  # as MediaPipe's own bundle writer


def fetch_wheel(dest: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(dest),
                    "mediapipe==0.10.21", "--python-version", "3.11",
                    "--only-binary=:all:"], check=True)
    return next(dest.glob("mediapipe-0.10.21-*.whl"))


def with_image_metadata(model: bytes, name: str, mean: float, std: float) -> bytes:
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer

    writer = metadata_writer.MetadataWriter.create(bytearray(model))
    writer.add_general_info(name, "BlazePose GHUM 3D (mediapipe 0.10.21), Apache-2.0")
    writer.add_image_input(norm_mean=[mean], norm_std=[std])
    content, _ = writer.populate()
    return bytes(content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="mediapipe 0.10.21 wheel (downloaded if absent)")
    parser.add_argument("--out", type=Path, default=HERE / "pose_landmarker_full.task")
    args = parser.parse_args()

    from mediapipe.tasks.python.metadata.metadata_writers import model_asset_bundle_utils

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            detector = zf.read(DETECTOR)
            landmarks = zf.read(LANDMARKS)
    print(f"detector  {len(detector):>9,} bytes  sha256 {hashlib.sha256(detector).hexdigest()}")
    print(f"landmarks {len(landmarks):>9,} bytes  sha256 {hashlib.sha256(landmarks).hexdigest()}")

    bundle = {
        "pose_detector.tflite": with_image_metadata(detector, "pose_detector", 127.5, 127.5),
        "pose_landmarks_detector.tflite": with_image_metadata(
            landmarks, "pose_landmarks_detector", 0.0, 255.0),
    }
    # Same bytes on every rebuild: fixed entry dates, aligned like MediaPipe's own writer.
    with model_asset_bundle_utils.AlignZipFile(str(args.out), mode="w", alignment=ALIGNMENT) as zf:
        for name, content in bundle.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), content)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes) sha256 {digest}")


if __name__ == "__main__":
    main()
