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
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import av
import numpy as np

from formcheck.errors import CameraError, InputError, OutputError

log = logging.getLogger(__name__)

MIN_STEP_MS = 1.0
"""Step used to repair a duplicate or backwards timestamp (previous + 1 ms)."""

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
        what = "audio only" if kinds == ["audio"] else f"streams: {', '.join(kinds) or 'none'}"
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
    """Counter-clockwise quarter turns that make ``frame`` upright (np.rot90's k).

    FFmpeg's ``av_display_rotation_get`` (PyAV ``VideoFrame.rotation``) is the
    counter-clockwise angle of the display transform; ffmpeg/ffplay/OpenCV
    rotate clockwise by its negative, which is the same thing.
    """
    return int(round(float(frame.rotation) / 90.0)) % 4


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Read a clip's header and first frame. Raises :class:`InputError` with
    one line naming the file if it is missing, empty, not a video, audio only,
    or has no decodable frame."""
    path = Path(path)
    container, stream = _open_input(path)
    with container:
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
        fps = float(rate) if rate else 0.0
        frame_count: int | None = stream.frames or None
        if frame_count is None and duration_s and fps:
            frame_count = round(duration_s * fps)
        return VideoInfo(path=str(path), width=width, height=height,
                         rotation_deg=(-90 * quarters) % 360, fps=fps,
                         duration_s=duration_s, frame_count=frame_count,
                         codec=stream.codec_context.name, has_video=True)


def read_frames(path: str | os.PathLike[str], *, max_side: int | None = None) -> Iterator[Frame]:
    """Decode every frame of a clip as an upright RGB :class:`Frame`.

    ``t_ms`` is ``(pts - first pts) * time_base * 1000``. A missing pts becomes
    previous + one nominal frame interval; a duplicate or backwards pts becomes
    previous + ``MIN_STEP_MS``, so timestamps are always strictly increasing.
    ``max_side`` (pixels) optionally downscales so the longer side fits.

    A truncated or damaged file yields what decodes and stops (a warning is
    logged); :class:`InputError` if nothing decodes. Never raises PyAV errors.
    """
    path = Path(path)
    container, stream = _open_input(path)
    with container:
        rate = stream.guessed_rate or stream.average_rate
        interval_ms = 1000.0 / float(rate) if rate else 1000.0 / 30.0
        time_base = stream.time_base
        origin_ms: float | None = None
        prev_ms: float | None = None
        quarters = 0
        size: dict[str, int] = {}
        index = 0
        try:
            for av_frame in _decoded_frames(container, stream, path):
                if index == 0:
                    quarters = _ccw_quarters(av_frame)
                    size = _scaled_size(av_frame.width, av_frame.height, max_side)
                t_ms = _repair_time(av_frame.pts, time_base, origin_ms, prev_ms, interval_ms)
                if origin_ms is None and av_frame.pts is not None and time_base is not None:
                    origin_ms = float(av_frame.pts * time_base) * 1000.0 - t_ms
                image = av_frame.to_ndarray(format="rgb24", **size)
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
class VideoWriter:
    """Write RGB frames to a browser-playable H.264 file, with their own times.

    libx264, yuv420p, preset veryfast, crf 23, ``+faststart`` (mp4/mov). Each
    frame's pts is its ``t_ms`` on a 1/90000 clock, so variable frame rate
    input keeps its timing. yuv420p needs even sizes: an odd width or height
    is padded by one pixel (the last column/row repeated), so the output may be
    one pixel larger than ``width`` x ``height``.

    Frames go to ``.<name>.partial<suffix>`` in the same folder, renamed onto
    ``path`` by :meth:`close`; on an exception inside ``with`` the partial file
    is removed. Failures raise :class:`OutputError`.
    """

    def __init__(self, path: str | os.PathLike[str], width: int, height: int,
                 fps_hint: float = 30.0, *, crf: int = 23, preset: str = "veryfast") -> None:
        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        folder = self.path.parent
        if not folder.is_dir():
            raise OutputError(f"{self.path}: folder {folder} does not exist")
        if not os.access(folder, os.W_OK):
            raise OutputError(f"{self.path}: folder {folder} is not writable")
        fmt = _WRITER_FORMATS.get(self.path.suffix.lower())
        if fmt is None:
            raise OutputError(f"{self.path}: unsupported extension (use .mp4, .m4v, .mov or .mkv)")
        self.partial_path = folder / f".{self.path.stem}.partial{self.path.suffix}"
        options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
        self.frames_written = 0
        self._last_pts = -1
        self._last_t_ms: float | None = None
        self._closed = False
        try:
            self._container = av.open(str(self.partial_path), mode="w", format=fmt, options=options)
            rate = Fraction(fps_hint).limit_denominator(1001) if fps_hint > 0 else Fraction(30)
            stream = self._container.add_stream(
                "libx264", rate=rate, options={"preset": preset, "crf": str(crf)})
            stream.width, stream.height = self.width + self.width % 2, self.height + self.height % 2
            stream.pix_fmt = "yuv420p"
            stream.time_base = _WRITER_TIME_BASE
            stream.codec_context.time_base = _WRITER_TIME_BASE  # else the encoder uses 1/rate
            self._stream = stream
        except (av.FFmpegError, OSError) as exc:
            self._remove_partial()
            raise OutputError(f"{self.path}: cannot create the video file ({exc})") from exc

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
        pad = ((0, self.height % 2), (0, self.width % 2), (0, 0))
        if self.height % 2 or self.width % 2:
            image = np.pad(image, pad, mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
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
            raise OutputError(f"{self.path}: writing the video failed ({exc})") from exc

    def close(self) -> None:
        """Finish the file and move it onto ``path``. Idempotent."""
        if self._closed:
            return
        if self.frames_written == 0:
            self.abort()
            raise OutputError(f"{self.path}: no frames were written")
        self._mux(None)  # flush the encoder
        try:
            self._container.close()
            os.replace(self.partial_path, self.path)
        except (av.FFmpegError, OSError) as exc:
            self._remove_partial()
            raise OutputError(f"{self.path}: finishing the video failed ({exc})") from exc
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
        self._remove_partial()

    def _remove_partial(self) -> None:
        self.partial_path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# -- live sources ---------------------------------------------------------------
class _NewestSlot:
    """A one-frame hand-over between a producer thread and ``read()``.

    ``keep_all=False``: a new frame replaces an unread one (counted in
    ``dropped``), like a camera. ``keep_all=True``: the producer waits.
    """

    def __init__(self, keep_all: bool) -> None:
        self.keep_all = keep_all
        self.dropped = 0
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._done = False
        self._error: BaseException | None = None

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self.keep_all:
                self._cond.wait_for(lambda: self._frame is None or self._done)
            elif self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify_all()

    def finish(self, error: BaseException | None = None) -> None:
        with self._cond:
            self._done, self._error = True, error
            self._cond.notify_all()

    def take(self, timeout_s: float | None) -> Frame | None:
        """The newest unread frame; None at the end; raises the producer's error;
        ``TimeoutError`` if nothing came within ``timeout_s``."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._frame is not None or self._done, timeout_s):
                raise TimeoutError
            frame, self._frame = self._frame, None
            if frame is None and self._error is not None:
                raise self._error
            return frame


