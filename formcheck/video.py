"""Frame sources (video files via PyAV, cameras) and the H.264 sink.

Conventions, for every source here:

* Images are ``(H, W, 3) uint8`` **RGB**, C-contiguous (PyAV pads rows of odd
  widths; MediaPipe silently misreads such arrays, so we always copy).
* Images are upright: the display matrix of portrait phone videos is applied.
* ``t_ms`` is the real presentation time in milliseconds, relative to the
  first frame (0.0), strictly increasing. It never comes from ``index / fps``:
  phones record variable frame rate.

Only files are read with PyAV; cameras and stream URLs use OpenCV, imported
lazily so that file analysis does not need it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2  # (imported before av: PyAV's bundled libraries loaded first hang cv2 windows, PyAV #978)
import av
import numpy as np

from formcheck.errors import InputError, OutputError
from formcheck.fsutil import folder_problem

log = logging.getLogger(__name__)

MIN_STEP_MS = 1.0
"""Step used to repair a duplicate or backwards timestamp (previous + 1 ms)."""
DEBLOCK_SKIP_SCALE = 1.5  # read_frames(max_side=) shrinking by this much or more skips deblocking
# Frames this big (1080p and up) are encoded with x264's ultrafast preset: 1.4x the speed of
# veryfast at 1080x1920 (bench/speed.py), at ~3 Mbit/s still a tenth of a phone's own bitrate.
FAST_PRESET_PIXELS = 1_500_000

_WRITER_TIME_BASE = Fraction(1, 90_000)  # the MPEG clock; 1 ms = 90 ticks
_WRITER_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a clip (or a camera's stream).

    Attributes:
        path: the file (or the camera spec, as text).
        width, height: frame size in pixels as displayed, i.e. AFTER rotation.
        rotation_deg: clockwise rotation (0, 90, 180, 270) applied to the stored
            frames for display; phones write 90 for portrait video.
        fps: average frame rate (float, for display and hints; never for timing).
        duration_s: duration in seconds, None if unknown (cameras).
        frame_count: frame count from the header or duration * fps; an estimate,
            None if unknown.
        codec: decoder name, e.g. ``"h264"``.
        has_video: True (``probe`` raises for files without a video stream).
        seekable: False for containers without an index (MPEG-TS/PS, raw
            streams): a seek there lands only near the time asked, so the file
            is read in one pass, never split across processes.
    """

    path: str
    width: int
    height: int
    rotation_deg: int
    fps: float
    duration_s: float | None
    frame_count: int | None
    codec: str
    has_video: bool = True
    seekable: bool = True


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``index`` counts from 0 in the source, ``t_ms`` is
    the presentation time (ms from the first frame), ``image`` is upright RGB."""

    index: int
    t_ms: float
    image: np.ndarray


# -- files ------------------------------------------------------------------
def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a video file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty (0 bytes)")


def _open_input(path: Path) -> tuple[Any, Any]:
    """Open ``path`` with PyAV and return (container, first video stream)."""
    _check_file(path)
    try:
        container = av.open(str(path), mode="r")
    except PermissionError as exc:
        raise InputError(f"{path}: cannot read the file (permission denied)") from exc
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError(f"{path}: not a video file FFmpeg can read ({reason})") from exc
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        container.close()
        if not kinds:
            raise InputError(f"{path}: not a video file FFmpeg can read "
                             "(no streams found; truncated or damaged?)")
        what = "audio only" if kinds == ["audio"] else f"streams: {', '.join(kinds)}"
        raise InputError(f"{path}: has no video stream ({what})")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def _decoded_frames(container: Any, stream: Any, path: Path) -> Iterator[Any]:
    """Decoded ``av.VideoFrame`` objects; a corrupt packet is skipped and a
    truncated file ends the iteration (with a warning) instead of raising."""
    bad_packets = 0
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError:
                bad_packets += 1
                continue
            yield from frames
    except (av.FFmpegError, OSError) as exc:  # demuxer gave up: truncated file
        log.warning("%s: stopped reading at a damaged part of the file (%s)", path, exc)
        try:
            yield from stream.decode(None)  # frames still inside the decoder
        except av.FFmpegError:
            pass
    if bad_packets:
        log.warning("%s: skipped %d damaged packets", path, bad_packets)


def _ccw_quarters(frame: Any) -> int:
    """Counter-clockwise quarter turns making ``frame`` upright (``np.rot90``'s k):
    PyAV's ``rotation`` is FFmpeg's counter-clockwise display angle (ffmpeg and
    OpenCV turn clockwise by its negative, the same thing)."""
    return int(round(float(getattr(frame, "rotation", 0) or 0) / 90.0)) % 4


# Containers without a seek index (a seek lands near, not at, the time asked).
_UNINDEXED_FORMATS = {"mpegts", "mpeg", "mpegvideo", "h264", "hevc", "m4v", "rawvideo"}
_IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe", "tiff_pipe",
                  "gif_pipe", "heif", "avif")


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Read a clip's header and first frame. Raises :class:`InputError` with
    one line naming the file if it is missing, empty, not a video, audio only,
    a still image, or has no decodable frame."""
    path = Path(path)
    container, stream = _open_input(path)
    with container:
        if any(name in _IMAGE_FORMATS for name in container.format.name.split(",")):
            raise InputError(f"{path}: is a still image ({stream.codec_context.name}), not a video; "
                             "film the exercise as a video")
        frames = _decoded_frames(container, stream, path)
        first = next(frames, None)
        frames.close()
        if first is None:
            raise InputError(f"{path}: no decodable video frames")
        quarters = _ccw_quarters(first)
        width, height = first.width, first.height
        if quarters % 2:
            width, height = height, width
        rate = stream.average_rate or stream.guessed_rate
        duration_s: float | None = None
        if stream.duration is not None and stream.time_base is not None:
            duration_s = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration_s = container.duration / av.time_base
            if "matroska" in container.format.name and container.start_time:
                # a Matroska segment's duration runs from 0, its first frame may come later
                duration_s = max(duration_s - container.start_time / av.time_base, 0.0) or None
        fps = float(rate) if rate else 0.0
        frame_count: int | None = stream.frames or None
        if frame_count is None and duration_s and fps:
            frame_count = round(duration_s * fps)
        return VideoInfo(path=str(path), width=width, height=height,
                         rotation_deg=(-90 * quarters) % 360, fps=fps,
                         duration_s=duration_s, frame_count=frame_count,
                         codec=stream.codec_context.name, has_video=True,
                         seekable=not set(container.format.name.split(",")) & _UNINDEXED_FORMATS)


def read_frames(path: str | os.PathLike[str], *, max_side: int | None = None,
                start_ms: float | None = None) -> Iterator[Frame]:
    """Decode every frame of a clip as an upright RGB :class:`Frame`.

    ``t_ms`` is ``(pts - first pts) * time_base * 1000``. A missing pts becomes
    previous + one nominal frame interval; a duplicate or backwards pts becomes
    previous + ``MIN_STEP_MS``, so timestamps are always strictly increasing.
    ``max_side`` (pixels) optionally downscales so the longer side fits.

    A truncated or damaged file yields what decodes and stops (a warning is
    logged); :class:`InputError` if nothing decodes. Never raises PyAV errors.

    ``start_ms`` seeks: frames before it are skipped (decoding starts at the
    key frame before it), times stay relative to the clip's first frame, and
    ``index`` counts from the first frame yielded. Used by parallel workers.
    """
    path = Path(path)
    origin: float | None = None
    if start_ms:
        origin = _first_pts_ms(path)
    container, stream = _open_input(path)
    cc = stream.codec_context
    if max_side and cc.width and max(cc.width, cc.height) >= DEBLOCK_SKIP_SCALE * max_side:
        # Shrunk this much, the deblocking filter's work is averaged away: skip it (a
        # quarter of H.264 decoding time at 1080x1920; FFmpeg's skip_loop_filter).
        cc.options = {**cc.options, "skip_loop_filter": "all"}
    with container:
        if start_ms and origin is not None and stream.time_base is not None:
            target = int((origin + start_ms) / 1000.0 / stream.time_base)
            try:
                container.seek(max(target, 0), backward=True, any_frame=False, stream=stream)
            except av.FFmpegError:
                container.seek(0, stream=stream)
        rate = stream.guessed_rate or stream.average_rate
        interval_ms = 1000.0 / float(rate) if rate else 1000.0 / 30.0
        time_base = stream.time_base
        origin_ms: float | None = origin
        prev_ms: float | None = None
        quarters = 0
        size: dict[str, int] = {}
        index = 0
        try:
            for av_frame in _decoded_frames(container, stream, path):
                if index == 0:
                    quarters = _ccw_quarters(av_frame)
                    size = _scaled_size(av_frame.width, av_frame.height, max_side)
                if origin is not None and prev_ms is None:  # after a seek: time from the pts
                    t_ms = _repair_time(av_frame.pts, time_base, origin_ms, -1e9, interval_ms)
                    if t_ms < start_ms - 0.5:
                        continue
                else:
                    t_ms = _repair_time(av_frame.pts, time_base, origin_ms, prev_ms, interval_ms)
                if origin_ms is None and av_frame.pts is not None and time_base is not None:
                    origin_ms = float(av_frame.pts * time_base) * 1000.0 - t_ms
                image = to_rgb(av_frame, **size)
                if quarters:
                    image = np.rot90(image, k=quarters)
                yield Frame(index, t_ms, np.ascontiguousarray(image))
                prev_ms = t_ms
                index += 1
        except av.FFmpegError as exc:  # conversion of a broken frame
            if index == 0:
                raise InputError(f"{path}: cannot decode the video ({exc})") from exc
            log.warning("%s: stopped at a frame that cannot be converted (%s)", path, exc)
        if index == 0:
            raise InputError(f"{path}: no decodable video frames")


def to_rgb(frame: Any, width: int | None = None, height: int | None = None) -> np.ndarray:
    """A decoded frame as an RGB array, optionally resized to ``width`` x ``height``.

    Phone and camera video is nearly always 8-bit yuv420p (limited range,
    BT.601 coefficients, as FFmpeg's swscale assumes for untagged video): its
    three planes are resized (area averaging) and converted by OpenCV, which
    costs a third of swscale's time for a 1080x1920 frame (3 ms instead of 7
    on one core of these machines, bench/speed.py). Other pixel formats (10-bit
    HDR, full-range "yuvj", 4:2:2, odd sizes) go through swscale.
    """
    w, h = width or frame.width, height or frame.height
    if (frame.format.name != "yuv420p" or frame.width % 2 or frame.height % 2 or w % 2 or h % 2
            or getattr(frame, "color_range", 0) == 2):  # 2: AVCOL_RANGE_JPEG (full range)
        return frame.to_ndarray(format="rgb24", width=w, height=h) if (width or height) \
            else frame.to_ndarray(format="rgb24")
    i420 = np.empty((h * 3 // 2, w), np.uint8)
    chroma = i420[h:].reshape(2, h // 2, w // 2)
    for plane, out in zip(frame.planes, (i420[:h], chroma[0], chroma[1])):
        src = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, :plane.width]
        if src.shape == out.shape:
            out[...] = src
        else:
            cv2.resize(src, (out.shape[1], out.shape[0]), dst=out, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)


def _first_pts_ms(path: Path) -> float | None:
    """Presentation time (ms) of the clip's first frame, the origin of ``t_ms``."""
    container, stream = _open_input(path)
    with container:
        frames = _decoded_frames(container, stream, path)
        first = next(frames, None)
        frames.close()
        if first is None or first.pts is None or stream.time_base is None:
            return None
        return float(first.pts * stream.time_base) * 1000.0


def _scaled_size(width: int, height: int, max_side: int | None) -> dict[str, int]:
    """``to_ndarray`` keyword arguments for the optional downscale (even sizes)."""
    if not max_side or max(width, height) <= max_side:
        return {}
    scale = max_side / max(width, height)
    return {"width": max(2, round(width * scale / 2) * 2),
            "height": max(2, round(height * scale / 2) * 2)}


def _repair_time(pts: int | None, time_base: Fraction | None, origin_ms: float | None,
                 prev_ms: float | None, interval_ms: float) -> float:
    """The frame's time in ms from the first frame, strictly after ``prev_ms``."""
    if prev_ms is None:
        return 0.0
    if pts is None or time_base is None or origin_ms is None:
        return prev_ms + interval_ms
    t_ms = float(pts * time_base) * 1000.0 - origin_ms
    return t_ms if t_ms > prev_ms else prev_ms + MIN_STEP_MS


# -- the H.264 sink -----------------------------------------------------------
def partial_path(path: Path) -> Path:
    """Where a video is written until it is complete (then renamed onto ``path``)."""
    return path.parent / f".{path.stem}.partial{path.suffix}"


def _reason(exc: BaseException) -> str:
    """The OS's or FFmpeg's words for a failure, without the temporary file's name."""
    return getattr(exc, "strerror", None) or str(exc)


class VideoWriter:
    """Write RGB frames to a browser-playable H.264 file, with their own times.

    libx264, yuv420p, crf 23, preset veryfast (ultrafast from 1.5 megapixels: see
    ``FAST_PRESET_PIXELS``), ``+faststart`` (mp4/mov). Each
    frame's pts is its ``t_ms`` on a 1/90000 clock, so variable frame rate
    input keeps its timing. yuv420p needs even sizes: an odd width or height
    is padded by one pixel (the last column/row repeated), so the output may be
    one pixel larger than ``width`` x ``height``. ``b_frames=False`` for
    segments joined by :func:`concat_h264`.

    Frames go to ``.<name>.partial<suffix>`` in the same folder, renamed onto
    ``path`` by :meth:`close`; on an exception inside ``with`` the partial file
    is removed. Failures raise :class:`OutputError`.
    """

    def __init__(self, path: str | os.PathLike[str], width: int, height: int,
                 fps_hint: float = 30.0, *, crf: int = 23, preset: str | None = None,
                 b_frames: bool = True, shown_as: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path)
        self.shown_as = Path(shown_as) if shown_as is not None else self.path  # named in errors
        self.width, self.height = int(width), int(height)
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        folder = self.path.parent
        problem = folder_problem(folder)
        if problem:
            raise OutputError(f"{self.path}: {problem}")
        fmt = _WRITER_FORMATS.get(self.path.suffix.lower())
        if fmt is None:
            raise OutputError(f"{self.path}: unsupported extension (use .mp4, .m4v, .mov or .mkv)")
        self.partial_path = partial_path(self.path)
        options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
        self.frames_written, self._last_pts, self._closed = 0, -1, False
        self._last_t_ms: float | None = None
        try:
            self._container = av.open(str(self.partial_path), mode="w", format=fmt, options=options)
            rate = Fraction(fps_hint).limit_denominator(1001) if fps_hint > 0 else Fraction(30)
            if preset is None:  # x264's time grows with the pixels: big frames get the fast preset
                preset = "ultrafast" if self.width * self.height >= FAST_PRESET_PIXELS else "veryfast"
            codec_options = {"preset": preset, "crf": str(crf)}
            if not b_frames:  # segments that are concatenated later need dts == pts
                codec_options["bf"] = "0"
            stream = self._container.add_stream("libx264", rate=rate, options=codec_options)
            stream.width, stream.height = self.width + self.width % 2, self.height + self.height % 2
            stream.pix_fmt = "yuv420p"
            stream.time_base = _WRITER_TIME_BASE
            stream.codec_context.time_base = _WRITER_TIME_BASE  # else the encoder uses 1/rate
            self._stream = stream
        except (av.FFmpegError, OSError) as exc:
            self.partial_path.unlink(missing_ok=True)
            raise OutputError(f"{self.shown_as}: cannot create the video file ({_reason(exc)})") from exc

    def write(self, image: np.ndarray, t_ms: float) -> None:
        """Encode one ``(height, width, 3) uint8`` RGB image shown at ``t_ms``
        (strictly increasing, ms)."""
        if self._closed:
            raise ValueError("write() on a closed VideoWriter")
        if image.shape != (self.height, self.width, 3) or image.dtype != np.uint8:
            raise ValueError(f"expected a ({self.height}, {self.width}, 3) uint8 image, "
                             f"got {image.shape} {image.dtype}")
        if self._last_t_ms is not None and t_ms <= self._last_t_ms:
            raise ValueError(f"t_ms must increase: {t_ms} after {self._last_t_ms}")
        if self.height % 2 or self.width % 2:
            image = np.pad(image, ((0, self.height % 2), (0, self.width % 2), (0, 0)), "edge")
        # OpenCV's RGB -> I420 (BT.601, limited range, as swscale) is 4x faster than swscale's
        frame = av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
        pts = max(round(t_ms * 90.0), self._last_pts + 1)
        frame.pts, frame.time_base = pts, _WRITER_TIME_BASE
        self._mux(frame)
        self._last_pts, self._last_t_ms = pts, t_ms
        self.frames_written += 1

    def _mux(self, frame: av.VideoFrame | None) -> None:
        try:
            self._container.mux(self._stream.encode(frame))
        except (av.FFmpegError, OSError) as exc:
            self.abort()
            raise OutputError(f"{self.shown_as}: writing the video failed ({_reason(exc)})") from exc

    def close(self) -> None:
        """Finish the file and move it onto ``path``. Idempotent."""
        if self._closed:
            return
        if self.frames_written == 0:
            self.abort()
            raise OutputError(f"{self.shown_as}: no frames were written")
        self._mux(None)  # flush the encoder
        try:
            self._container.close()
            os.replace(self.partial_path, self.path)
        except (av.FFmpegError, OSError) as exc:
            self.partial_path.unlink(missing_ok=True)
            raise OutputError(f"{self.shown_as}: finishing the video failed ({_reason(exc)})") from exc
        finally:
            self._closed = True

    def abort(self) -> None:
        """Stop writing and delete the partial file (``path`` is left untouched)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._container.close()
        except (av.FFmpegError, OSError):
            pass
        self.partial_path.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# -- live sources ---------------------------------------------------------------


def concat_h264(parts: list[Path], out_path: str | os.PathLike[str]) -> None:
    """Join H.264 files written by :class:`VideoWriter` (``b_frames=False``,
    same size, absolute timestamps) into one, without re-encoding; atomic."""
    out_path = Path(out_path)
    fmt = _WRITER_FORMATS.get(out_path.suffix.lower(), "mp4")
    partial = partial_path(out_path)
    options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
    try:
        with av.open(str(parts[0])) as first, \
                av.open(str(partial), "w", format=fmt, options=options) as out:
            ost = out.add_stream_from_template(first.streams.video[0])
            last_dts = None
            for part in parts:
                with av.open(str(part)) as c:
                    stream = c.streams.video[0]
                    for packet in c.demux(stream):
                        if packet.dts is None:
                            continue
                        dts = packet.dts * packet.time_base
                        if last_dts is not None and dts <= last_dts:
                            continue  # a frame both segments hold (never expected)
                        last_dts = dts
                        packet.stream = ost
                        out.mux(packet)
        os.replace(partial, out_path)
    except (av.FFmpegError, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise OutputError(f"{out_path}: joining the video segments failed ({_reason(exc)})") from exc
