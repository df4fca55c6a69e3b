"""formcheck.video on real files generated with PyAV (no mocks)."""

from __future__ import annotations

import glob
import re
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from formcheck.errors import CameraError, InputError, OutputError
from formcheck.camera import CameraSource, FileCamera, open_camera
from formcheck.video import Frame, VideoWriter, _repair_time, probe, read_frames

RED = (220, 30, 30)


def test_image(width: int, height: int, i: int = 0) -> np.ndarray:
    """Grey background, a RED square in the top-left quarter."""
    img = np.full((height, width, 3), 90, np.uint8)
    img[: height // 2, : width // 2] = RED
    img[-4:, :] = i % 256  # a changing strip so frames differ
    return img


test_image.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def make_clip(path: Path, width: int = 96, height: int = 64, n: int = 30, *,
              rate: Fraction | int = 30, pts_ms: list[int] | None = None,
              codec: str = "libx264", pix_fmt: str = "yuv420p", rotation: int | None = None,
              options: dict[str, str] | None = None, fmt: str | None = None) -> Path:
    """Write a small clip; ``pts_ms`` gives each frame's time on a 1/1000 clock."""
    with av.open(str(path), "w", format=fmt, options=options or {}) as c:
        s = c.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = width, height, pix_fmt
        if pts_ms is not None:
            s.codec_context.time_base = s.time_base = Fraction(1, 1000)
        if rotation is not None:
            s.set_display_rotation(rotation)
        for i in range(n):
            f = av.VideoFrame.from_ndarray(test_image(width, height, i * 8), format="rgb24")
            f.pts = pts_ms[i] if pts_ms is not None else i
            c.mux(s.encode(f))
        c.mux(s.encode())
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4")


def assert_red_top_left(image: np.ndarray) -> None:
    h, w, _ = image.shape
    assert np.abs(image[h // 4, w // 4].astype(int) - RED).max() < 20
    assert np.abs(image[h // 2 + 4, w - 4].astype(int) - 90).max() < 20


# -- probe and read_frames -----------------------------------------------------
def test_probe_fields(clip: Path) -> None:
    info = probe(clip)
    assert (info.width, info.height, info.rotation_deg) == (96, 64, 0)
    assert info.fps == pytest.approx(30.0) and isinstance(info.fps, float)
    assert info.duration_s == pytest.approx(1.0, abs=0.05)
    assert info.frame_count == 30
    assert info.codec == "h264" and info.has_video and info.path == str(clip)


def test_fps_is_not_rounded(tmp_path: Path) -> None:
    info = probe(make_clip(tmp_path / "ntsc.mp4", n=10, rate=Fraction(30000, 1001)))
    assert info.fps == pytest.approx(29.97, abs=0.01)


def test_timestamps_increase_and_span_duration(clip: Path) -> None:
    frames = list(read_frames(clip))
    t = np.array([f.t_ms for f in frames])
    assert [f.index for f in frames] == list(range(30))
    assert t[0] == 0.0 and np.all(np.diff(t) > 0)
    assert t[-1] == pytest.approx(29 * 1000 / 30, abs=1.0)
    assert all(f.image.shape == (64, 96, 3) and f.image.dtype == np.uint8 for f in frames)
    assert_red_top_left(frames[0].image)


@pytest.mark.parametrize("ext, codec, pix_fmt", [
    ("mp4", "libx264", "yuv444p"), ("mov", "libx264", "yuv444p"),
    ("m4v", "libx264", "yuv444p"), ("mkv", "ffv1", "yuv444p"),
    ("webm", "libvpx-vp9", "yuv444p"), ("avi", "mjpeg", "yuvj444p"),
])
def test_odd_size_decodes_contiguous_rgb(tmp_path: Path, ext: str, codec: str,
                                         pix_fmt: str) -> None:
    path = make_clip(tmp_path / f"odd.{ext}", 161, 91, n=5, codec=codec, pix_fmt=pix_fmt)
    frames = list(read_frames(path))
    assert len(frames) == 5
    for f in frames:
        assert f.image.shape == (91, 161, 3) and f.image.flags["C_CONTIGUOUS"]
        assert f.image.strides == (161 * 3, 3, 1)
    assert_red_top_left(frames[0].image)


def test_variable_frame_rate_keeps_real_times(tmp_path: Path) -> None:
    pts = [0, 10, 50, 60, 200, 210, 215, 400, 401, 500] + [600 + 33 * i for i in range(10)]
    path = make_clip(tmp_path / "vfr.mp4", n=len(pts), pts_ms=pts)
    assert [f.t_ms for f in read_frames(path)] == pytest.approx(pts, abs=0.01)


def test_missing_pts_get_nominal_interval(tmp_path: Path) -> None:
    # A raw H.264 stream has no timestamps at all.
    path = make_clip(tmp_path / "raw.h264", n=10, fmt="h264")
    t = [f.t_ms for f in read_frames(path)]
    assert t == pytest.approx([i * 1000 / 30 for i in range(10)], abs=0.01)


@pytest.mark.parametrize("pts, prev, origin, expected", [
    (None, None, None, 0.0),    # first frame
    (90, 0.0, 0.0, 90.0),       # normal
    (90, 90.0, 0.0, 91.0),      # duplicate -> previous + 1 ms
    (30, 90.0, 0.0, 91.0),      # backwards -> previous + 1 ms
    (None, 90.0, 0.0, 123.0),   # missing -> previous + interval
    (1090, 0.0, 1000.0, 90.0),  # relative to the first frame
])
def test_repair_time(pts: int | None, prev: float | None, origin: float | None,
                     expected: float) -> None:
    assert _repair_time(pts, Fraction(1, 1000), origin, prev, 33.0) == pytest.approx(expected)


@pytest.mark.skipif(not hasattr(av.video.stream.VideoStream, "set_display_rotation"),
                    reason="this PyAV cannot write a display matrix")
@pytest.mark.parametrize("rotation_ccw, rotation_deg", [(-90, 90), (180, 180), (90, 270)])
def test_display_matrix_rotation_is_applied(tmp_path: Path, rotation_ccw: int,
                                            rotation_deg: int) -> None:
    path = make_clip(tmp_path / "rot.mp4", 96, 64, n=3, rotation=rotation_ccw)
    info = probe(path)
    assert info.rotation_deg == rotation_deg
    swapped = rotation_deg in (90, 270)
    assert (info.width, info.height) == ((64, 96) if swapped else (96, 64))
    image = next(read_frames(path)).image
    assert image.shape == (info.height, info.width, 3) and image.flags["C_CONTIGUOUS"]
    # Where the stored top-left red quarter ends up once displayed.
    h, w, _ = image.shape
    corner = {90: (h // 4, 3 * w // 4), 180: (3 * h // 4, 3 * w // 4),
              270: (3 * h // 4, w // 4)}[rotation_deg]
    assert np.abs(image[corner].astype(int) - RED).max() < 20


def test_max_side_downscales(clip: Path) -> None:
    frame = next(read_frames(clip, max_side=48))
    assert frame.image.shape == (32, 48, 3)


REAL_CLIPS = sorted(glob.glob("/work/shared/clips/real/*.mp4"))


@pytest.mark.skipif(not REAL_CLIPS, reason="shared real clips not present")
def test_real_clip_odd_stride() -> None:
    path = next((p for p in REAL_CLIPS if "myfitcal_bss" in p), REAL_CLIPS[0])
    info = probe(path)
    frames = read_frames(path)
    frame = next(frames)
    frames.close()
    assert frame.image.shape == (info.height, info.width, 3)
    assert frame.image.flags["C_CONTIGUOUS"]


# -- bad inputs -------------------------------------------------------------
def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=44100)
        for i in range(5):
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32),
                                            format="fltp", layout="mono")
            fr.sample_rate, fr.pts = 44100, i * 1024
            c.mux(s.encode(fr))
        c.mux(s.encode())
    return path


def _cut(path: Path, keep: float, *, from_mdat: bool = False) -> Path:
    """A copy cut after ``keep`` of the file (or of the frame data after the
    ``mdat`` box of a +faststart mp4)."""
    data = path.read_bytes()
    start = data.find(b"mdat") if from_mdat else 0
    out = path.with_name("cut_" + path.name)
    out.write_bytes(data[: start + int((len(data) - start) * keep)])
    return out


def _faststart_clip(path: Path) -> Path:
    return make_clip(path, n=40, options={"movflags": "+faststart"})


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


BAD_INPUTS = {
    "missing": (lambda d: d / "nope.mp4", "file not found"),
    "directory": (lambda d: d, "is a directory"),
    "empty": (lambda d: _write(d / "empty.mp4", b""), "file is empty"),
    "text": (lambda d: _write(d / "t.mp4", b"not a video\n" * 50), "not a video file"),
    "audio only": (lambda d: _audio_only(d / "a.m4a"), "no video stream (audio only)"),
    "cut, index at the end": (lambda d: _cut(make_clip(d / "c.mp4"), 0.5), "not a video file"),
    "cut in the header": (lambda d: _cut(_faststart_clip(d / "h.mp4"), 0.05), "no streams"),
    "cut in the first frame": (lambda d: _cut(_faststart_clip(d / "f.mp4"), 0.05, from_mdat=True),
                               "no decodable video frames"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_raises_one_line_input_error(tmp_path: Path, case: str) -> None:
    build, message = BAD_INPUTS[case]
    path = build(tmp_path)
    for call in (probe, lambda p: list(read_frames(p))):
        with pytest.raises(InputError, match=re.escape(message)) as exc_info:
            call(path)
        text = str(exc_info.value)
        assert "\n" not in text and str(path) in text


def test_truncated_file_yields_what_decodes(tmp_path: Path) -> None:
    cut = _cut(_faststart_clip(tmp_path / "fs.mp4"), 0.6, from_mdat=True)
    start = time.monotonic()
    frames = list(read_frames(cut))
    assert time.monotonic() - start < 5
    assert 0 < len(frames) < 40
    assert np.all(np.diff([f.t_ms for f in frames]) > 0)


# -- the writer -------------------------------------------------------------
def test_writer_round_trip_odd_size(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    times = [i * 33.367 + (5.0 if i > 20 else 0.0) for i in range(30)]
    with VideoWriter(out, 161, 91, fps_hint=29.97) as writer:
        for i, t in enumerate(times):
            writer.write(test_image(161, 91, i * 8), t)
    assert out.exists() and not list(tmp_path.glob(".*partial*"))
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
        assert (s.width, s.height) == (162, 92)  # padded by one pixel to even
    frames = list(read_frames(out))
    assert len(frames) == 30
    assert np.abs(np.array([f.t_ms for f in frames]) - times).max() < 1.0
    assert_red_top_left(frames[0].image[:91, :161])
    data = out.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # +faststart


def test_writer_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        VideoWriter(tmp_path / "no" / "out.mp4", 64, 64, 30)


def test_writer_removes_partial_file_on_error(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(out, 64, 48, 30) as writer:
            for i in range(60):  # past the encoder's look-ahead: packets reach the file
                writer.write(test_image(64, 48, i), i * 40.0)
            assert writer.partial_path.exists()
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_bad_frames(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "out.mp4", 64, 48, 30) as writer:
        with pytest.raises(ValueError):
            writer.write(np.zeros((48, 63, 3), np.uint8), 0.0)
        writer.write(test_image(64, 48), 10.0)
        with pytest.raises(ValueError):
            writer.write(test_image(64, 48), 10.0)


def test_writer_with_no_frames(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="no frames"):
        with VideoWriter(tmp_path / "out.mp4", 64, 48, 30):
            pass
    assert list(tmp_path.iterdir()) == []


# -- live sources -------------------------------------------------------------
def test_file_camera_every_frame(clip: Path) -> None:
    with FileCamera(clip, realtime=False) as cam:
        frames: list[Frame] = []
        while (frame := cam.read()) is not None:
            frames.append(frame)
            time.sleep(0.002)
        assert [f.index for f in frames] == list(range(30)) and cam.dropped == 0
        assert (cam.info.width, cam.info.height) == (96, 64)


def test_file_camera_realtime_drops_for_slow_reader(clip: Path) -> None:
    start = time.monotonic()
    with FileCamera(clip, realtime=True) as cam:
        got: list[Frame] = []
        while (frame := cam.read()) is not None:
            got.append(frame)
            time.sleep(0.1)
    elapsed = time.monotonic() - start
    indices = [f.index for f in got]
    assert all(b > a for a, b in zip(indices, indices[1:]))
    assert cam.dropped > 0 and cam.dropped + len(got) == 30
    assert 0.9 < elapsed < 5.0  # paced by the clip's 1 s, not decoding speed


def test_file_camera_close_early(clip: Path) -> None:
    cam = FileCamera(clip, realtime=False)
    assert cam.read() is not None
    cam.close()
    assert cam.read() is None


def test_camera_source_missing_webcam() -> None:
    with pytest.raises(CameraError, match="camera 7 is not available"):
        CameraSource(7)


def test_camera_source_reads_rgb_stream(clip: Path) -> None:
    # OpenCV opens a file like a network stream: exercises the BGR -> RGB path.
    with CameraSource(str(clip)) as cam:
        frame = cam.read()
        assert frame is not None and frame.t_ms >= 0.0  # the newest: not always frame 0
        assert_red_top_left(frame.image)
        assert cam.info.width == 96 and cam.info.rotation_deg == 0


def test_open_camera_dispatch(clip: Path) -> None:
    with open_camera(clip, realtime=False) as cam:
        assert isinstance(cam, FileCamera)
    with pytest.raises(CameraError, match="camera 7"):
        open_camera("7")
    with pytest.raises(InputError, match="file not found"):
        open_camera("/no/such/clip.mp4")
    with pytest.raises(CameraError, match="camera index -1 is not valid"):
        open_camera("-1")