class _LiveSource:
    """Shared plumbing: a daemon thread fills a :class:`_NewestSlot`."""

    info: VideoInfo
    _timeout_s: float | None = None

    def __init__(self, keep_all: bool) -> None:
        self._slot = _NewestSlot(keep_all)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run_thread, daemon=True,
                                        name=f"formcheck-{type(self).__name__}")

    def _run_thread(self) -> None:
        error: BaseException | None = None
        try:
            self._produce()
        except Exception as exc:  # handed to the reader, raised by read()
            error = exc
        finally:
            self._slot.finish(error)

    def _produce(self) -> None:
        raise NotImplementedError

    @property
    def dropped(self) -> int:
        """Frames replaced by a newer one before ``read()`` took them."""
        return self._slot.dropped

    def read(self) -> Frame | None:
        """Block until a frame newer than the last one returned is ready;
        None when the source has ended or was closed."""
        if self._stop.is_set():
            return None
        try:
            return self._slot.take(self._timeout_s)
        except TimeoutError:
            raise CameraError(f"{self.info.path}: no frame for {self._timeout_s:g} s") from None

    def close(self) -> None:
        """Stop the reader thread (idempotent)."""
        self._stop.set()
        self._slot.finish()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CameraSource(_LiveSource):
    """A webcam (int index) or stream URL read with OpenCV, newest frame first.

    ``t_ms`` is monotonic-clock time since the source was opened. Raises
    :class:`CameraError` if the camera cannot be opened or gives no first frame;
    ``read()`` raises it if no frame arrives for ``frame_timeout_s``.
    """

    def __init__(self, spec: int | str, *, frame_timeout_s: float = 5.0) -> None:
        super().__init__(keep_all=False)
        import cv2  # lazily: only live mode needs OpenCV

        self._cv2 = cv2
        self._timeout_s = frame_timeout_s
        name = f"camera {spec}" if isinstance(spec, int) else f"stream {spec}"
        self._cap = cv2.VideoCapture(spec)
        if not self._cap.isOpened():
            raise CameraError(f"{name} is not available (it cannot be opened; "
                              "is it connected and free?)")
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            self._cap.release()
            raise CameraError(f"{name} is not available (it opened but gave no frame)")
        self._start = time.monotonic()
        self._index = 0
        self._last_ms = 0.0
        height, width = bgr.shape[:2]
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.info = VideoInfo(path=str(spec), width=width, height=height, rotation_deg=0,
                              fps=fps, duration_s=None, frame_count=None,
                              codec=self._cap.getBackendName())
        self._slot.put(self._to_frame(bgr))
        self._thread.start()

    def _to_frame(self, bgr: np.ndarray) -> Frame:
        t_ms = (time.monotonic() - self._start) * 1000.0 if self._index else 0.0
        if self._index and t_ms <= self._last_ms:
            t_ms = self._last_ms + MIN_STEP_MS
        rgb = np.ascontiguousarray(self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB))
        frame = Frame(self._index, t_ms, rgb)
        self._index, self._last_ms = self._index + 1, t_ms
        return frame

    def _produce(self) -> None:
        try:
            while not self._stop.is_set():
                ok, bgr = self._cap.read()
                if not ok or bgr is None:
                    return  # stream ended or camera unplugged
                self._slot.put(self._to_frame(bgr))
        finally:
            self._cap.release()


class FileCamera(_LiveSource):
    """A camera stand-in that plays a video file at its own pace.

    ``realtime=True``: each frame is released when the wall clock (started at
    construction) reaches its ``t_ms``; a slow reader gets only the newest
    frame and the others count in ``dropped``. ``realtime=False``: every frame,
    in order, as fast as the reader takes them (deterministic tests).
    ``read()`` returns None at the end of the file. ``t_ms`` are the file's.
    """

    def __init__(self, path: str | os.PathLike[str], realtime: bool = True) -> None:
        super().__init__(keep_all=not realtime)
        self.path = Path(path)
        self.realtime = realtime
        self.info = probe(self.path)
        self._thread.start()

    def _produce(self) -> None:
        start = time.monotonic()
        frames = read_frames(self.path)
        try:
            for frame in frames:
                if self._stop.is_set():
                    return
                if self.realtime:
                    delay_s = start + frame.t_ms / 1000.0 - time.monotonic()
                    if delay_s > 0 and self._stop.wait(delay_s):
                        return
                self._slot.put(frame)
        finally:
            frames.close()


def open_camera(spec: int | str | os.PathLike[str], *, realtime: bool = True) -> _LiveSource:
    """A live source from a user's spec: an int or digit string is a camera
    index, ``scheme://...`` or ``/dev/video*`` a stream or device for OpenCV,
    anything else a video file played by :class:`FileCamera`."""
    if isinstance(spec, int):
        return CameraSource(spec)
    text = os.fspath(spec)
    if text.strip().isdigit():
        return CameraSource(int(text))
    if "://" in text or text.startswith("/dev/video"):
        return CameraSource(text)
    return FileCamera(text, realtime=realtime)
